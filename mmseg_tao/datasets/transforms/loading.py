"""Load a TAO mask (class ids or RGB colours) and map it to training ids."""
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get
from mmseg.registry import TRANSFORMS

from ..palette import IGNORE_INDEX, Palette


class MaskValueError(ValueError):
    """A mask holds a value or colour the palette does not define."""


def load_tao_mask(path: str, palette: Palette, input_type: str = 'rgb',
                  unknown_label: str = 'error', ignore_index: int = IGNORE_INDEX,
                  backend_args=None) -> np.ndarray:
    """Read a mask file and return training ids (uint8, HxW).

    Id masks (one channel, or palette-mode PNGs) are remapped through the palette's
    ``label_id``; colour masks (three channels) through its ``rgb``, except a grey
    three-channel image whose values are all label ids, which is read as ids. With
    ``input_type='grayscale'`` masks are binarised first as TAO does (value / 255 > 0.5 is
    1). ``reduce_zero_label`` is not applied here: map classes with the palette instead.

    Raises:
        MaskValueError: A value or colour outside the palette, with ``unknown_label='error'``.
    """
    raw = mmcv.imfrombytes(get(path, backend_args=backend_args), flag='unchanged',
                           backend='pillow')
    if raw is None:
        raise ValueError(f'{path}: not a readable image')
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
                return palette.map_rgb(rgb, ignore_index)
    if raw.dtype != np.uint8:
        if raw.max(initial=0) > 255:
            raise MaskValueError(f'{path}: mask values up to {int(raw.max())} do not fit '
                                 '8-bit class ids')
        raw = raw.astype(np.uint8)
    if input_type == 'grayscale':
        raw = (raw.astype(np.float32) / 255 > 0.5).astype(np.uint8)
    bad = palette.unknown_ids(raw)
    if bad and unknown_label == 'error':
        raise MaskValueError(f'{path}: value(s) {bad[:10]} are not a label_id of the '
                             f'palette (label_ids {sorted(palette.label_map)})')
    return palette.map_ids(raw, ignore_index, known_only=not bad)


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
