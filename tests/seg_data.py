"""Tiny on-disk segmentation datasets for tests."""
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

import numpy as np
from PIL import Image

ISBI_PALETTE = [
    dict(seg_class='foreground', rgb=[0, 0, 0], label_id=0, mapping_class='foreground'),
    dict(seg_class='background', rgb=[255, 255, 255], label_id=1, mapping_class='background'),
]


def write_pair(img_dir: str, ann_dir: str, name: str, mask: np.ndarray,
               rgb_lut: Dict[int, Tuple[int, int, int]] = None, gray_image: bool = False,
               img_ext: str = '.png', seed: int = 0) -> None:
    """An image correlated with ``mask`` (ids) and the mask (ids, or colours via rgb_lut)."""
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(img_dir, osp.dirname(name)), exist_ok=True)
    os.makedirs(osp.join(ann_dir, osp.dirname(name)), exist_ok=True)
    base = (mask.astype(np.float32) * 60 + 40)
    if gray_image:
        img = np.clip(base + rng.normal(0, 10, mask.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img, mode='L').save(osp.join(img_dir, name + img_ext))
    else:
        img = np.clip(base[..., None] + rng.normal(0, 10, mask.shape + (3, )), 0, 255)
        Image.fromarray(img.astype(np.uint8)).save(osp.join(img_dir, name + img_ext))
    if rgb_lut is None:
        Image.fromarray(mask.astype(np.uint8)).save(osp.join(ann_dir, name + '.png'))
    else:
        colour = np.zeros(mask.shape + (3, ), np.uint8)
        for v, rgb in rgb_lut.items():
            colour[mask == v] = rgb
        Image.fromarray(colour).save(osp.join(ann_dir, name + '.png'))


def make_dataset(root: str, n: int = 4, size: Tuple[int, int] = (64, 64),
                 values: Sequence[int] = (0, 1), **kwargs) -> Tuple[str, str]:
    """``root/images`` and ``root/masks`` with ``n`` pairs: a rectangle of values[1] (and
    further values as stripes) on values[0]."""
    img_dir, ann_dir = osp.join(root, 'images'), osp.join(root, 'masks')
    rng = np.random.default_rng(len(root))
    for i in range(n):
        mask = np.full(size, values[0], np.uint8)
        y, x = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
        mask[y:y + size[0] // 2, x:x + size[1] // 2] = values[1]
        for j, v in enumerate(values[2:]):
            mask[:, j * 4:(j * 4) + 2] = v
        write_pair(img_dir, ann_dir, f'img_{i:03d}', mask, seed=i, **kwargs)
    return img_dir, ann_dir


def write_isbi_spec(root, train: dict, val: str = None, **top) -> str:
    """A tiny grayscale ISBI-style spec (mit_b0, 64x64, 32-wide head) over 4 generated
    training pairs, written to ``root/spec.yaml``.

    Args:
        train: The spec's ``train`` section.
        val: None (no validation data), ``'same'`` (the training images) or
            ``'separate'`` (2 other images).
        **top: Other top-level spec keys (e.g. ``results_dir``).
    """
    import yaml
    img, ann = make_dataset(osp.join(str(root), 'train'), n=4, values=(0, 255),
                            gray_image=True)
    dataset = dict(input_type='grayscale', batch_size=2, workers_per_gpu=0,
                   repeat_data_times=1, palette=ISBI_PALETTE,
                   train_dataset=dict(img_dir=[img], ann_dir=[ann]))
    if val == 'same':
        dataset['val_dataset'] = dict(img_dir=img, ann_dir=ann)
    elif val == 'separate':
        vimg, vann = make_dataset(osp.join(str(root), 'val'), n=2, values=(0, 255),
                                  gray_image=True)
        dataset['val_dataset'] = dict(img_dir=vimg, ann_dir=vann)
    spec = dict(model=dict(input_height=64, input_width=64, backbone=dict(type='mit_b0'),
                           decode_head=dict(decoder_params=dict(embed_dim=32))),
                dataset=dataset, train=train, **top)
    path = osp.join(str(root), 'spec.yaml')
    with open(path, 'w') as f:
        f.write(yaml.safe_dump(spec))
    return path
