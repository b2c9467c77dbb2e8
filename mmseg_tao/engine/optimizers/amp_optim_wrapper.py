"""Mixed precision that picks its number format: bf16 where the hardware has it, else fp16."""
from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner.amp import autocast
from mmseg.registry import OPTIM_WRAPPERS

DTYPES = {'float16': torch.float16, 'fp16': torch.float16, 'bfloat16': torch.bfloat16,
          'bf16': torch.bfloat16}


def amp_dtype(dtype: Union[str, torch.dtype] = 'auto', device: Optional[str] = None
              ) -> torch.dtype:
    """The autocast dtype for ``dtype`` on ``device`` (default: CUDA if available).

    ``'auto'``: bfloat16 on GPUs that support it (Ampere and later) and on the CPU;
    float16 on older GPUs.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype != 'auto':
        if dtype not in DTYPES:
            raise ValueError(f'AMP dtype {dtype!r}: expected auto, float16 or bfloat16')
        return DTYPES[dtype]
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda') and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


@OPTIM_WRAPPERS.register_module()
class TAOAmpOptimWrapper(AmpOptimWrapper):
    """:class:`AmpOptimWrapper` with ``dtype='auto'`` and CPU support.

    bfloat16 has float32's exponent range, so it trains without loss scaling: the wrapper
    then skips the GradScaler and with it the per-step check for infs (a host-device
    synchronisation). float16 keeps mmengine's dynamic loss scaling. On a machine without
    a GPU, autocast runs on the CPU (mmengine's wrapper refuses to start there).

    Args:
        dtype (str | torch.dtype): ``'auto'`` (see :func:`amp_dtype`), ``'float16'`` or
            ``'bfloat16'``. Default: ``'auto'``.
        loss_scale (str | float | dict): As :class:`AmpOptimWrapper`; used for float16.
        **kwargs: :class:`OptimWrapper` arguments (optimizer, clip_grad, ...).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'auto',
                 loss_scale: Union[str, float, dict] = 'dynamic', **kwargs):
        self.device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.cast_dtype = amp_dtype(dtype, self.device_type)
        if self.cast_dtype == torch.float16 and self.device_type == 'cuda':
            super().__init__(loss_scale=loss_scale, dtype=self.cast_dtype, **kwargs)
            return
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = None

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is not None:
            return super().backward(loss, **kwargs)
        OptimWrapper.backward(self, loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is not None:
            return super().step(**kwargs)
        OptimWrapper.step(self, **kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is not None:
            return super().state_dict()
        return OptimWrapper.state_dict(self)

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None:
            # A float16 run resumed in bfloat16: the loss scale has no use any more.
            state_dict = {k: v for k, v in state_dict.items() if k != 'loss_scaler'}
        super().load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        with OptimWrapper.optim_context(self, model), \
                autocast(device_type=self.device_type, dtype=self.cast_dtype):
            yield
