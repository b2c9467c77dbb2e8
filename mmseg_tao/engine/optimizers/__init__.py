from .amp_optim_wrapper import TAOAmpOptimWrapper, amp_dtype

__all__ = ['TAOAmpOptimWrapper', 'amp_dtype']
