"""Check a dataset before training: pairs, unreadable files, sizes, palette, class shares.

    mmseg-tao check-dataset SPEC_OR_CONFIG [--splits train val test] [key=value ...]

SPEC_OR_CONFIG is a TAO spec (.yaml, overrides allowed) or an mmengine config (.py) whose
dataloaders use ``TAOSegDataset``, or the name of a shipped one. Every image and mask is
decoded once. Prints, per split, the pairs found, image sizes, the pixel share of each class
and every problem; exits 1 if there is any problem, 2 if the input itself is unusable.
"""
import argparse
import functools
import os.path as osp
from typing import Callable, Dict, Optional, Sequence

from mmengine.config import Config

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
from mmseg_tao.utils.configs import resolve_config

from .command import ExitCode, UserError, make_parser, run_main

SPLITS = ('train', 'val', 'test')


def tao_dataset_cfg(loader_cfg: Optional[dict]) -> Optional[dict]:
    """The TAOSegDataset config inside a dataloader config (through wrappers)."""
    if not loader_cfg:
        return None
    ds = loader_cfg.get('dataset')
    while ds is not None and ds.get('type') != 'TAOSegDataset':
        ds = ds.get('dataset')
    return ds


def _tao6_decoder(ds: dict) -> Optional[Callable]:
    """TAO 6's mask rule when the dataset's pipeline loads masks with LoadTAO6Annotations."""
    for step in ds.get('pipeline') or []:
        if isinstance(step, dict) and step.get('type') == 'LoadTAO6Annotations':
            return functools.partial(load_tao6_mask, colors=step['colors'],
                                     label_transform=step.get('label_transform'))
    return None


def check_split(ds: dict) -> SplitReport:
    """Decode and check every pair of one ``TAOSegDataset`` config.

    Args:
        ds: The dataset config (``img_dirs``, ``ann_dirs``, ``palette``, ...).
    """
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


def split_datasets(source: str, overrides: Sequence[str]) -> Dict[str, Optional[dict]]:
    """The ``TAOSegDataset`` config of every split of a spec or config (``None`` where a
    split has none)."""
    if source.endswith(('.yaml', '.yml')):
        spec = load_spec(source, overrides)
        datasets = {split: split_dataset(spec, split, pipeline=test_pipeline_of(spec))
                    for split in SPLITS}
        for ds in datasets.values():
            if ds is not None:  # tao_palette / tao_metainfo, referred to by name there
                ds.update(palette=palette_entries(spec), metainfo=metainfo(spec))
        return datasets
    cfg = Config.fromfile(source)
    return {split: tao_dataset_cfg(cfg.get(f'{split}_dataloader')) for split in SPLITS}


def check_dataset(args: argparse.Namespace) -> ExitCode:
    """Check the splits asked for and print the reports; returns the exit status."""
    try:
        datasets = split_datasets(resolve_config(args.source), args.overrides)
    except SyntaxError as err:  # a config that is not Python
        raise UserError(str(err)) from err
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
        raise UserError(f'{args.source} has no TAOSegDataset in '
                        f'{", ".join(s + "_dataloader" for s in args.splits)}')
    print(f'{problems} problem(s) found' if problems else 'dataset OK')
    return 1 if problems else 0


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The arguments of ``mmseg-tao check-dataset`` (and ``tools/check_dataset.py``)."""
    parser = make_parser(prog, __doc__)
    parser.add_argument('source', help='TAO spec (.yaml) or mmengine config (.py)')
    parser.add_argument('overrides', nargs='*', metavar='key=value',
                        help='spec overrides (specs only)')
    parser.add_argument('--splits', nargs='+', choices=SPLITS, default=list(SPLITS))
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> ExitCode:
    """``mmseg-tao check-dataset``; returns 0 (dataset OK), 1 (problems found) or 2 (the
    spec or config itself is unusable)."""
    return run_main(build_parser(prog), check_dataset, argv,
                    user_errors=(SpecError, FileNotFoundError))
