#!/usr/bin/env python
"""Train a segmentor (mmseg's tools/train.py arguments; mmseg_tao registered).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

``--resume`` without a path continues from the newest complete ``iter_N.pth`` (or TAO 6's
``model_epoch_E_step_S.pth``) in the work dir (or starts fresh when there is none); with a
path, from that checkpoint.
"""
import sys

import torch
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmseg_tao  # noqa: F401  (registration and compat before the config is built)
from mmseg_tao.apis.runner_cli import (
    parse_runner_args,
    process_group_teardown,
    runner_config,
    runner_parser,
)
from mmseg_tao.datasets import DatasetError
from mmseg_tao.engine import find_resume_checkpoint
from mmseg_tao.utils.configs import example_data_hint


def parse_args(argv=None):
    parser = runner_parser('Train a segmentor', 'train config file path')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume: from CKPT, or (no value) from the newest complete '
                        'iter_N.pth (or model_epoch_E_step_S.pth) in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed precision (needs a GPU)')
    return parse_runner_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = runner_config(args)
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
    with process_group_teardown():
        try:
            runner.train()
        except DatasetError as err:  # the user's data, not a bug: no traceback
            hint = example_data_hint(args.config, err.missing_dirs)
            print(f'train.py: {args.config}: {err}{hint}', file=sys.stderr)
            return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
