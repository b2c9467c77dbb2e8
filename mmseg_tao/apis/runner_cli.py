"""What tools/train.py and tools/test.py share: mmseg's common arguments, the config they
make of them, and the process-group teardown after the run."""
import argparse
import contextlib
import os
import os.path as osp
from typing import Iterator, Optional, Sequence

import torch.distributed as dist
from mmengine.config import Config, DictAction


def runner_parser(description: str, config_help: str) -> argparse.ArgumentParser:
    """A parser with mmseg's common tool arguments: ``config``, ``--work-dir``,
    ``--cfg-options``, ``--launcher`` and ``--local-rank``; add the tool's own after."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    parser.add_argument('--work-dir', help='the dir to save logs, models and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_runner_args(parser: argparse.ArgumentParser,
                      argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse, and export ``--local-rank`` as ``LOCAL_RANK`` for launchers that pass it."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def runner_config(args: argparse.Namespace) -> Config:
    """The config with the common arguments applied, as mmseg's tools do: the launcher,
    ``--cfg-options``, and the work dir (``--work-dir``, else the config's, else
    ``./work_dirs/<config name>``)."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


@contextlib.contextmanager
def process_group_teardown() -> Iterator[None]:
    """Destroy the default process group when the block ends, however it ends: tearing it
    down explicitly avoids an occasional abort at interpreter exit (gloo)."""
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
