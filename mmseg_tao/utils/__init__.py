"""Small helpers shared by the whole package (no torch or OpenMMLab imports)."""
from .fileio import atomic_path, atomic_write

__all__ = ['atomic_path', 'atomic_write']
