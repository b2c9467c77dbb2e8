"""Fixes for running mmengine 0.10.7 / mmsegmentation 1.2.2 / mmdeploy 1.3.1 on current
PyTorch, OpenCV and NumPy.

Each fix is a :class:`~.registry.Patch` declared in the module of its subject (checkpoint
loading, CPU distributed training, mmseg's tools, mmdeploy's ONNX export) and applied once
by ``import mmseg_tao`` through one mechanism (:mod:`.registry`). :func:`patches` lists
what is patched and why; ``MMSEG_TAO_NO_PATCHES=1`` (or a comma-separated list of names)
turns them off. See docs/compat.md.
"""
from . import checkpoint, dist, mmseg_tools, onnx_export  # noqa: F401  (declare patches)
from .checkpoint import UnsafeCheckpointError, load_checkpoint_file, trust_checkpoint
from .registry import DISABLE_ENV, Patch, PatchStatus, apply_patches, original, patches


def apply() -> None:
    """Install every compat patch not turned off by ``MMSEG_TAO_NO_PATCHES`` (idempotent)."""
    apply_patches()


__all__ = ['apply', 'patches', 'original', 'Patch', 'PatchStatus', 'DISABLE_ENV',
           'load_checkpoint_file', 'trust_checkpoint', 'UnsafeCheckpointError']
