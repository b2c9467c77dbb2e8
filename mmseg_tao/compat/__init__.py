"""Fixes for running mmengine 0.10.7 / mmdeploy 1.3.1 on current PyTorch.

Applied once by ``import mmseg_tao``; each module says what it changes and why.
"""
from . import checkpoint, dist, mmseg_tools, onnx_export
from .checkpoint import UnsafeCheckpointError, load_checkpoint_file, trust_checkpoint

_applied = False


def apply() -> None:
    """Install every compat fix (idempotent)."""
    global _applied
    if _applied:
        return
    checkpoint.install()
    dist.install()
    onnx_export.install()
    mmseg_tools.install()
    _applied = True


__all__ = ['apply', 'load_checkpoint_file', 'trust_checkpoint', 'UnsafeCheckpointError']
