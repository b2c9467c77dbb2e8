"""TAOIoUMetric: mmseg IoUMetric's summary plus per-class rows, computed and logged once."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.structures import SegDataSample

import mmseg_tao  # noqa: F401
from mmseg_tao.evaluation import TAOIoUMetric

CLASSES = ('background', 'cell', 'edge')


def _samples(seed=0, n=3):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        gt = torch.randint(0, 3, (1, 8, 10), generator=g)
        gt[0, 0, :3] = 255  # some ignored pixels
        pred = torch.where(torch.rand(1, 8, 10, generator=g) < 0.7, gt.clamp(max=1),
                           torch.randint(0, 2, (1, 8, 10), generator=g))  # never 'edge'
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=gt)
        s.pred_sem_seg = PixelData(data=pred)
        out.append(s.to_dict())
    return out


def _run(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process([], samples)
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('iou_metrics', [['mIoU'], ['mIoU', 'mDice'], ['mDice']])
def test_summary_equals_mmseg_and_per_class_rows(iou_metrics):
    samples = _samples()
    ours = _run(TAOIoUMetric(iou_metrics=iou_metrics), samples)
    ref = _run(IoUMetric(iou_metrics=sorted(set(iou_metrics) | {'mIoU'})), samples)
    assert {k: v for k, v in ours.items() if '.' not in k} == ref
    # Per-class values by hand for 'cell' (IoU = TP / (TP + FP + FN) over valid pixels).
    gt = np.concatenate([s['gt_sem_seg']['data'].numpy().ravel() for s in samples])
    pred = np.concatenate([s['pred_sem_seg']['data'].numpy().ravel() for s in samples])
    valid = gt != 255
    gt, pred = gt[valid], pred[valid]
    tp = np.sum((gt == 1) & (pred == 1))
    iou = tp / (np.sum(gt == 1) + np.sum(pred == 1) - tp)
    assert ours['IoU.cell'] == round(float(iou) * 100, 2)
    assert ours['Acc.cell'] == round(float(tp / np.sum(gt == 1)) * 100, 2)
    assert ours['IoU.edge'] == 0.0  # in the ground truth, never predicted


def test_areas_reduced_and_table_logged_once(monkeypatch):
    calls, logs = [], []
    original = IoUMetric.total_area_to_metrics

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(IoUMetric, 'total_area_to_metrics', staticmethod(counting))
    import mmseg_tao.evaluation.metrics.tao_iou_metric as module
    monkeypatch.setattr(module, 'print_log', lambda msg, *a, **k: logs.append(msg))
    metric = TAOIoUMetric()
    _run(metric, _samples())
    assert len(calls) == 1
    assert sum('per class results' in m for m in logs) == 1
    assert [r['Class'] for r in metric.per_class] == list(CLASSES)
    assert all(not math.isnan(r['IoU']) for r in metric.per_class)
