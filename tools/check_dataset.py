#!/usr/bin/env python
"""Check a dataset before training: pairs, unreadable files, sizes, palette, class shares.

    python tools/check_dataset.py SPEC_OR_CONFIG [--splits train val test] [key=value ...]

SPEC_OR_CONFIG is a TAO spec (.yaml, overrides allowed) or an mmengine config (.py) whose
dataloaders use ``TAOSegDataset``. Every image and mask is decoded once. Prints, per split,
the pairs found, image sizes, the pixel share of each class and every problem; exits 1 if
there is any problem, 2 if the input itself is unusable.
"""
import argparse
import functools
import os.path as osp
import sys

from mmengine.config import Config

import mmseg_tao  # noqa: F401
from mmseg_tao.datasets import (
    DatasetError,
    Palette,
    SplitReport,
    check_pairs,
    format_report,
    pair_files,
)
from mmseg_tao.datasets.tao_dataset import pair_sorted
from mmseg_tao.datasets.transforms.tao6_loading import load_tao6_mask
from mmseg_tao.spec import SpecError, load_spec
from mmseg_tao.spec.translate import metainfo, palette_entries, split_dataset, test_pipeline_of

SPLITS = ('train', 'val', 'test')


def tao_dataset_cfg(loader_cfg):
    """The TAOSegDataset config inside a dataloader config (through wrappers)."""
    if not loader_cfg:
        return None
    ds = loader_cfg.get('dataset')
    while ds is not None and ds.get('type') != 'TAOSegDataset':
        ds = ds.get('dataset')
    return ds


def _tao6_decoder(ds):
    """TAO 6's mask rule when the dataset's pipeline loads masks with LoadTAO6Annotations."""
    for step in ds.get('pipeline') or []:
        if isinstance(step, dict) and step.get('type') == 'LoadTAO6Annotations':
            return functools.partial(load_tao6_mask, colors=step['colors'],
                                     label_transform=step.get('label_transform'))
    return None


def check_split(ds) -> SplitReport:
    palette = Palette.of(ds['palette'])
    pair = pair_sorted if ds.get('pairing') == 'sorted' else pair_files
    report = SplitReport()
    img_dirs = ds['img_dirs'] if isinstance(ds['img_dirs'], list) else [ds['img_dirs']]
    ann_dirs = ds.get('ann_dirs') or [None] * len(img_dirs)
    ann_dirs = ann_dirs if isinstance(ann_dirs, list) else [ann_dirs]
    root = ds.get('data_root')

    def join(path):
        return path if path is None or not root else osp.join(root, path)

    for img_dir, ann_dir in zip(img_dirs, ann_dirs):
        pairs, problems = pair(join(img_dir), join(ann_dir), ds.get('img_suffix'),
                               ds.get('seg_map_suffix'))
        report.problems += problems
        check_pairs(pairs, palette, ds.get('input_type', 'rgb'),
                    ds.get('unknown_label', 'error'), report, decode=_tao6_decoder(ds))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('source', help='TAO spec (.yaml) or mmengine config (.py)')
    parser.add_argument('overrides', nargs='*', metavar='key=value',
                        help='spec overrides (specs only)')
    parser.add_argument('--splits', nargs='+', choices=SPLITS, default=list(SPLITS))
    args = parser.parse_args(argv)
    try:
        if args.source.endswith(('.yaml', '.yml')):
            spec = load_spec(args.source, args.overrides)
            datasets = {split: split_dataset(spec, split, pipeline=test_pipeline_of(spec))
                        for split in SPLITS}
            for ds in datasets.values():
                if ds is not None:  # tao_palette / tao_metainfo, referred to by name there
                    ds.update(palette=palette_entries(spec), metainfo=metainfo(spec))
        else:
            cfg = Config.fromfile(args.source)
            datasets = {split: tao_dataset_cfg(cfg.get(f'{split}_dataloader'))
                        for split in SPLITS}
    except (SpecError, FileNotFoundError, SyntaxError) as err:
        print(f'check_dataset: {err}', file=sys.stderr)
        return 2
    problems, checked = 0, 0
    for split in args.splits:
        ds = datasets.get(split)
        if ds is None:
            continue
        checked += 1
        try:
            report = check_split(ds)
        except (DatasetError, ValueError) as err:
            print(f'[{split}] {err}')
            problems += 1
            continue
        print(format_report(split, report, Palette.of(ds['palette']).classes))
        problems += len(report.problems)
    if not checked:
        print(f'check_dataset: {args.source} has no TAOSegDataset in '
              f'{", ".join(s + "_dataloader" for s in args.splits)}', file=sys.stderr)
        return 2
    print(f'{problems} problem(s) found' if problems else 'dataset OK')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
