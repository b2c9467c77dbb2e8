"""TAO 7.0.1's deterministic training mode, in place of mmengine's strict one."""
import os

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop

#: cuBLAS workspace that makes its GEMMs deterministic (TAO 7.0.1's choice).
CUBLAS_WORKSPACE_CONFIG = ':4096:8'


def set_tao_determinism(deterministic: bool) -> None:
    """Set PyTorch's determinism as TAO 7.0.1's ``initialize_train_experiment`` does.

    ``cudnn.deterministic`` = ``deterministic``; when true also ``CUBLAS_WORKSPACE_CONFIG``
    (unless set; read when cuBLAS first runs), ``torch.use_deterministic_algorithms(True,
    warn_only=True)`` (an operation without a deterministic kernel, such as bilinear
    upsampling's backward on CUDA, warns instead of raising, as Lightning's
    ``deterministic="warn"``) and the math kernel of scaled-dot-product attention (the
    flash and memory-efficient kernels' backward are not deterministic). TAO 6.x set only
    ``cudnn.deterministic``. ``cudnn.benchmark`` is the config's ``env_cfg``
    (mmengine's). Nothing is switched off when ``deterministic`` is false.
    """
    torch.backends.cudnn.deterministic = deterministic
    if not deterministic:
        return
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', CUBLAS_WORKSPACE_CONFIG)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_mem_efficient_sdp(False)
    torch.backends.cuda.enable_math_sdp(True)


def determinism_state() -> dict:
    """The process-wide settings :func:`set_tao_determinism` changes."""
    cuda = torch.backends.cuda
    return dict(cudnn=torch.backends.cudnn.deterministic,
                algorithms=(torch.are_deterministic_algorithms_enabled(),
                            torch.is_deterministic_algorithms_warn_only_enabled()),
                sdp=(cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(),
                     cuda.math_sdp_enabled()),
                cublas=os.environ.get('CUBLAS_WORKSPACE_CONFIG'))


def restore_determinism(state: dict) -> None:
    """Put back what :func:`determinism_state` recorded."""
    torch.backends.cudnn.deterministic = state['cudnn']
    enabled, warn_only = state['algorithms']
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    flash, mem_efficient, math = state['sdp']
    torch.backends.cuda.enable_flash_sdp(flash)
    torch.backends.cuda.enable_mem_efficient_sdp(mem_efficient)
    torch.backends.cuda.enable_math_sdp(math)
    if state['cublas'] is None:
        os.environ.pop('CUBLAS_WORKSPACE_CONFIG', None)
    else:
        os.environ['CUBLAS_WORKSPACE_CONFIG'] = state['cublas']


@HOOKS.register_module()
class TAODeterminismHook(Hook):
    """Apply :func:`set_tao_determinism` when a training run starts (``before_run``, before
    the model's weights are initialised and any kernel runs; each process of a
    distributed run) and restore the previous settings when it ends (``after_run``). Test
    and validation runs are left alone, as TAO leaves them.

    Generated configs keep mmengine's ``randomness.deterministic`` false: mmengine
    passes it to ``torch.use_deterministic_algorithms(True)``, the strict form, with
    which a SegFormer's first training step raises on CUDA.

    Args:
        deterministic (bool): The spec's ``train.cudnn.deterministic`` (TAO 6/7) or
            ``train.exp_config.deterministic`` (TAO 5). Default: False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, deterministic: bool = False) -> None:
        self.deterministic = bool(deterministic)

    def before_run(self, runner) -> None:
        self._saved = None
        if isinstance(getattr(runner, '_train_loop', None), BaseLoop):
            self._saved = determinism_state()
            set_tao_determinism(self.deterministic)

    def after_run(self, runner) -> None:
        # The settings are process-wide (the SDP flags choose CPU attention kernels too):
        # the run's own, not left to whatever the process does next (prediction, a second
        # run in the same Python session).
        if getattr(self, '_saved', None) is not None:
            restore_determinism(self._saved)
            self._saved = None
