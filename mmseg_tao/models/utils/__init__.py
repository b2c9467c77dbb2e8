from .ckpt_convert import ConversionResult, convert_state_dict, detect_layout, unwrap_checkpoint
from .pretrained import LoadReport, load_pretrained, read_state_dict

__all__ = ['ConversionResult', 'convert_state_dict', 'detect_layout', 'unwrap_checkpoint',
           'LoadReport', 'load_pretrained', 'read_state_dict']
