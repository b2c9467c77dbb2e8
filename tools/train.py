#!/usr/bin/env python
"""Train a segmentor (mmseg's tools/train.py arguments; mmseg_tao registered).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

``--resume`` without a path continues from the newest complete ``iter_N.pth`` in the work
dir (or starts fresh when there is none); with a path, from that checkpoint.
"""
import argparse
import os
import os.path as osp
import sys

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmseg_tao  # noqa: F401  (registration and compat before the config is built)
from mmseg_tao.datasets import DatasetError
from mmseg_tao.engine import find_resume_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume: from CKPT, or (no value) from the newest complete '
                        'iter_N.pth in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed precision (needs a GPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if cfg.optim_wrapper.get('type') in ('AmpOptimWrapper', 'TAOAmpOptimWrapper'):
            print('AMP is already enabled in the config', file=sys.stderr)
        else:  # bf16 where the GPU has it, fp16 with loss scaling otherwise, CPU bf16
            cfg.optim_wrapper.type = 'TAOAmpOptimWrapper'
    if not torch.cuda.is_available():
        cfg.sync_bn = None  # SyncBN needs CUDA
    if args.resume == 'auto':
        latest = find_resume_checkpoint(cfg.work_dir)
        if latest:
            cfg.load_from, cfg.resume = latest, True
    elif args.resume:
        cfg.load_from, cfg.resume = args.resume, True
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg))
    try:
        runner.train()
    except DatasetError as err:  # the user's data, not a bug: no traceback
        print(f'train.py: {args.config}: {err}', file=sys.stderr)
        return 2
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
