"""TAO's folder layout as an mmseg dataset: image / mask directory pairs and a palette."""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .check import check_pairs
from .palette import IGNORE_INDEX, Palette

IMG_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
MASK_SUFFIXES = ('.png', '.bmp', '.tif', '.tiff')


class DatasetError(ValueError):
    """Problems with the files of a dataset; the message lists them."""


def _as_list(value: Union[None, str, Sequence[str]]) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _suffixes(suffix: Optional[str], default: Tuple[str, ...]) -> Tuple[str, ...]:
    if not suffix:
        return default
    return ((suffix if suffix.startswith('.') else '.' + suffix).lower(), )


def scan_dir(root: str, suffixes: Tuple[str, ...]) -> Dict[str, str]:
    """Files under ``root`` (recursively) with one of ``suffixes``, keyed by their path
    relative to ``root`` without suffix."""
    found: Dict[str, str] = {}
    for dirpath, _, files in os.walk(root, followlinks=True):
        for name in files:
            stem, ext = osp.splitext(name)
            if ext.lower() in suffixes:
                rel = osp.relpath(osp.join(dirpath, stem), root)
                found.setdefault(rel, osp.join(dirpath, name))
    return found


def _scan_images(img_dir: str, ann_dir: Optional[str], img_suffix: Optional[str]
                 ) -> Tuple[Optional[Dict[str, str]], List[str]]:
    """The images of ``img_dir`` by relative stem, and problems; None when a directory
    is missing."""
    problems = [f'{what} directory {d} does not exist'
                for d, what in ((img_dir, 'image'), (ann_dir, 'mask'))
                if d is not None and not osp.isdir(d)]
    if problems:
        return None, problems
    images = scan_dir(img_dir, _suffixes(img_suffix, IMG_SUFFIXES))
    if not images:
        problems.append(f'image directory {img_dir} has no images '
                        f'({", ".join(_suffixes(img_suffix, IMG_SUFFIXES))})')
    return images, problems


def pair_files(img_dir: str, ann_dir: Optional[str], img_suffix: Optional[str] = None,
               seg_map_suffix: Optional[str] = None) -> Tuple[List[Tuple[str, Optional[str]]],
                                                              List[str]]:
    """Pair images with masks by relative path and stem.

    Returns:
        (pairs, problems): sorted (image, mask) pairs and a message per problem
        (missing or empty directory, images without a mask, masks without an image).
    """
    images, problems = _scan_images(img_dir, ann_dir, img_suffix)
    if images is None:
        return [], problems
    if ann_dir is None:
        return [(images[k], None) for k in sorted(images)], problems
    masks = scan_dir(ann_dir, _suffixes(seg_map_suffix, MASK_SUFFIXES))
    if not masks and images:
        problems.append(f'mask directory {ann_dir} has no masks')
    no_mask = sorted(set(images) - set(masks))
    no_image = sorted(set(masks) - set(images))
    if masks and no_mask:
        problems.append(f'{len(no_mask)} image(s) in {img_dir} without a mask in {ann_dir}: '
                        + ', '.join(osp.relpath(images[k], img_dir) for k in no_mask[:20])
                        + (' ...' if len(no_mask) > 20 else ''))
    if images and no_image:
        problems.append(f'{len(no_image)} mask(s) in {ann_dir} without an image in {img_dir}: '
                        + ', '.join(osp.relpath(masks[k], ann_dir) for k in no_image[:20])
                        + (' ...' if len(no_image) > 20 else ''))
    pairs = [(images[k], masks[k]) for k in sorted(set(images) & set(masks))]
    return pairs, problems


def pair_sorted(img_dir: str, ann_dir: Optional[str], img_suffix: Optional[str] = None,
                seg_map_suffix: Optional[str] = None
                ) -> Tuple[List[Tuple[str, Optional[str]]], List[str]]:
    """Pair the n-th image with the n-th mask in sorted order, as TAO 6/7 does.

    Returns:
        (pairs, problems) as :func:`pair_files`; unequal counts are a problem.
    """
    images, problems = _scan_images(img_dir, ann_dir, img_suffix)
    if images is None:
        return [], problems
    image_list = [images[k] for k in sorted(images)]
    if ann_dir is None:
        return [(p, None) for p in image_list], problems
    masks = scan_dir(ann_dir, _suffixes(seg_map_suffix, MASK_SUFFIXES))
    mask_list = [masks[k] for k in sorted(masks)]
    if len(mask_list) != len(image_list):
        problems.append(f'{len(image_list)} image(s) in {img_dir} but {len(mask_list)} '
                        f'mask(s) in {ann_dir}; TAO 6 pairs them by sorted order, so the '
                        'counts must be equal')
        return [], problems
    return list(zip(image_list, mask_list)), problems


@DATASETS.register_module()
class TAOSegDataset(BaseSegDataset):
    """Images and masks in lists of directories (TAO's ``img_dir`` / ``ann_dir``).

    Directories are zipped pairwise; within a pair, an image and a mask belong together when
    their paths relative to the two directories are equal up to the suffix. Masks are class-id
    PNGs (values are ``label_id`` of the palette) or RGB colour masks (colours are the
    palette's ``rgb``); both become training ids through the palette in one lookup (see
    :class:`~mmseg_tao.datasets.palette.Palette`). Use with :class:`LoadTAOAnnotations`.

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
            paths are equal up to the suffix (TAO 5). ``'sorted'``: the n-th image with the
            n-th mask in sorted order (TAO 6/7); the counts must be equal.
        check_data (bool): Decode every image and mask when the dataset is built and raise
            :class:`DatasetError` listing unreadable / truncated files, size mismatches and
            mask values outside the palette, before any training starts. Default: False.
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
                                 self.tao_palette, self.input_type, self.unknown_label)
            problems = report.problems
            for warning in report.warnings[:10]:
                print_log(f'warning: {warning}', logger='current', level=logging.WARNING)
            if len(report.warnings) > 10:
                print_log(f'warning: {len(report.warnings) - 10} more mask(s) like these',
                          logger='current', level=logging.WARNING)
        if problems:
            raise DatasetError('dataset problems:\n' + '\n'.join(f'  - {p}' for p in problems)
                               + _layout_hint(self.img_dirs, self._abs))
        return data_list


def _layout_hint(img_dirs: Sequence[str], resolve) -> str:
    """For a missing ``<root>/images/<split>``, the command that makes such a dataset."""
    for d in img_dirs:
        parts = osp.normpath(d).split(os.sep)
        if len(parts) >= 2 and parts[-2] == 'images' and not osp.isdir(resolve(d)):
            root = osp.join(*parts[:-2]) if len(parts) > 2 else '.'
            return ('\nTo make an ISBI-layout dataset (images/<split>, masks/<split>) there: '
                    f'python tools/prepare_isbi.py {root} (synthetic EM images; add --volume '
                    'train-volume.tif --labels train-labels.tif for the ISBI 2012 data)')
    return ''


__all__ = ['TAOSegDataset', 'DatasetError', 'pair_files', 'pair_sorted', 'IGNORE_INDEX']
