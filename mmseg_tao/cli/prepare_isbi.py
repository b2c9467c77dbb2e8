"""Make an ISBI-layout dataset (TAO's folders) for the ISBI example config and spec.

    mmseg-tao prepare-isbi OUT_DIR --volume train-volume.tif --labels train-labels.tif
                           [--num-val 5]
    mmseg-tao prepare-isbi OUT_DIR                     (synthetic, no download)

From the ISBI 2012 EM segmentation challenge files (multi-page TIFF stacks: 30 grayscale
slices and their labels, 255 = cell, 0 = membrane), each slice becomes
``OUT_DIR/images/<split>/slice_NN.png`` with its mask in ``OUT_DIR/masks/<split>/``; the last
``--num-val`` slices are the validation split. The masks keep ISBI's 0 / 255 values, which
``input_type: grayscale`` binarises as TAO does. Without the TIFFs, the same layout is
filled with synthetic EM-like membranes (the generator of ``mmseg-tao demo-data``) at
ISBI's size, so that the example config (``segformer_isbi.py``, data in ``data/isbi``)
runs on a fresh machine.
"""
import argparse
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image, ImageSequence

from mmseg_tao.datasets.demo import save_png, split_dirs, write_split

from .command import ExitCode, UserError, make_parser, run_main


def read_stack(path: str) -> List[np.ndarray]:
    """Every page of a multi-page TIFF as a 2-D uint8 array."""
    if not osp.isfile(path):
        raise UserError(f'{path}: no such file')
    with Image.open(path) as stack:
        pages = [np.asarray(page.convert('L')) for page in ImageSequence.Iterator(stack)]
    return pages


def convert(volume: str, labels: str, out_dir: str, num_val: int) -> None:
    """Write the slices of ISBI's TIFF stacks in TAO's folders.

    Args:
        volume: The image stack (``train-volume.tif``).
        labels: The label stack (``train-labels.tif``), one page per image page.
        out_dir: The dataset root.
        num_val: How many of the last slices make the validation split.
    """
    images, masks = read_stack(volume), read_stack(labels)
    if len(images) != len(masks):
        raise UserError(f'{volume} has {len(images)} slices but {labels} has {len(masks)}')
    if not 0 < num_val < len(images):
        raise UserError(f'--num-val {num_val} must leave training slices (the stack has '
                        f'{len(images)})')
    for i, (image, mask) in enumerate(zip(images, masks)):
        if image.shape != mask.shape:
            raise UserError(f'slice {i} is {image.shape} in {volume} but {mask.shape} in '
                            f'{labels}')
        split = 'val' if i >= len(images) - num_val else 'train'
        img_dir, ann_dir = split_dirs(out_dir, split)
        save_png(image, osp.join(img_dir, f'slice_{i:02d}.png'))
        save_png(mask, osp.join(ann_dir, f'slice_{i:02d}.png'))
    print(f'{len(images) - num_val} training and {num_val} validation slices -> '
          f'{out_dir}/images, {out_dir}/masks')


def synthesise(out_dir: str, num_train: int, num_val: int, size: int, seed: int) -> None:
    """Fill TAO's folders with synthetic EM-like images (the demo ``membranes`` kind)."""
    for split, count in (('train', num_train), ('val', num_val)):
        write_split(out_dir, 'membranes', split, count, size, seed)
    print(f'{num_train} training and {num_val} validation synthetic EM images ({size}x{size}) '
          f'-> {out_dir}/images, {out_dir}/masks')


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The arguments of ``mmseg-tao prepare-isbi`` (and ``tools/prepare_isbi.py``)."""
    parser = make_parser(prog, __doc__)
    parser.add_argument('out_dir', help='dataset root (e.g. data/isbi)')
    parser.add_argument('--volume', help='ISBI 2012 train-volume.tif')
    parser.add_argument('--labels', help='ISBI 2012 train-labels.tif')
    parser.add_argument('--num-val', type=int, default=5, help='validation slices (default 5)')
    parser.add_argument('--num-train', type=int, default=25,
                        help='synthetic only: training images (default 25, as ISBI)')
    parser.add_argument('--size', type=int, default=512, help='synthetic only: image size')
    parser.add_argument('--seed', type=int, default=0, help='synthetic only: random seed')
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> ExitCode:
    """``mmseg-tao prepare-isbi``; returns the exit status (2: missing or mismatched
    stacks, bad arguments)."""
    parser = build_parser(prog)

    def run(args: argparse.Namespace) -> ExitCode:
        if bool(args.volume) != bool(args.labels):
            parser.error('--volume and --labels go together')
        if args.volume:
            convert(args.volume, args.labels, args.out_dir, args.num_val)
        else:
            synthesise(args.out_dir, args.num_train, args.num_val, args.size, args.seed)
        return 0

    return run_main(parser, run, argv)
