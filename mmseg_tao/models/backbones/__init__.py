from .fan import FAN, FAN_ARCHS
from .mit import MIT_ARCHS, MixTransformer

__all__ = ['FAN', 'FAN_ARCHS', 'MixTransformer', 'MIT_ARCHS']
