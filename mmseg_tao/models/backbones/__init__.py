from .fan import (
                  FAN,
                  FAN_ARCHS,
                  fan_base_16_p4_hybrid,
                  fan_large_16_p4_hybrid,
                  fan_small_12_p4_hybrid,
                  fan_tiny_8_p4_hybrid,
)
from .mit import MIT_ARCHS, MixTransformer, mit_b0, mit_b1, mit_b2, mit_b3, mit_b4, mit_b5

__all__ = [
    'FAN', 'FAN_ARCHS', 'fan_tiny_8_p4_hybrid', 'fan_small_12_p4_hybrid', 'fan_base_16_p4_hybrid',
    'fan_large_16_p4_hybrid', 'MixTransformer', 'MIT_ARCHS', 'mit_b0', 'mit_b1', 'mit_b2',
    'mit_b3', 'mit_b4', 'mit_b5'
]
