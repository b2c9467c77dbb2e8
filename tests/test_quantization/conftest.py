"""A small trained SegFormer for the quantize tests: the shapes demo data (64x64, 4 classes),
mit_b0 with a 64-wide head trained from scratch on the CPU, once per test session; and its
fp32 mIoU on the validation images (the reference each backend is compared with)."""
import os.path as osp

import numpy as np
import pytest
import torch

TRAIN_ITERS = 80


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """``{'spec', 'root', 'checkpoint', 'calib'}``: the demo spec, its folder, the trained
    checkpoint and the calibration folder (the validation images)."""
    from mmseg_tao.apis import train
    from mmseg_tao.datasets.demo import make_kind
    root = tmp_path_factory.mktemp('quant')
    spec = make_kind(str(root), 'shapes', dict(train=24, val=8), 64, 0)
    train(spec, [f'train.max_iters={TRAIN_ITERS}', f'train.checkpoint_interval={TRAIN_ITERS}',
                 'train.validate=false', 'dataset.batch_size=4',
                 'model.decode_head.decoder_params.embed_dim=64'])
    folder = osp.dirname(spec)
    return dict(spec=spec, root=folder,
                checkpoint=osp.join(folder, 'results', 'train', f'iter_{TRAIN_ITERS}.pth'),
                calib=osp.join(folder, 'images', 'val'),
                overrides=['model.decode_head.decoder_params.embed_dim=64'])


def miou(model, root: str, num_classes: int = 4) -> float:
    """mIoU (%) of ``model`` on the demo's validation images at the model's 64x64 input
    size (the masks' size), classes absent from both prediction and masks left out."""
    from PIL import Image

    from mmseg_tao.quantization.calibration import CalibrationBatches, calibration_images
    images = calibration_images(osp.join(root, 'images', 'val'), 'val')
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for path, inputs in zip(images, CalibrationBatches(model, images, 1, desc='mIoU')):
        with torch.no_grad():
            logits = model(inputs)
        logits = torch.nn.functional.interpolate(logits, size=inputs.shape[-2:],
                                                 mode='bilinear', align_corners=False)
        pred = logits.argmax(1)[0].numpy()
        gt = np.array(Image.open(osp.join(root, 'masks', 'val', osp.basename(path))))
        for c in range(num_classes):
            inter[c] += np.sum((pred == c) & (gt == c))
            union[c] += np.sum((pred == c) | (gt == c))
    present = union > 0
    return float(100 * np.mean(inter[present] / union[present]))
