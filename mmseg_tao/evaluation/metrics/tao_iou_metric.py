"""IoUMetric that also returns per-class IoU / Acc (for TAO's evaluation tables)."""
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class TAOIoUMetric(IoUMetric):
    """:class:`IoUMetric` (mIoU) whose result also holds ``IoU.<class>`` and ``Acc.<class>``
    for every class (x100, 2 decimals, NaN for a class absent from ground truth and
    prediction), and keeps them in :attr:`per_class` as rows for tables and JSON."""

    def __init__(self, **kwargs):
        kwargs.setdefault('iou_metrics', ['mIoU'])
        super().__init__(**kwargs)
        self.per_class: List[Dict] = []

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        intersect, union, pred, label = (sum(r) for r in zip(*results))
        per = self.total_area_to_metrics(intersect, union, pred, label, ['mIoU'],
                                         self.nan_to_num, self.beta)
        out = OrderedDict(metrics)
        self.per_class = []
        for i, name in enumerate(self.dataset_meta['classes']):
            iou = float(np.round(per['IoU'][i].item() * 100, 2))
            acc = float(np.round(per['Acc'][i].item() * 100, 2))
            self.per_class.append({'Class': name, 'IoU': iou, 'Acc': acc})
            out[f'IoU.{name}'] = iou
            out[f'Acc.{name}'] = acc
        return out
