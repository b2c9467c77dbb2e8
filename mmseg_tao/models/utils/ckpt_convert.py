"""Old import path, kept for ``tools/convert_checkpoint.py``: everything lives in
:mod:`mmseg_tao.models.utils.checkpoint_layout`."""
from .checkpoint_layout import (
                                LAYOUTS,
                                ConversionResult,
                                convert_state_dict,
                                detect_layout,
                                to_model_layout,
                                unwrap_checkpoint,
)

__all__ = ['LAYOUTS', 'ConversionResult', 'convert_state_dict', 'detect_layout',
           'to_model_layout', 'unwrap_checkpoint']
