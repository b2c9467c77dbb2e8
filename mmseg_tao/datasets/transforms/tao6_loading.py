"""Read a mask the way TAO 6.x/7.x SegFormer (``SFDataset``) does.

TAO 6 (``nvidia_tao_pytorch/cv/segformer/dataloader/dataset.py``, ``SFDataset.__getitem__``)
opens the mask with Pillow; with three-value palette colours it converts it to RGB (grey and
palette-mode PNGs become colours), else it reads the single channel as is. With
``label_transform: norm`` it floor-divides by 255 (so 255 -> 1 and 1..254 -> 0), then gives
each pixel the train id of the palette colour it equals; pixels of no palette colour stay
0. Unlike :func:`~mmseg_tao.datasets.transforms.load_tao_mask`, nothing is refused.
"""
import io
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get
from mmseg.registry import TRANSFORMS
from PIL import Image

LABEL_TRANSFORMS = (None, 'norm')


def load_tao6_mask(path: str, colors: Sequence[Tuple[int, Sequence[int]]],
                   label_transform: Optional[str] = None,
                   backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a mask file and return TAO 6 train ids (uint8, HxW).

    Args:
        path (str): Mask file.
        colors (Sequence[tuple[int, Sequence[int]]]): ``(train id, colour)`` pairs in palette
            order: TAO 6 trains each palette entry's ``label_id`` (255: ignored) and gives it
            the ``rgb`` of its ``mapping_class``. Colours are ``[r, g, b]``, or ``[v]`` for
            single-channel masks (TAO looks at the first entry's length). A colour listed
            twice belongs to its last id, as in TAO's colour -> id dict.
        label_transform (str, optional): ``'norm'`` to floor-divide values by 255 first;
            None to match raw values.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        np.ndarray: Train ids; 0 where no palette colour matches.
    """
    if label_transform not in LABEL_TRANSFORMS:
        raise ValueError(f'label_transform must be one of {LABEL_TRANSFORMS}, '
                         f'got {label_transform!r}')
    if not colors:
        raise ValueError('colors is empty: a (train id, colour) pair per class is needed')
    if any(not 0 <= int(i) <= 255 for i, _ in colors):
        raise ValueError(f'train ids must fit a uint8 mask (0..255): {colors}')
    color_to_id = {tuple(int(v) for v in rgb): int(i) for i, rgb in colors}
    channels = len(colors[0][1])
    if any(len(c) != channels for c in color_to_id):
        raise ValueError(f'palette colours must all have {channels} value(s): {colors}')

    img = Image.open(io.BytesIO(get(path, backend_args=backend_args)))
    if channels == 3:
        mask = np.asarray(img.convert('RGB'))
    else:
        mask = np.asarray(img)
        if mask.ndim != 2:
            raise ValueError(f'{path}: a {mask.ndim}-d mask cannot be matched with '
                             f'{channels}-value palette colours')
        mask = mask[..., None]
    if label_transform == 'norm':
        mask = mask // 255  # floor, as TAO: only 255 becomes 1
    ids = np.zeros(mask.shape[:2], np.uint8)
    for color, train_id in color_to_id.items():
        ids[(mask == np.asarray(color)).all(axis=-1)] = train_id
    return ids


@TRANSFORMS.register_module()
class LoadTAO6Annotations(BaseTransform):
    """Load ``seg_map_path`` as TAO 6 train ids (see :func:`load_tao6_mask`).

    Writes ``gt_seg_map`` and adds it to ``seg_fields`` like mmseg's ``LoadAnnotations``.
    Samples without a mask (TAO's predict split) pass through.

    Args:
        colors (Sequence[tuple[int, Sequence[int]]]): ``(train id, colour)`` pairs (see
            :func:`load_tao6_mask`).
        label_transform (str, optional): ``'norm'`` or None. Default: None.
        backend_args (dict, optional): mmengine file backend arguments. Default: None.
    """

    def __init__(self, colors: Sequence[Tuple[int, Sequence[int]]],
                 label_transform: Optional[str] = None,
                 backend_args: Optional[dict] = None):
        if label_transform not in LABEL_TRANSFORMS:
            raise ValueError(f'label_transform must be one of {LABEL_TRANSFORMS}, '
                             f'got {label_transform!r}')
        self.colors = [(int(i), list(c)) for i, c in colors]
        self.label_transform = label_transform
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        if results.get('seg_map_path') is None:
            return results
        results['gt_seg_map'] = load_tao6_mask(results['seg_map_path'], self.colors,
                                               self.label_transform, self.backend_args)
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(colors={self.colors}, '
                f'label_transform={self.label_transform!r})')
