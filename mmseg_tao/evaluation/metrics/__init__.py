from .tao_iou_metric import TAOIoUMetric

__all__ = ['TAOIoUMetric']
