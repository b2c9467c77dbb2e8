#!/usr/bin/env python
"""Make an ISBI-layout dataset (TAO's folders) for configs/segformer_isbi.py.

    python tools/prepare_isbi.py OUT_DIR --volume train-volume.tif --labels train-labels.tif
                                 [--num-val 5]
    python tools/prepare_isbi.py OUT_DIR                     (synthetic, no download)

From the ISBI 2012 EM segmentation challenge files (multi-page TIFF stacks: 30 grayscale
slices and their labels, 255 = cell, 0 = membrane), each slice becomes
``OUT_DIR/images/<split>/slice_NN.png`` with its mask in ``OUT_DIR/masks/<split>/``; the last
``--num-val`` slices are the validation split. The masks keep ISBI's 0 / 255 values, which
``input_type: grayscale`` binarises as TAO does. Without the TIFFs, the same layout is
filled with synthetic EM-like membranes (tools/make_demo_dataset.py's generator) at ISBI's
size, so that the example config runs on a fresh machine.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List

import numpy as np
from PIL import Image, ImageSequence

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from make_demo_dataset import save_png, split_dirs, write_split  # noqa: E402


def read_stack(path: str) -> List[np.ndarray]:
    """Every page of a multi-page TIFF as a 2-D uint8 array."""
    if not osp.isfile(path):
        raise SystemExit(f'prepare_isbi.py: {path}: no such file')
    with Image.open(path) as stack:
        pages = [np.asarray(page.convert('L')) for page in ImageSequence.Iterator(stack)]
    return pages


def convert(volume: str, labels: str, out_dir: str, num_val: int) -> None:
    images, masks = read_stack(volume), read_stack(labels)
    if len(images) != len(masks):
        raise SystemExit(f'prepare_isbi.py: {volume} has {len(images)} slices but {labels} '
                         f'has {len(masks)}')
    if not 0 < num_val < len(images):
        raise SystemExit(f'prepare_isbi.py: --num-val {num_val} must leave training slices '
                         f'(the stack has {len(images)})')
    for i, (image, mask) in enumerate(zip(images, masks)):
        if image.shape != mask.shape:
            raise SystemExit(f'prepare_isbi.py: slice {i} is {image.shape} in {volume} but '
                             f'{mask.shape} in {labels}')
        split = 'val' if i >= len(images) - num_val else 'train'
        img_dir, ann_dir = split_dirs(out_dir, split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        save_png(image, osp.join(img_dir, f'slice_{i:02d}.png'))
        save_png(mask, osp.join(ann_dir, f'slice_{i:02d}.png'))
    print(f'{len(images) - num_val} training and {num_val} validation slices -> '
          f'{out_dir}/images, {out_dir}/masks')


def synthesise(out_dir: str, num_train: int, num_val: int, size: int, seed: int) -> None:
    for split, count in (('train', num_train), ('val', num_val)):
        write_split(out_dir, 'membranes', split, count, size, seed)
    print(f'{num_train} training and {num_val} validation synthetic EM images ({size}x{size}) '
          f'-> {out_dir}/images, {out_dir}/masks')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir', help='dataset root (e.g. data/isbi)')
    parser.add_argument('--volume', help='ISBI 2012 train-volume.tif')
    parser.add_argument('--labels', help='ISBI 2012 train-labels.tif')
    parser.add_argument('--num-val', type=int, default=5, help='validation slices (default 5)')
    parser.add_argument('--num-train', type=int, default=25,
                        help='synthetic only: training images (default 25, as ISBI)')
    parser.add_argument('--size', type=int, default=512, help='synthetic only: image size')
    parser.add_argument('--seed', type=int, default=0, help='synthetic only: random seed')
    args = parser.parse_args(argv)
    if bool(args.volume) != bool(args.labels):
        parser.error('--volume and --labels go together')
    if args.volume:
        convert(args.volume, args.labels, args.out_dir, args.num_val)
    else:
        synthesise(args.out_dir, args.num_train, args.num_val, args.size, args.seed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
