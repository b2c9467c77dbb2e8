"""Training augmentations of TAO 6.x/7.x SegFormer (PyTorch Lightning) as mmseg transforms.

TAO 6 augments with ``CDDataAugmentation.transform`` (``nvidia_tao_pytorch/cv/segformer/
dataloader/augmentation.py``) on PIL images. Each transform here reproduces one of its steps
on mmseg's numpy samples (``img`` is BGR, masks are the keys in ``seg_fields``). Steps that
resample go through Pillow (``mmcv.imresize(..., backend='pillow')`` or ``PIL.Image``)
because TAO's bicubic, nearest, rotation and blur are Pillow's, and OpenCV's differ.
Random draws use numpy's global generator, like mmseg's own transforms.

:func:`~mmseg_tao.datasets.transforms.tao6_pipeline.tao6_train_pipeline` puts them in TAO's
order.
"""
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image, ImageFilter

from ..palette import IGNORE_INDEX


def _seg_keys(results: dict) -> list:
    return [k for k in results.get('seg_fields', []) if results.get(k) is not None]


def _pil_resize(arr: np.ndarray, size: Tuple[int, int], interpolation: str) -> np.ndarray:
    """Resize to ``size`` (w, h) with Pillow, as TAO's ``TF.resize``/``Image.resize`` do."""
    return mmcv.imresize(arr, size, interpolation=interpolation, backend='pillow')


@TRANSFORMS.register_module()
class TAO6RandomFlip(BaseTransform):
    """Flip horizontally and vertically, each with its own probability.

    TAO 6 (``random_flip``) draws the horizontal flip, then independently the vertical one,
    so both can happen to one sample. mmseg's ``RandomFlip`` with two directions picks at
    most one, and two chained ``RandomFlip`` overwrite each other's ``flip`` metadata; here a
    double flip is recorded as mmcv's ``'diagonal'`` direction.

    Args:
        hflip_prob (float): Probability of a horizontal (left-right) flip. Default: 0.5.
        vflip_prob (float): Probability of a vertical (up-down) flip. Default: 0.5.
    """

    def __init__(self, hflip_prob: float = 0.5, vflip_prob: float = 0.5):
        for name, p in (('hflip_prob', hflip_prob), ('vflip_prob', vflip_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {p}')
        self.hflip_prob = hflip_prob
        self.vflip_prob = vflip_prob

    def transform(self, results: dict) -> dict:
        hflip = np.random.rand() < self.hflip_prob
        vflip = np.random.rand() < self.vflip_prob
        direction = {(True, True): 'diagonal', (True, False): 'horizontal',
                     (False, True): 'vertical'}.get((hflip, vflip))
        results['flip'] = direction is not None
        results['flip_direction'] = direction
        if direction is not None:
            results['img'] = mmcv.imflip(results['img'], direction)
            for key in _seg_keys(results):
                results[key] = mmcv.imflip(results[key], direction)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(hflip_prob={self.hflip_prob}, '
                f'vflip_prob={self.vflip_prob})')


@TRANSFORMS.register_module()
class TAO6RandomRotate(BaseTransform):
    """Rotate counter-clockwise by an angle drawn from a list, with a probability.

    TAO 6 (``random_rotate``) rotates image and mask with ``TF.rotate``: Pillow's
    ``Image.rotate`` (counter-clockwise degrees, nearest neighbour for the image too, same
    canvas size, areas outside filled with 0 in image and mask). mmseg's ``RandomRotate``
    draws from a range and ``mmcv.imrotate`` turns clockwise. Multiples of 90 degrees are
    exact ``np.rot90`` (what Pillow does on a square image, as TAO's are after its resize);
    other angles use Pillow's rotation.

    Args:
        prob (float): Probability of rotating. Default: 0.5.
        angles (Sequence[float]): Angles (degrees, counter-clockwise), one drawn uniformly.
            Default: (90, 180, 270).
        pad_val (int): Image value outside the rotated image. Default: 0.
        seg_pad_val (int): Mask value outside the rotated mask; TAO uses 0, i.e. class 0.
            Default: 0.
    """

    def __init__(self, prob: float = 0.5, angles: Sequence[float] = (90, 180, 270),
                 pad_val: int = 0, seg_pad_val: int = 0):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if not angles:
            raise ValueError('angles must hold at least one angle')
        self.prob = prob
        self.angles = [float(a) for a in angles]
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    @staticmethod
    def rotate(arr: np.ndarray, angle: float, fill: int) -> np.ndarray:
        """Rotate ``arr`` (HxW or HxWxC) by ``angle`` degrees counter-clockwise."""
        angle = angle % 360
        h, w = arr.shape[:2]
        if angle % 90 == 0 and (angle % 180 == 0 or h == w):
            return np.ascontiguousarray(np.rot90(arr, int(angle // 90)))
        # Nearest-neighbour about the image centre, same size: Pillow's default rotation.
        fillcolor = fill if arr.ndim == 2 else (fill, ) * arr.shape[2]
        out = Image.fromarray(arr).rotate(angle, Image.NEAREST, fillcolor=fillcolor)
        return np.asarray(out).copy()

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        angle = self.angles[np.random.randint(len(self.angles))]
        results['img'] = self.rotate(results['img'], angle, self.pad_val)
        for key in _seg_keys(results):
            results[key] = self.rotate(results[key], angle, self.seg_pad_val)
        results['img_shape'] = results['img'].shape[:2]
        results['tao6_rotate_angle'] = angle
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, angles={self.angles}, '
                f'pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val})')


@TRANSFORMS.register_module()
class TAO6RandomResizedCrop(BaseTransform):
    """Crop a random square of 80-120% of the area and resize it to ``size`` x ``size``.

    TAO 6 (``with_random_crop``) uses torchvision's ``RandomResizedCrop.get_params`` with
    ``scale=(0.8, 1.2)`` and ``ratio=(1, 1)``: up to 10 draws of a target area
    (uniform fraction of the image area) and aspect ratio; the first box that fits is taken
    at a uniform position, else the centred largest box of an allowed ratio (the whole
    image for a square one). Draws over 100% of the area never fit, so on a square image
    the side is ``round(S * sqrt(u))``, u uniform in [0.8, 1]. The box is resized bicubic
    (image) and nearest (mask) with Pillow. TAO applies it to every sample.

    Args:
        size (int): Output side length.
        scale (Tuple[float, float]): Range of the box area as a fraction of the image area.
            Default: (0.8, 1.2).
        ratio (Tuple[float, float]): Range of the box aspect ratio (w/h), drawn log-uniform.
            Default: (1.0, 1.0).
        attempts (int): Draws before falling back to the centred box. Default: 10.
    """

    def __init__(self, size: int, scale: Tuple[float, float] = (0.8, 1.2),
                 ratio: Tuple[float, float] = (1.0, 1.0), attempts: int = 10):
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f'scale and ratio must be (min, max), got {scale}, {ratio}')
        self.size = int(size)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.attempts = attempts

    def get_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Draw a box ``(top, left, h, w)`` for a ``height`` x ``width`` image."""
        area = height * width
        log_ratio = np.log(self.ratio)
        for _ in range(self.attempts):
            target_area = area * np.random.uniform(*self.scale)
            aspect = np.exp(np.random.uniform(*log_ratio))
            w = int(round(np.sqrt(target_area * aspect)))
            h = int(round(np.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return (np.random.randint(0, height - h + 1),
                        np.random.randint(0, width - w + 1), h, w)
        # torchvision's fallback: the centred box of the nearest allowed ratio.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def transform(self, results: dict) -> dict:
        top, left, h, w = self.get_box(*results['img'].shape[:2])
        size = (self.size, self.size)
        results['img'] = _pil_resize(results['img'][top:top + h, left:left + w], size,
                                     'bicubic')
        for key in _seg_keys(results):
            results[key] = _pil_resize(results[key][top:top + h, left:left + w], size,
                                       'nearest')
        results['img_shape'] = results['img'].shape[:2]
        results['tao6_crop_box'] = (top, left, h, w)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio}, attempts={self.attempts})')


@TRANSFORMS.register_module()
class TAO6ScaleRandomCrop(BaseTransform):
    """Rescale by a random factor, then take a random ``crop_size`` x ``crop_size`` window.

    TAO 6 (``with_scale_random_crop``): the factor is uniform in ``scale_range``, sides are
    ``round(side * factor)`` (numpy rounding), image bicubic and mask nearest with Pillow.
    Where the rescaled image is larger than the crop the window position is uniform; where
    it is smaller the image is placed at a uniform position in a ``crop_size`` canvas
    filled with ``pad_val`` (image) and ``seg_pad_val`` (mask, TAO: 255, the ignore index).
    mmcv's ``RandomResize`` + mmseg's ``RandomCrop`` + ``Pad`` truncate the size and pad at
    the bottom-right only. (TAO swaps height and width in the rescale, which only matters
    for non-square images; its images are square here, this transform keeps the aspect.)

    Args:
        crop_size (int): Output side length.
        scale_range (Tuple[float, float]): Range of the rescale factor. Default: (1.0, 1.2).
        pad_val (int): Image fill where the rescaled image is smaller. Default: 0.
        seg_pad_val (int): Mask fill there. Default: 255.
    """

    def __init__(self, crop_size: int, scale_range: Tuple[float, float] = (1.0, 1.2),
                 pad_val: int = 0, seg_pad_val: int = IGNORE_INDEX):
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f'scale_range must be (min, max) > 0, got {scale_range}')
        self.crop_size = int(crop_size)
        self.scale_range = tuple(scale_range)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    def _axis(self, length: int) -> Tuple[int, int, int]:
        """Offsets in the canvas and in the image, and the copied length, on one axis."""
        space = length - self.crop_size
        if space > 0:
            return 0, np.random.randint(space + 1), self.crop_size
        return np.random.randint(-space + 1), 0, length

    def _crop(self, arr: np.ndarray, box: tuple, fill: int) -> np.ndarray:
        (ct, it, ch), (cl, il, cw) = box
        out = np.full((self.crop_size, self.crop_size) + arr.shape[2:], fill, arr.dtype)
        out[ct:ct + ch, cl:cl + cw] = arr[it:it + ch, il:il + cw]
        return out

    def transform(self, results: dict) -> dict:
        lo, hi = self.scale_range
        factor = lo + np.random.rand() * (hi - lo)
        h, w = results['img'].shape[:2]
        size = (int(np.round(w * factor)), int(np.round(h * factor)))
        img = _pil_resize(results['img'], size, 'bicubic')
        box = (self._axis(size[1]), self._axis(size[0]))
        results['img'] = self._crop(img, box, self.pad_val)
        for key in _seg_keys(results):
            seg = _pil_resize(results[key], size, 'nearest')
            results[key] = self._crop(seg, box, self.seg_pad_val)
        results['img_shape'] = results['img'].shape[:2]
        results['tao6_scale_factor'] = factor
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'scale_range={self.scale_range}, pad_val={self.pad_val}, '
                f'seg_pad_val={self.seg_pad_val})')


@TRANSFORMS.register_module()
class TAO6RandomBlur(BaseTransform):
    """Gaussian-blur the image (not the mask) with a random radius.

    TAO 6 (``with_random_blur``) applies Pillow's ``ImageFilter.GaussianBlur`` with a radius
    (standard deviation, in pixels) uniform in [0, 1) to every sample. Pillow approximates
    the Gaussian with repeated box blurs, so this calls Pillow rather than ``cv2``.

    Args:
        prob (float): Probability of blurring; TAO blurs always. Default: 1.0.
        radius_range (Tuple[float, float]): Range of the blur radius. Default: (0.0, 1.0).
    """

    def __init__(self, prob: float = 1.0, radius_range: Tuple[float, float] = (0.0, 1.0)):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if not 0 <= radius_range[0] <= radius_range[1]:
            raise ValueError(f'radius_range must be (min, max) >= 0, got {radius_range}')
        self.prob = prob
        self.radius_range = tuple(radius_range)

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        radius = np.random.uniform(*self.radius_range)
        # Per-channel filter: the BGR order does not matter.
        blurred = Image.fromarray(results['img']).filter(ImageFilter.GaussianBlur(radius))
        results['img'] = np.asarray(blurred).copy()
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'radius_range={self.radius_range})')


JitterValue = Union[float, Tuple[float, float]]


def _jitter_range(name: str, value: JitterValue, center: float,
                  bound: Optional[Tuple[float, float]]) -> Optional[Tuple[float, float]]:
    """torchvision ``ColorJitter``'s reading of one argument: x -> [c - x, c + x] clipped."""
    if isinstance(value, Number):
        if value < 0:
            raise ValueError(f'{name} must be non-negative, got {value}')
        lo, hi = center - value, center + value
        if bound is not None:
            lo = max(lo, bound[0])
    else:
        lo, hi = (float(v) for v in value)
    if bound is not None and not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f'{name} range ({lo}, {hi}) is outside {bound}')
    return None if lo == hi == center else (lo, hi)


@TRANSFORMS.register_module()
class TAO6ColorJitter(BaseTransform):
    """torchvision ``ColorJitter`` on the image (not the mask), with a probability.

    TAO 6 (``random_color``) runs ``transforms.ColorJitter(brightness, contrast, saturation,
    hue)`` on the RGB PIL image of every sample: factors uniform in ``[max(0, 1 - x),
    1 + x]`` (hue shift in ``[-x, x]``, x <= 0.5), the four adjustments in a random order.
    This draws the same parameters with numpy and applies torchvision's functional
    ``adjust_*`` to the RGB image. mmseg's ``PhotoMetricDistortion`` is a different
    distortion (additive brightness, OpenCV HSV). TAO ignores ``color_probability``, so
    its pipeline uses ``prob=1``.

    Args:
        brightness (float | tuple[float, float]): Brightness factor spread, or range.
            Default: 0.3.
        contrast (float | tuple[float, float]): Contrast factor spread, or range.
            Default: 0.3.
        saturation (float | tuple[float, float]): Saturation factor spread, or range.
            Default: 0.3.
        hue (float | tuple[float, float]): Hue shift spread (<= 0.5), or range.
            Default: 0.3.
        prob (float): Probability of jittering a sample. Default: 1.0.
    """

    def __init__(self, brightness: JitterValue = 0.3, contrast: JitterValue = 0.3,
                 saturation: JitterValue = 0.3, hue: JitterValue = 0.3, prob: float = 1.0):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        inf = float('inf')
        self.brightness = _jitter_range('brightness', brightness, 1.0, (0.0, inf))
        self.contrast = _jitter_range('contrast', contrast, 1.0, (0.0, inf))
        self.saturation = _jitter_range('saturation', saturation, 1.0, (0.0, inf))
        self.hue = _jitter_range('hue', hue, 0.0, (-0.5, 0.5))
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        import torchvision.transforms.functional as TF  # torch's companion; only needed here
        ops = [(TF.adjust_brightness, self.brightness), (TF.adjust_contrast, self.contrast),
               (TF.adjust_saturation, self.saturation), (TF.adjust_hue, self.hue)]
        order = np.random.permutation(4)
        factors = [None if r is None else np.random.uniform(*r) for _, r in ops]
        img = Image.fromarray(np.ascontiguousarray(results['img'][..., ::-1]))  # BGR -> RGB
        for i in order:
            if factors[i] is not None:
                img = ops[i][0](img, float(factors[i]))
        results['img'] = np.ascontiguousarray(np.asarray(img)[..., ::-1])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(brightness={self.brightness}, '
                f'contrast={self.contrast}, saturation={self.saturation}, hue={self.hue}, '
                f'prob={self.prob})')


@TRANSFORMS.register_module()
class TAO6EvalAtInputSize(BaseTransform):
    """Make the resized size the sample's reference size for predictions and metrics.

    TAO 6 evaluates and predicts at ``img_size`` x ``img_size``: the mask is resized
    (nearest) with the image and predictions are resized to it. mmseg resizes predictions
    to ``ori_shape``; setting it to ``img_shape`` keeps them at the network's input size so
    they match the resized mask. The file's size is kept in ``tao6_source_shape``.
    """

    def transform(self, results: dict) -> dict:
        results['tao6_source_shape'] = results.get('ori_shape')
        results['ori_shape'] = results['img'].shape[:2]
        return results
