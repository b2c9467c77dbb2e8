"""The ``inference`` task: class-id masks and colour overlays named after each image."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine.utils import ProgressBar
from mmseg.apis import inference_model, init_model

from ..datasets.palette import Palette
from ..datasets.tao_dataset import IMG_SUFFIXES, scan_dir
from ..models.utils import check_checkpoint_fits
from ..spec.translate import slide_test_cfg
from .experiment import fast_prediction, prepare, single_process, task_config


def list_images(dirs: Sequence[str], root: Optional[str] = None) -> List[Tuple[str, str]]:
    """(image path, relative stem) for every image under ``dirs``, sorted."""
    out = []
    for d in dirs:
        d = d if osp.isabs(d) or not root else osp.join(root, d)
        if not osp.isdir(d):
            raise FileNotFoundError(f'image directory {d} does not exist')
        out += [(path, rel) for rel, path in sorted(scan_dir(d, IMG_SUFFIXES).items())]
    return out


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
    """
    spec = prepare(spec_path, overrides, 'inference', tao_version)
    plan = single_process(spec, 'inference')
    cfg = task_config(spec, 'inference', launcher, plan)
    # No masks at inference: drop the annotation loader from the test pipeline.
    cfg.test_pipeline = [t for t in cfg.test_pipeline if t['type'] != 'LoadTAOAnnotations']
    if spec.inference.mode == 'slide':
        cfg.model.test_cfg = slide_test_cfg((spec.model.input_height, spec.model.input_width))
        cfg.test_pipeline = [t for t in cfg.test_pipeline if t['type'] != 'Resize']
    device = device or ('cuda' if plan.device == 'cuda' else 'cpu')
    model = init_model(cfg, spec.inference.checkpoint, device=device)
    check_checkpoint_fits(model, spec.inference.checkpoint)
    fast_prediction(model, spec.inference.precision, spec.inference.compile)
    palette = Palette.of(cfg.tao_palette)
    img_dir = spec.dataset.test_dataset.img_dir
    images = list_images([img_dir] if isinstance(img_dir, str) else img_dir,
                         spec.dataset.data_root)
    mask_dir, vis_dir = osp.join(cfg.work_dir, 'mask_tao'), osp.join(cfg.work_dir, 'vis_tao')
    written = []
    batch_size = spec.inference.batch_size or 1
    progress = ProgressBar(len(images))
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        results = inference_model(model, [path for path, _ in batch])
        for (path, rel), result in zip(batch, results):
            pred = result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
            image = mmcv.imread(path, flag='color')
            mask_path = osp.join(mask_dir, rel + '.png')
            os.makedirs(osp.dirname(mask_path), exist_ok=True)
            mmcv.imwrite(pred, mask_path)
            mmcv.imwrite(overlay(image, pred, palette.colors, spec.inference.overlay_opacity),
                         osp.join(vis_dir, rel + '.png'))
            written.append(mask_path)
            progress.update()
    print(f'\nwrote {len(written)} masks to {mask_dir} and overlays to {vis_dir}', flush=True)
    return written
