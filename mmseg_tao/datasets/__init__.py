from .check import SplitReport, check_pairs, format_report
from .palette import IGNORE_INDEX, Palette, PaletteError
from .tao_dataset import DatasetError, TAOSegDataset, pair_files
from .transforms import LoadTAOAnnotations, MaskValueError, load_tao_mask

__all__ = ['SplitReport', 'check_pairs', 'format_report', 'IGNORE_INDEX', 'Palette',
           'PaletteError', 'TAOSegDataset', 'DatasetError', 'pair_files', 'LoadTAOAnnotations',
           'MaskValueError', 'load_tao_mask']
