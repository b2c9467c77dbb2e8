"""TAO's folder layout as an mmseg dataset: image / mask directory pairs and a palette."""
import functools
import logging
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .check import check_pairs
from .pairing import IMG_SUFFIXES, MASK_SUFFIXES, list_sorted, pair_files, pair_sorted, scan_dir
from .palette import IGNORE_INDEX, Palette
from .transforms.loading import unrotated_pipeline
from .transforms.tao6_loading import LoadTAO6Annotations, load_tao6_mask


class DatasetError(ValueError):
    """Problems with the files of a dataset; the message lists them.

    Args:
        message: The problems, one per line.
        missing_dirs: The image or mask directories that do not exist (absolute), for a
            caller that knows how such data is made (the ISBI example's commands).
    """

    def __init__(self, message: str, missing_dirs: Sequence[str] = ()):
        super().__init__(message)
        self.missing_dirs = list(missing_dirs)


def _as_list(value: Union[None, str, Sequence[str]]) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@DATASETS.register_module()
class TAOSegDataset(BaseSegDataset):
    """Images and masks in lists of directories (TAO's ``img_dir`` / ``ann_dir``).

    Directories are zipped pairwise; within a pair, images and masks are paired by name (TAO
    5) or by sorted order (TAO 6/7), see ``pairing``. Masks are class-id
    PNGs (values are ``label_id`` of the palette) or RGB colour masks (colours are the
    palette's ``rgb``); both become training ids through the palette in one lookup (see
    :class:`~mmseg_tao.datasets.palette.Palette`). Use with :class:`LoadTAOAnnotations`.

    Images are read as stored, the EXIF orientation tag not applied, as TAO 6 reads them
    (``Image.open(path).convert('RGB')``) and as every mask is read: a ``LoadImageFromFile``
    step of ``pipeline`` whose ``color_type`` would rotate (``'color'``, the default, or
    ``'grayscale'``) gets its ``*_ignore_orientation`` variant (see
    :func:`~mmseg_tao.datasets.transforms.loading.unrotated_pipeline`), so a photograph
    with an orientation tag keeps the size and pixel grid of its mask.

    Args:
        img_dirs (str | list[str]): Image directories (relative ones under ``data_root``).
        ann_dirs (str | list[str], optional): Mask directories, one per image directory;
            None for images only (inference).
        palette (list[dict] | Palette): TAO palette entries (seg_class, label_id,
            mapping_class, rgb), or the palette made from them (:meth:`Palette.of`).
        input_type (str): ``'rgb'`` or ``'grayscale'`` (TAO binarises 0/255 masks:
            value / 255 > 0.5 is label 1). Images always load with 3 channels.
        img_suffix (str, optional): Only images with this suffix; default: any of png, jpg,
            jpeg, bmp, tif.
        seg_map_suffix (str, optional): Only masks with this suffix; default: png, bmp, tif.
        unknown_label (str): ``'error'``: a mask value / colour outside the palette stops
            loading with the file named; ``'ignore'``: it becomes the ignore index.
        pairing (str): ``'name'``: an image and a mask belong together when their relative
            paths are equal up to the suffix, recursively (TAO 5). ``'sorted'``: as TAO 6/7,
            each folder listed without subfolders and sorted by full file name (no suffix
            filter unless ``img_suffix`` / ``seg_map_suffix`` is set), the n-th image with
            the n-th mask; the counts must be equal (see
            :func:`~mmseg_tao.datasets.pairing.pair_sorted`).
        check_data (bool): Decode every image and mask when the dataset is built and raise
            :class:`DatasetError` listing unreadable / truncated files, size mismatches,
            mask values outside the palette and classes lost to the ignore index, before
            any training starts (see :func:`~mmseg_tao.datasets.check.check_pairs`; masks
            by TAO 6's rule where the pipeline has ``LoadTAO6Annotations``); warnings are
            logged. Default: False.
        **kwargs: Other :class:`BaseSegDataset` arguments (pipeline, data_root, test_mode,
            ignore_index, ...).
    """

    def __init__(self,
                 img_dirs: Union[str, Sequence[str]],
                 palette: Sequence[dict],
                 ann_dirs: Union[None, str, Sequence[str]] = None,
                 input_type: str = 'rgb',
                 img_suffix: Optional[str] = None,
                 seg_map_suffix: Optional[str] = None,
                 unknown_label: str = 'error',
                 pairing: str = 'name',
                 check_data: bool = False,
                 **kwargs):
        if input_type not in ('rgb', 'grayscale'):
            raise ValueError(f"input_type must be 'rgb' or 'grayscale', got {input_type!r}")
        if unknown_label not in ('error', 'ignore'):
            raise ValueError(f"unknown_label must be 'error' or 'ignore', got {unknown_label!r}")
        if pairing not in ('name', 'sorted'):
            raise ValueError(f"pairing must be 'name' or 'sorted', got {pairing!r}")
        if kwargs.get('reduce_zero_label'):
            raise ValueError('TAOSegDataset: reduce_zero_label is not supported; give the '
                             'class to ignore no palette entry, or merge it with '
                             'mapping_class')
        self.img_dirs = _as_list(img_dirs)
        self.ann_dirs = _as_list(ann_dirs)
        if self.ann_dirs and len(self.ann_dirs) != len(self.img_dirs):
            raise ValueError(f'{len(self.img_dirs)} image directories but '
                             f'{len(self.ann_dirs)} mask directories; they are paired '
                             'one to one')
        self.tao_palette = Palette.of(palette)
        self.input_type = input_type
        self.unknown_label = unknown_label
        self.pairing = pairing
        self._img_suffix, self._seg_map_suffix = img_suffix, seg_map_suffix
        self.check_data = check_data
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        metainfo.setdefault('classes', self.tao_palette.classes)
        metainfo.setdefault('palette', [list(c) for c in self.tao_palette.colors])
        if 'pipeline' in kwargs:
            kwargs['pipeline'] = unrotated_pipeline(kwargs['pipeline'])
        super().__init__(metainfo=metainfo, img_suffix=img_suffix or '',
                         seg_map_suffix=seg_map_suffix or '', **kwargs)

    def _abs(self, path: str) -> str:
        return path if osp.isabs(path) or not self.data_root else osp.join(self.data_root, path)

    def load_data_list(self) -> List[dict]:
        data_list, problems = [], []
        ann_dirs = self.ann_dirs or [None] * len(self.img_dirs)
        for img_dir, ann_dir in zip(self.img_dirs, ann_dirs):
            pair = pair_files if self.pairing == 'name' else pair_sorted
            pairs, found = pair(self._abs(img_dir),
                                None if ann_dir is None else self._abs(ann_dir),
                                self._img_suffix, self._seg_map_suffix)
            problems += found
            for img_path, seg_path in pairs:
                data_list.append(dict(
                    img_path=img_path, seg_map_path=seg_path,
                    label_map=None, reduce_zero_label=self.reduce_zero_label,
                    seg_fields=[], tao_palette=self.tao_palette,
                    tao_input_type=self.input_type, tao_unknown_label=self.unknown_label,
                    ignore_index=self.ignore_index))
        if not problems and self.check_data:
            report = check_pairs([(d['img_path'], d['seg_map_path']) for d in data_list],
                                 self.tao_palette, self.input_type, self.unknown_label,
                                 decode=self._mask_decoder())
            problems = report.problems
            for warning in report.warnings[:10]:
                print_log(f'warning: {warning}', logger='current', level=logging.WARNING)
            if len(report.warnings) > 10:
                print_log(f'warning: {len(report.warnings) - 10} more warning(s)',
                          logger='current', level=logging.WARNING)
        if problems:
            missing = [self._abs(d) for d in (*self.img_dirs, *self.ann_dirs)
                       if d is not None and not osp.isdir(self._abs(d))]
            raise DatasetError('dataset problems:\n' + '\n'.join(f'  - {p}' for p in problems),
                               missing_dirs=missing)
        return data_list


    def _mask_decoder(self) -> Optional[Callable[[str], np.ndarray]]:
        """TAO 6's mask rule where the pipeline loads masks with ``LoadTAO6Annotations``
        (for ``check_data``); None for TAO 5's."""
        for step in getattr(getattr(self, 'pipeline', None), 'transforms', ()):
            if isinstance(step, LoadTAO6Annotations):
                return functools.partial(load_tao6_mask, colors=step.colors,
                                         label_transform=step.label_transform,
                                         backend_args=step.backend_args)
        return None


__all__ = ['TAOSegDataset', 'DatasetError', 'pair_files', 'pair_sorted', 'list_sorted',
           'scan_dir', 'IMG_SUFFIXES', 'MASK_SUFFIXES', 'IGNORE_INDEX']
