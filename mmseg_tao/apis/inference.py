"""The ``inference`` task: class-id masks and colour overlays named after each image (TAO 6's
colour maps and combined visualisations for a TAO 6/7 spec)."""
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.runner import load_checkpoint
from mmengine.utils import ProgressBar
from mmseg.apis import inference_model, init_model

from ..datasets.pairing import IMG_SUFFIXES, list_sorted, scan_dir
from ..datasets.palette import Palette
from ..datasets.tao_dataset import DatasetError
from ..engine.status import spec_form, task_status
from ..models.utils import check_checkpoint_fits
from ..models.utils.onnx_contract import OnnxModelError
from ..spec.translate import results_dir, slide_test_cfg
from .deployed_model import (
    ONNX,
    QUANTIZED,
    build_onnx_model,
    model_kind,
    prediction_notes,
    restore_quantized,
    size_key,
)
from .experiment import fast_prediction, prepare, single_process, task_config


def list_images(dirs: Sequence[str], root: Optional[str] = None,
                tao6: bool = False) -> List[Tuple[str, str]]:
    """(image path, relative stem) for every image under ``dirs``, sorted: recursively by
    suffix (TAO 5, mmseg), or each folder's entries sorted by full name, not recursive, no
    suffix filter, as TAO 6/7's predict step lists them (``tao6``).

    Raises:
        DatasetError: A folder is missing, or there is no image at all.
    """
    out = []
    for d in dirs:
        d = d if osp.isabs(d) or not root else osp.join(root, d)
        if not osp.isdir(d):
            raise DatasetError(f'image directory {d} does not exist', missing_dirs=[d])
        if tao6:
            out += [(path, osp.splitext(osp.basename(path))[0]) for path in list_sorted(d)]
        else:
            out += [(path, rel) for rel, path in sorted(scan_dir(d, IMG_SUFFIXES).items())]
    if not out:
        raise DatasetError(f'no images in {", ".join(dirs)} (dataset.test_dataset.img_dir)')
    return out


def read_image(path: str) -> np.ndarray:
    """The image as BGR, its EXIF orientation not applied (as TAO reads it).

    Raises:
        DatasetError: The file is not a readable image (truncated, another format).
    """
    image = None
    try:
        image = mmcv.imread(path, flag='color_ignore_orientation')
    except Exception:  # noqa: B902 - decoders raise anything on a broken file
        pass
    if image is None:
        raise DatasetError(f'{path}: not a readable image (truncated or not an image file)')
    return image


def overlay(image_bgr: np.ndarray, mask: np.ndarray, colors: Sequence[Sequence[int]],
            opacity: float = 0.5) -> np.ndarray:
    """Blend each class's RGB colour over the image (returned as BGR)."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(colors)] = np.asarray(colors, np.uint8)[:, ::-1]
    colour = lut[mask]
    valid = (mask < len(colors))[..., None]
    blend = image_bgr * (1 - opacity) + colour * opacity
    return np.where(valid, blend, image_bgr).astype(np.uint8)


def inference(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none',
              device: Optional[str] = None, tao_version: Optional[int] = None) -> List[str]:
    """Segment every image of ``dataset.test_dataset.img_dir`` with
    ``inference.checkpoint``; write ``mask_tao/<name>.png`` (training ids) and
    ``vis_tao/<name>.png`` (overlay) under the inference results dir.

    ``inference.mode: slide`` runs at full resolution in model-input-sized windows (2/3
    overlap) instead of resizing the image to the model input. ``inference.batch_size``
    images go through the model at once, in ``inference.precision`` (weights cast once),
    compiled with ``inference.compile``. Returns the mask paths.

    A TAO 6/7 spec gets TAO 6's outputs instead of the overlays (as its predict step and
    ``utils_vis.py`` write them): each image resized to ``img_size`` square, logits resized
    to it, argmax, the palette colour map saved as ``<results dir>/<image file name>``
    (same extension) and ``combined_visualisation/<image file name>``: the input at
    ``img_size`` | a 10-pixel black bar | the colour map (:func:`write_tao6_outputs`);
    ``mask_tao/`` keeps the class ids at ``img_size`` (mmseg-tao's addition). Every image
    is written (TAO writes every ``vis_after_n_batches``-th batch). ``status.json`` gets
    TAO's task lines.

    The checkpoint may also be a deployed model (:mod:`.deployed_model`): an ONNX file run
    with ONNX Runtime (TAO 5's class ids, or logits resized and argmaxed as the PyTorch
    model's) or a quantized model of the ``quantize`` task; the outputs are the same.
    """
    spec = prepare(spec_path, overrides, 'inference', tao_version)
    with task_status(results_dir(spec, 'inference'), 'inference', spec_form(spec)):
        return _inference(spec, launcher, device)


def _inference(spec, launcher: str, device: Optional[str]) -> List[str]:
    plan = single_process(spec, 'inference')
    cfg = task_config(spec, 'inference', launcher, plan)
    # No masks at inference: drop the annotation loader from the test pipeline.
    cfg.test_pipeline = [t for t in cfg.test_pipeline if t['type'] != 'LoadTAOAnnotations']
    if spec.inference.mode == 'slide':
        cfg.model.test_cfg = slide_test_cfg((spec.model.input_height, spec.model.input_width))
        cfg.test_pipeline = [t for t in cfg.test_pipeline if t['type'] != 'Resize']
    device = device or ('cuda' if plan.device == 'cuda' else 'cpu')
    model = _load_model(spec, cfg, device)
    palette = Palette.of(cfg.tao_palette)
    img_dir = spec.dataset.test_dataset.img_dir
    tao6 = getattr(spec, 'tao6', None)
    images = list_images([img_dir] if isinstance(img_dir, str) else img_dir,
                         spec.dataset.data_root, tao6=tao6 is not None)
    mask_dir, vis_dir = osp.join(cfg.work_dir, 'mask_tao'), osp.join(cfg.work_dir, 'vis_tao')
    written = []
    batch_size = spec.inference.batch_size or 1
    progress = ProgressBar(len(images))
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        arrays = [read_image(path) for path, _ in batch]  # decoded once, checked
        try:
            results = inference_model(model, arrays)
        except OnnxModelError as err:  # an image the ONNX file cannot take, named
            print(flush=True)  # ends the progress bar's line
            raise OnnxModelError(f'{err} (images: {", ".join(p for p, _ in batch)})') from None
        for (path, rel), image, result in zip(batch, arrays, results):
            mask_path = osp.join(mask_dir, rel + '.png')
            os.makedirs(osp.dirname(mask_path), exist_ok=True)
            if tao6 is not None:
                pred = tao6_prediction(result, tao6.dataset.segment.img_size)
                name = osp.join(osp.dirname(rel), osp.basename(path))
                write_tao6_outputs(path, pred, cfg.work_dir, name, tao6.dataset.segment)
            else:
                pred = result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
                mmcv.imwrite(overlay(image, pred, palette.colors,
                                     spec.inference.overlay_opacity),
                             osp.join(vis_dir, rel + '.png'))
            mmcv.imwrite(pred.astype(np.uint8), mask_path)
            written.append(mask_path)
            progress.update()
    where = (f'colour maps to {cfg.work_dir} (combined_visualisation/ beside them)'
             if tao6 is not None else f'overlays to {vis_dir}')
    print(f'\nwrote {len(written)} masks to {mask_dir} and {where}', flush=True)
    return written


def _load_model(spec, cfg, device: str) -> torch.nn.Module:
    """The model of ``inference.checkpoint``: a PyTorch checkpoint (checked to fit before
    any weight is loaded, in ``inference.precision``, compiled with ``inference.compile``),
    an ONNX file (ONNX Runtime) or a quantized model of the ``quantize`` task."""
    checkpoint = spec.inference.checkpoint
    kind = model_kind(checkpoint)
    prediction_notes('inference', kind, spec.inference.precision, spec.inference.compile)
    if kind == ONNX:
        return build_onnx_model(cfg, checkpoint, device, size_key(spec))
    model = init_model(cfg, device=device)
    if kind == QUANTIZED:
        model = restore_quantized(model, checkpoint, getattr(spec, 'quantize', None))
        model.cfg = cfg
        return model
    # Checked before any weight is loaded (init_model would load non-strictly).
    check_checkpoint_fits(model, checkpoint)
    load_checkpoint(model, checkpoint, map_location='cpu')
    return fast_prediction(model, spec.inference.precision, spec.inference.compile)


def tao6_color_map(palette: Sequence[Any]) -> Dict[int, List[int]]:
    """TAO 6's class id -> colour map: each palette entry's ``label_id`` is drawn in the
    ``rgb`` of its ``mapping_class`` (``build_target_class_list`` / ``build_palette`` of
    TAO 6's ``dataloader/utils.py``; a later entry with the same id wins)."""
    def get(e, key):
        return e[key] if isinstance(e, Mapping) else getattr(e, key)

    by_class = {get(e, 'seg_class'): list(get(e, 'rgb')) for e in palette}
    return {int(get(e, 'label_id')): by_class.get(get(e, 'mapping_class'), list(get(e, 'rgb')))
            for e in palette}


def tao6_colorize(pred: np.ndarray, color_map: Mapping[int, Sequence[float]],
                  label_transform: Optional[str]) -> np.ndarray:
    """TAO 6's colour map of a class-id map (``utils_vis.make_numpy_grid``): float RGB in
    [0, 1] to be saved; ids without a colour stay 1.0 before the scaling. Without
    ``label_transform: norm`` the palette's 0-255 values are divided by 255; with it they
    are taken as they are, on TAO's 0-1 scale (rgb ``[1, 1, 1]`` is white; values above 1
    are clipped when saved)."""
    out = np.ones(pred.shape + (3, ))
    for key, value in color_map.items():
        out[pred == int(key)] = value
    if label_transform != 'norm':
        out = out / 255
    return out.astype(float)


def tao6_input(path: str, img_size: int, mean: Sequence[float],
               std: Sequence[float]) -> np.ndarray:
    """The image as TAO 6 draws it: read with Pillow (RGB), resized to ``img_size`` square
    (bicubic) when it is not, to a 0-1 float32 tensor, normalised and de-normalised again
    (``de_norm``) as TAO's tensors are. Returns ``(img_size, img_size, 3)`` float32."""
    from PIL import Image
    img = Image.open(path).convert('RGB')
    if img.size != (img_size, img_size):
        img = img.resize((img_size, img_size), Image.BICUBIC)
    t = torch.from_numpy(np.array(img, np.uint8)).permute(2, 0, 1).float().div(255)
    m = torch.tensor(list(mean), dtype=torch.float32)[:, None, None]
    s = torch.tensor(list(std), dtype=torch.float32)[:, None, None]
    t = (t - m) / s
    for channel, mc, sc in zip(t, mean, std):
        channel.mul_(sc).add_(mc)
    return t.permute(1, 2, 0).numpy()


def tao6_prediction(result, img_size: int) -> np.ndarray:
    """Class ids at ``img_size`` square: TAO 6 resizes the logits (bilinear) to the input
    size, ``img_size``, before the argmax. mmseg-tao's TAO 6 test pipeline already predicts
    there; other sizes (e.g. slide inference) are resized here."""
    pred = result.pred_sem_seg.data[0]
    if tuple(pred.shape) == (img_size, img_size) or 'seg_logits' not in result:
        return pred.cpu().numpy()
    logits = result.seg_logits.data.float()[None]
    logits = F.interpolate(logits, size=(img_size, img_size), mode='bilinear',
                           align_corners=False)
    return logits[0].argmax(0).cpu().numpy()


def write_tao6_outputs(path: str, pred: np.ndarray, out_dir: str, name: str,
                       segment: Any) -> Tuple[str, str]:
    """Write TAO 6's two files for one image (``_visualize_infer_output``).

    Args:
        path: The input image.
        pred: Class ids, ``img_size`` square.
        out_dir: The inference results dir.
        name: The output file name (the input's, extension kept).
        segment: The TAO 6 spec's ``dataset.segment`` (palette, label_transform, img_size,
            augmentation mean / std).

    Returns:
        The colour map's path and the combined visualisation's.
    """
    from matplotlib.image import imsave
    aug = segment.augmentation
    vis_pred = tao6_colorize(pred, tao6_color_map(segment.palette), segment.label_transform)
    vis_input = tao6_input(path, segment.img_size, aug.mean, aug.std)
    bar = np.zeros((vis_input.shape[0], 10, 3), np.uint8)
    vis = np.clip(np.concatenate([vis_input, bar, vis_pred], axis=1), 0.0, 1.0)
    combined, colour = osp.join(out_dir, 'combined_visualisation', name), osp.join(out_dir,
                                                                                   name)
    for file, image in ((combined, vis), (colour, np.clip(vis_pred, 0.0, 1.0))):
        os.makedirs(osp.dirname(file), exist_ok=True)
        imsave(file, image)  # as TAO: matplotlib, RGBA for PNG, RGB for JPEG
    return colour, combined
