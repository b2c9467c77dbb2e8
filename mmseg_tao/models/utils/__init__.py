from .ckpt_check import CheckpointMismatchError, check_checkpoint_fits, check_state_dict_fits
from .ckpt_convert import ConversionResult, convert_state_dict, detect_layout, unwrap_checkpoint
from .pretrained import LoadReport, load_pretrained, read_state_dict

__all__ = ['CheckpointMismatchError', 'check_checkpoint_fits', 'check_state_dict_fits',
           'ConversionResult', 'convert_state_dict', 'detect_layout', 'unwrap_checkpoint',
           'LoadReport', 'load_pretrained', 'read_state_dict']
