"""TAO 7's quantize task: settings, module matching, calibration, backends, saved files.

Public for the tasks that run a quantised model (evaluate, inference):

- :func:`is_quantized_checkpoint` ``(path) -> bool``
- :func:`restore_quantized_model` ``(model, path, quantize_cfg=None) -> model``

The task itself is :func:`mmseg_tao.apis.quantize`.
"""
from .config import QuantizeConfigError, QuantizeSettings, settings_of
from .saving import (
                     META_KEY,
                     is_quantized_checkpoint,
                     restore_quantized_model,
                     save_quantized,
                     tao_file_name,
)

__all__ = ['is_quantized_checkpoint', 'restore_quantized_model', 'QuantizeSettings',
           'QuantizeConfigError', 'settings_of', 'save_quantized', 'tao_file_name',
           'META_KEY']
