"""IoUMetric that also returns per-class IoU / Acc (for TAO's evaluation tables) and keeps
TAO 6's scores (accuracy, mean IoU, F1, precision, recall as fractions)."""
import warnings
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable

# Per-class values of mmseg's total_area_to_metrics, by the iou_metrics entry that asks.
_PER_CLASS = {'mIoU': ('IoU', 'Acc'), 'mDice': ('Dice', 'Acc'),
              'mFscore': ('Fscore', 'Precision', 'Recall')}


def _nanmean(values: np.ndarray) -> float:
    with warnings.catch_warnings():  # all-NaN (no class present): NaN, silently
        warnings.simplefilter('ignore', RuntimeWarning)
        return float(np.nanmean(values))


@METRICS.register_module()
class TAOIoUMetric(IoUMetric):
    """:class:`IoUMetric` whose result also holds ``IoU.<class>`` and ``Acc.<class>`` for
    every class (x100, 2 decimals, NaN for a class absent from ground truth and
    prediction), and keeps them in :attr:`per_class` as rows for tables and JSON.

    The summary (``aAcc``, ``mIoU``, ``mAcc``, and ``mDice`` / ``mFscore`` ... when asked)
    and the logged per-class table are mmseg's; the areas are reduced to metrics once.
    ``mIoU`` is always computed (TAO's tables need IoU and Acc). F-score, precision and
    recall are always computed too (not returned unless ``mFscore`` is asked for):
    :attr:`per_class` rows carry ``Fscore``, ``Precision`` and ``Recall``, and
    :attr:`tao_scores` holds TAO 6's epoch scores as unrounded fractions, computed as
    TAO 6/7's ``MeanIoUMeter`` (``cv/segformer/utils/iou_metric.py``) does: ``acc`` (all
    pixels), ``miou``, ``mf1``, ``mprecision``, ``mrecall`` (NaN-ignoring means over
    classes; a class never predicted has NaN precision, one absent from the ground truth
    NaN recall).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault('iou_metrics', ['mIoU'])
        super().__init__(**kwargs)
        if 'mIoU' not in self.metrics:
            self.metrics = ['mIoU', *self.metrics]
        self.per_class: List[Dict] = []
        self.tao_scores: Dict[str, float] = {}

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        intersect, union, pred, label = (sum(r) for r in zip(*results))
        asked = [m for m in self.metrics if m in _PER_CLASS]
        every = asked + ([] if 'mFscore' in asked else ['mFscore'])
        per = self.total_area_to_metrics(intersect, union, pred, label, every,
                                         self.nan_to_num, self.beta)
        self.tao_scores = dict(acc=float(per['aAcc']), miou=_nanmean(per['IoU']),
                               mf1=_nanmean(per['Fscore']),
                               mprecision=_nanmean(per['Precision']),
                               mrecall=_nanmean(per['Recall']))
        shown = ['aAcc'] + [k for m in asked for k in _PER_CLASS[m]]
        summary = OrderedDict()
        for key in dict.fromkeys(shown):
            summary[key if key == 'aAcc' else f'm{key}'] = np.round(
                np.nanmean(per[key]) * 100, 2)
        classes = self.dataset_meta['classes']
        table = PrettyTable()
        table.add_column('Class', list(classes))
        for key in dict.fromkeys(shown[1:]):
            table.add_column(key, list(np.round(per[key] * 100, 2)))
        print_log('per class results:', logger)
        print_log('\n' + table.get_string(), logger=logger)

        out = OrderedDict(summary)
        self.per_class = []
        for i, name in enumerate(classes):
            row = {'Class': name}
            for key in ('IoU', 'Acc', 'Fscore', 'Precision', 'Recall'):
                row[key] = float(np.round(per[key][i].item() * 100, 2))
            self.per_class.append(row)
            out[f'IoU.{name}'] = row['IoU']
            out[f'Acc.{name}'] = row['Acc']
        return out
