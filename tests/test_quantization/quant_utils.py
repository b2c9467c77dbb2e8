"""mIoU of a (quantised) segmentor on the demo's validation images."""
import os.path as osp

import numpy as np
import torch


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
