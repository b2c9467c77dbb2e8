from .loading import (
    LoadTAOAnnotations,
    MaskValueError,
    decode_tao_mask,
    load_tao_mask,
    read_mask,
    unrotated_pipeline,
)
from .tao6_augment import (
    TAO6ColorJitter,
    TAO6EvalAtInputSize,
    TAO6RandomBlur,
    TAO6RandomFlip,
    TAO6RandomResizedCrop,
    TAO6RandomRotate,
    TAO6ScaleRandomCrop,
)
from .tao6_loading import LoadTAO6Annotations, load_tao6_mask
from .tao6_pipeline import tao6_norm_cfg, tao6_test_pipeline, tao6_train_pipeline

__all__ = ['LoadTAOAnnotations', 'MaskValueError', 'load_tao_mask', 'read_mask',
           'decode_tao_mask', 'unrotated_pipeline', 'TAO6ColorJitter',
           'TAO6EvalAtInputSize', 'TAO6RandomBlur', 'TAO6RandomFlip', 'TAO6RandomResizedCrop',
           'TAO6RandomRotate', 'TAO6ScaleRandomCrop', 'LoadTAO6Annotations', 'load_tao6_mask',
           'tao6_norm_cfg', 'tao6_test_pipeline', 'tao6_train_pipeline']
