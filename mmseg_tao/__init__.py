"""mmseg-tao: NVIDIA TAO's SegFormer workflow on stock OpenMMLab.

Importing the package applies the compat fixes for current PyTorch
(:mod:`mmseg_tao.compat`) and registers every module of the package in the
mmseg / mmengine registries, so ``custom_imports = dict(imports=['mmseg_tao'])``
is all a config needs.
"""
from . import compat
from .version import __version__

compat.apply()  # listed by compat.patches(); MMSEG_TAO_NO_PATCHES=1 turns them off

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration)

__all__ = ['__version__', 'compat']
