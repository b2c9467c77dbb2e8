from .loading import LoadTAOAnnotations, MaskValueError, load_tao_mask

__all__ = ['LoadTAOAnnotations', 'MaskValueError', 'load_tao_mask']
