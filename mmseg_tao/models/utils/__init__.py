from .checkpoint_layout import (
                                LAYOUTS,
                                CheckpointMismatchError,
                                ConversionResult,
                                Layout,
                                check_checkpoint_fits,
                                check_state_dict_fits,
                                convert_state_dict,
                                detect_layout,
                                is_lightning_checkpoint,
                                read_state_dict,
                                register_layout,
                                to_model_layout,
                                to_tao6_checkpoint,
                                unwrap_checkpoint,
)
from .pretrained import LoadReport, load_pretrained
from .tao_encryption import get_encryption_key, set_encryption_key

__all__ = ['LAYOUTS', 'Layout', 'register_layout', 'detect_layout', 'ConversionResult',
           'convert_state_dict', 'to_model_layout', 'unwrap_checkpoint', 'read_state_dict',
           'CheckpointMismatchError', 'check_checkpoint_fits', 'check_state_dict_fits',
           'LoadReport', 'load_pretrained', 'is_lightning_checkpoint', 'to_tao6_checkpoint',
           'set_encryption_key', 'get_encryption_key']
