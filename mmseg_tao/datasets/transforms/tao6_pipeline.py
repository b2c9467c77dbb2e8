"""mmseg pipelines from a TAO 6.x/7.x ``dataset.segment.augmentation`` block.

The order and the always-on steps follow TAO 6's ``CDDataAugmentation.transform``
(``nvidia_tao_pytorch/cv/segformer/dataloader/augmentation.py``): resize to ``img_size``
square, flips, rotation, random resized crop, scale + random crop, blur, colour jitter,
then ``to_tensor`` and normalisation. Validation, test and predict samples are only resized
and normalised. Normalisation is left to the model's data preprocessor
(:func:`tao6_norm_cfg`).
"""
import copy
import dataclasses
from typing import List, Mapping, Optional, Tuple

from ...spec.tao6_schema import Tao6Augmentation

# TAO 6/7 defaults of dataset.segment.augmentation, from the spec schema (their one copy).
TAO6_AUGMENTATION_DEFAULTS = dataclasses.asdict(Tao6Augmentation())


def _group(aug: Optional[Mapping], key: str) -> Optional[dict]:
    """``aug[key]`` over its defaults; None where the spec sets the group to null (off)."""
    default = TAO6_AUGMENTATION_DEFAULTS[key]
    if aug is None or key not in aug:
        return copy.deepcopy(default)
    if aug[key] is None:
        return None
    return {**default, **dict(aug[key])}


def _flag(aug: Optional[Mapping], key: str) -> bool:
    if aug is None or key not in aug:
        return bool(TAO6_AUGMENTATION_DEFAULTS[key])
    return bool(aug[key])


def _resize(img_size: int) -> dict:
    # TAO resizes to a square with Pillow: bicubic image, nearest mask (mmcv's Resize
    # always resizes gt_seg_map nearest).
    return dict(type='Resize', scale=(img_size, img_size), keep_ratio=False,
                interpolation='bicubic', backend='pillow')


def tao6_train_pipeline(aug: Optional[Mapping], img_size: int) -> List[dict]:
    """Training transforms for a TAO 6 ``dataset.segment.augmentation`` block.

    The list starts after image and mask loading (the caller prepends
    ``dict(type='LoadImageFromFile')``, best with ``imdecode_backend='pillow'`` as TAO
    decodes with Pillow, and :class:`LoadTAO6Annotations`) and ends with ``PackSegInputs``.
    Missing keys take TAO's defaults; a group set to ``None`` or with ``enable: False``,
    and a false ``with_random_crop`` / ``with_random_blur``, is left out. TAO behaviours
    kept: ``with_random_crop`` and ``with_random_blur`` apply to every sample, colour
    jitter too (``color_probability`` is not read by TAO), and the rotation angle is drawn
    from the first three entries of ``angle_list`` only.

    Mean and std are not applied here: put ``tao6_norm_cfg(aug)`` in the data
    preprocessor, with ``bgr_to_rgb=True``.

    Args:
        aug (Mapping, optional): ``dataset.segment.augmentation``; None for all defaults.
        img_size (int): ``dataset.segment.img_size``, the square training size.

    Returns:
        list[dict]: Transform configs for mmseg's ``TRANSFORMS`` registry.
    """
    size = int(img_size)
    pipeline = [_resize(size)]
    flip = _group(aug, 'random_flip')
    if flip and flip['enable']:
        pipeline.append(dict(type='TAO6RandomFlip', hflip_prob=float(flip['hflip_probability']),
                             vflip_prob=float(flip['vflip_probability'])))
    rotate = _group(aug, 'random_rotate')
    if rotate and rotate['enable']:
        # TAO indexes angle_list with random.randint(0, 2).
        pipeline.append(dict(type='TAO6RandomRotate', prob=float(rotate['rotate_probability']),
                             angles=[float(a) for a in list(rotate['angle_list'])[:3]]))
    if _flag(aug, 'with_random_crop'):
        pipeline.append(dict(type='TAO6RandomResizedCrop', size=size, scale=(0.8, 1.2),
                             ratio=(1.0, 1.0)))
    scale_crop = _group(aug, 'with_scale_random_crop')
    if scale_crop and scale_crop['enable']:
        lo, hi = scale_crop['scale_range']
        pipeline.append(dict(type='TAO6ScaleRandomCrop', crop_size=size,
                             scale_range=(float(lo), float(hi))))
    if _flag(aug, 'with_random_blur'):
        pipeline.append(dict(type='TAO6RandomBlur', prob=1.0, radius_range=(0.0, 1.0)))
    color = _group(aug, 'random_color')
    if color and color['enable']:
        pipeline.append(dict(type='TAO6ColorJitter', brightness=float(color['brightness']),
                             contrast=float(color['contrast']),
                             saturation=float(color['saturation']), hue=float(color['hue']),
                             prob=1.0))
    pipeline.append(dict(type='PackSegInputs'))
    return pipeline


def tao6_test_pipeline(img_size: int) -> List[dict]:
    """Evaluation/inference transforms: TAO 6 only resizes to ``img_size`` square.

    The mask, loaded before this list like in training, is resized (nearest) with the
    image, and :class:`TAO6EvalAtInputSize` keeps predictions at that size, so metrics are
    computed on ``img_size`` x ``img_size`` maps as TAO does. Normalisation: see
    :func:`tao6_norm_cfg`.

    Args:
        img_size (int): ``dataset.segment.img_size``.

    Returns:
        list[dict]: Transform configs ending with ``PackSegInputs``.
    """
    return [_resize(int(img_size)), dict(type='TAO6EvalAtInputSize'),
            dict(type='PackSegInputs')]


def tao6_norm_cfg(aug: Optional[Mapping]) -> Tuple[List[float], List[float]]:
    """Mean and std on the 0-255 scale for ``SegDataPreProcessor``.

    TAO normalises RGB tensors in [0, 1] with ``augmentation.mean``/``std``; the same on
    0-255 pixels is ``mean * 255`` and ``std * 255`` with ``bgr_to_rgb=True``.

    Args:
        aug (Mapping, optional): ``dataset.segment.augmentation``; None for the defaults.

    Returns:
        tuple[list[float], list[float]]: ``(mean, std)``.
    """
    aug = aug or {}
    mean = aug.get('mean') or TAO6_AUGMENTATION_DEFAULTS['mean']
    std = aug.get('std') or TAO6_AUGMENTATION_DEFAULTS['std']
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f'augmentation mean/std need 3 values, got {mean} and {std}')
    if any(float(s) <= 0 for s in std):
        raise ValueError(f'augmentation std must be positive, got {std}')
    return [float(m) * 255 for m in mean], [float(s) * 255 for s in std]
