from .metrics import TAOIoUMetric

__all__ = ['TAOIoUMetric']
