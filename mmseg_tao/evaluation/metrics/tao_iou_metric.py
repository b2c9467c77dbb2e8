"""IoUMetric that also returns per-class IoU / Acc (for TAO's evaluation tables)."""
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable


@METRICS.register_module()
class TAOIoUMetric(IoUMetric):
    """:class:`IoUMetric` whose result also holds ``IoU.<class>`` and ``Acc.<class>`` for
    every class (x100, 2 decimals, NaN for a class absent from ground truth and
    prediction), and keeps them in :attr:`per_class` as rows for tables and JSON.

    The summary (``aAcc``, ``mIoU``, ``mAcc``, and ``mDice`` / ``mFscore`` ... when asked)
    and the logged per-class table are mmseg's; the areas are reduced to metrics once.
    ``mIoU`` is always computed (TAO's tables need IoU and Acc).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault('iou_metrics', ['mIoU'])
        super().__init__(**kwargs)
        if 'mIoU' not in self.metrics:
            self.metrics = ['mIoU', *self.metrics]
        self.per_class: List[Dict] = []

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        intersect, union, pred, label = (sum(r) for r in zip(*results))
        per = self.total_area_to_metrics(intersect, union, pred, label, self.metrics,
                                         self.nan_to_num, self.beta)
        summary = OrderedDict()
        for key, value in per.items():
            summary[key if key == 'aAcc' else f'm{key}'] = np.round(np.nanmean(value) * 100, 2)
        per.pop('aAcc', None)
        classes = self.dataset_meta['classes']
        table = PrettyTable()
        table.add_column('Class', list(classes))
        for key, value in per.items():
            table.add_column(key, list(np.round(value * 100, 2)))
        print_log('per class results:', logger)
        print_log('\n' + table.get_string(), logger=logger)

        out = OrderedDict(summary)
        self.per_class = []
        for i, name in enumerate(classes):
            iou = float(np.round(per['IoU'][i].item() * 100, 2))
            acc = float(np.round(per['Acc'][i].item() * 100, 2))
            self.per_class.append({'Class': name, 'IoU': iou, 'Acc': acc})
            out[f'IoU.{name}'] = iou
            out[f'Acc.{name}'] = acc
        return out
