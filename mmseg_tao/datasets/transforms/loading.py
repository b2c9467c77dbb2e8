"""Load a TAO mask (class ids or RGB colours) and map it to training ids; read images and
masks as stored, without applying an EXIF orientation tag."""
from typing import Any, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmengine.fileio import get
from mmseg.registry import TRANSFORMS

from ..palette import IGNORE_INDEX, Palette


class MaskValueError(ValueError):
    """A mask holds a value or colour the palette does not define."""


# color_type of mmcv's image decoding that applies the EXIF orientation -> the one that
# does not (cv2: IMREAD_IGNORE_ORIENTATION; pillow: no ImageOps.exif_transpose).
UNROTATED_COLOR_TYPES = {'color': 'color_ignore_orientation',
                         'grayscale': 'grayscale_ignore_orientation'}


def unrotated_pipeline(pipeline: Optional[Sequence[Any]]) -> Optional[List[Any]]:
    """``pipeline`` with its image loading made to ignore EXIF orientation tags.

    mmcv's ``LoadImageFromFile`` decodes with ``color_type='color'`` by default, which
    rotates a photograph by its EXIF orientation tag (cv2 ``IMREAD_COLOR``, or pillow with
    ``ImageOps.exif_transpose``); masks are read as stored (``'unchanged'`` / Pillow), and
    TAO 6 reads images as stored too (``Image.open(path).convert('RGB')``). A rotated image
    no longer fits its mask, so each ``LoadImageFromFile`` step (a config dict or a built
    transform) with ``'color'`` or ``'grayscale'`` gets the ``*_ignore_orientation``
    variant; other steps and other colour types are kept. Dicts are copied; a built
    transform gets the new ``color_type`` in place.

    Args:
        pipeline (Sequence, optional): Transform configs or transforms.

    Returns:
        list, optional: The pipeline; None for None.
    """
    if pipeline is None:
        return None
    out = []
    for step in pipeline:
        if isinstance(step, dict) and str(step.get('type', '')).split('.')[-1] == \
                'LoadImageFromFile':
            color_type = step.get('color_type', 'color')
            if color_type in UNROTATED_COLOR_TYPES:
                step = dict(step, color_type=UNROTATED_COLOR_TYPES[color_type])
        elif isinstance(step, LoadImageFromFile) and step.color_type in UNROTATED_COLOR_TYPES:
            step.color_type = UNROTATED_COLOR_TYPES[step.color_type]
        out.append(step)
    return out


def read_mask(path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """The stored values of a mask file: no EXIF rotation, palette-mode PNGs as indices,
    three or four channels in mmcv's BGR(A) order.

    Raises:
        ValueError: The file is no readable image.
    """
    raw = mmcv.imfrombytes(get(path, backend_args=backend_args), flag='unchanged',
                           backend='pillow')
    if raw is None:
        raise ValueError(f'{path}: not a readable image')
    return raw


def load_tao_mask(path: str, palette: Palette, input_type: str = 'rgb',
                  unknown_label: str = 'error', ignore_index: int = IGNORE_INDEX,
                  backend_args=None) -> np.ndarray:
    """Read a mask file and return training ids (uint8, HxW).

    Id masks (one channel, or palette-mode PNGs) are remapped through the palette's
    ``label_id``; colour masks (three channels) through its ``rgb``, except a grey
    three-channel image whose values are all label ids, which is read as ids. With
    ``input_type='grayscale'`` masks are binarised first as TAO does (value / 255 > 0.5 is
    1). ``reduce_zero_label`` is not applied here: map classes with the palette instead.
    The EXIF orientation tag is not applied (see :func:`read_mask`).

    Raises:
        MaskValueError: A value or colour outside the palette, with ``unknown_label='error'``.
    """
    return decode_tao_mask(read_mask(path, backend_args), path, palette, input_type,
                           unknown_label, ignore_index)[0]


def decode_tao_mask(raw: np.ndarray, path: str, palette: Palette, input_type: str = 'rgb',
                    unknown_label: str = 'error', ignore_index: int = IGNORE_INDEX
                    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Training ids of a mask read by :func:`read_mask` (the rule of :func:`load_tao_mask`).

    Args:
        raw (np.ndarray): The mask's stored values.
        path (str): The file, named in errors.
        palette, input_type, unknown_label, ignore_index: As :func:`load_tao_mask`.

    Returns:
        tuple[np.ndarray, np.ndarray | None]: The training ids (uint8, HxW), and the
        values read as class ids (HxW, before binarisation and the palette) or None for a
        mask read as colours.
    """
    if raw.ndim == 3:
        raw = raw[..., :3]
        if input_type == 'grayscale':
            raw = raw[..., 0]
        else:
            rgb = np.ascontiguousarray(raw[..., ::-1])  # mmcv returns BGR
            grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()
            bad_colors = palette.unknown_colors(rgb)
            shared = palette.ambiguous_colors(rgb)
            if grey and (bad_colors or shared) and not palette.unknown_ids(rgb[..., 0]):
                raw = rgb[..., 0]  # class ids saved as a grey 3-channel image
            else:
                if shared:
                    raise MaskValueError(
                        f'{path}: {palette.describe_ambiguous(shared[0])}; a colour mask '
                        'cannot tell them apart (use id masks, or distinct rgb values)')
                if bad_colors and unknown_label == 'error':
                    raise MaskValueError(
                        f'{path}: colour(s) {bad_colors[:5]} are not in the palette '
                        f'(its rgb values: {sorted(palette.rgb_map)})')
                return palette.map_rgb(rgb, ignore_index), None
    if raw.dtype != np.uint8:
        if raw.max(initial=0) > 255:
            raise MaskValueError(f'{path}: mask values up to {int(raw.max())} do not fit '
                                 '8-bit class ids')
        raw = raw.astype(np.uint8)
    values = raw
    if input_type == 'grayscale':
        raw = (raw.astype(np.float32) / 255 > 0.5).astype(np.uint8)
    bad = palette.unknown_ids(raw)
    if bad and unknown_label == 'error':
        raise MaskValueError(f'{path}: value(s) {bad[:10]} are not a label_id of the '
                             f'palette (label_ids {sorted(palette.label_map)})')
    return palette.map_ids(raw, ignore_index, known_only=not bad), values


@TRANSFORMS.register_module()
class LoadTAOAnnotations(BaseTransform):
    """Load ``seg_map_path`` as training ids using the sample's TAO palette.

    Reads ``tao_palette``, ``tao_input_type`` and ``tao_unknown_label`` set by
    :class:`~mmseg_tao.datasets.TAOSegDataset`; writes ``gt_seg_map`` and adds it to
    ``seg_fields`` like mmseg's ``LoadAnnotations``. Samples without a mask pass through.

    Args:
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self, backend_args=None):
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        if results.get('seg_map_path') is None:
            return results
        results['gt_seg_map'] = load_tao_mask(
            results['seg_map_path'], results['tao_palette'],
            results.get('tao_input_type', 'rgb'), results.get('tao_unknown_label', 'error'),
            results.get('ignore_index', IGNORE_INDEX), self.backend_args)
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results
