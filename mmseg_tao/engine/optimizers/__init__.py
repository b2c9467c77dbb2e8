from .amp_optim_wrapper import TAOAmpOptimWrapper, amp_dtype
from .tao6_optim_constructor import NO_DECAY_SUBSTRINGS, TAO6OptimWrapperConstructor

__all__ = ['TAOAmpOptimWrapper', 'amp_dtype', 'TAO6OptimWrapperConstructor',
           'NO_DECAY_SUBSTRINGS']
