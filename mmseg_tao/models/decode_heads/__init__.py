from .tao_segformer_head import TAOSegFormerHead

__all__ = ['TAOSegFormerHead']
