"""Calibration images: the folder checked, then batches through the spec's test pipeline.

TAO 7.0.1 builds its calibration loader from ``dataset.segment.quant_calibration_dataset.
images_dir`` with the test transforms (``SFDataModule.setup("calibration")``); here the
images go through the spec's test pipeline (without the mask loader) and the model's data
preprocessor (mean / std, channel order, padding), as mmseg's ``inference_model`` feeds them.
The folder is read as TAO 6/7 read image folders: its entries, one level, sorted by name.
"""
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence

import torch
import torch.nn as nn

from ..datasets.pairing import IMG_SUFFIXES
from ..datasets.tao_dataset import DatasetError


def calibration_images(img_dir: Optional[str], key: str) -> List[str]:
    """The image files of the calibration folder, sorted by name.

    Args:
        img_dir: The folder.
        key: The spec key that names it (for the messages).

    Raises:
        DatasetError: The folder is missing, holds no image, or holds a file that is not
            an image (by suffix); one message naming the path.
    """
    if not img_dir:
        raise DatasetError(f'{key}: not set; static PTQ calibrates on these images')
    if not osp.isdir(img_dir):
        raise DatasetError(f'{key}: calibration folder {img_dir} does not exist',
                           missing_dirs=[osp.abspath(img_dir)])
    images = []
    for name in sorted(os.listdir(img_dir)):
        path = osp.join(img_dir, name)
        if name.startswith('.') or osp.isdir(path):
            continue
        if not name.lower().endswith(IMG_SUFFIXES):
            raise DatasetError(f'{key}: {path} is not an image (calibration images end in '
                               f'{", ".join(IMG_SUFFIXES)})')
        images.append(path)
    if not images:
        raise DatasetError(f'{key}: no images in the calibration folder {img_dir}')
    return images


class CalibrationBatches:
    """Re-iterable normalised batches ``[N,3,H,W]`` of calibration images, with a progress
    bar per pass.

    Args:
        model: A segmentor built by :func:`mmseg.apis.init_model` (its ``cfg`` holds the
            test pipeline without the mask loader; its data preprocessor normalises).
        images: Image paths.
        batch_size: Images per batch.
        size: ``(H, W)`` the batches are resized to (bilinear), or None for the pipeline's
            size (an ONNX graph with a fixed input size needs exactly it).
        desc: The progress bar's label.
    """

    def __init__(self, model: nn.Module, images: Sequence[str], batch_size: int = 1,
                 size: Optional[Sequence[int]] = None, desc: str = 'Calibrating model'):
        self.model = model
        self.images = list(images)
        self.batch_size = max(1, batch_size)
        self.size = tuple(size) if size else None
        self.desc = desc

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def _batch(self, paths: Sequence[str]) -> torch.Tensor:
        from mmseg.apis.inference import _preprare_data

        from ..apis.inference import read_image
        data, _ = _preprare_data([read_image(p) for p in paths], self.model)
        with torch.no_grad():
            inputs = self.model.data_preprocessor(data, False)['inputs'].float().cpu()
        if self.size and tuple(inputs.shape[-2:]) != self.size:
            inputs = torch.nn.functional.interpolate(inputs, size=self.size, mode='bilinear',
                                                     align_corners=False)
        return inputs

    def __iter__(self) -> Iterator[torch.Tensor]:
        from tqdm import tqdm
        starts = range(0, len(self.images), self.batch_size)
        for start in tqdm(starts, desc=self.desc, unit='batch', total=len(self)):
            yield self._batch(self.images[start:start + self.batch_size])
