#!/usr/bin/env python
"""Test a segmentor (mmseg's tools/test.py arguments; mmseg_tao registered).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show]
                         [--show-dir DIR] [--wait-time S] [--tta] [--cfg-options k=v ...]
                         [--launcher none|pytorch|slurm|mpi]

The checkpoint may be in any layout mmseg_tao reads (TAO, NVlabs, Hugging Face, mmseg).
``--show-dir`` draws every image (mmseg's hook draws every 50th by default).
"""
import sys

from mmengine.runner import Runner

import mmseg_tao  # noqa: F401
from mmseg_tao.apis.runner_cli import (
    parse_runner_args,
    process_group_teardown,
    runner_config,
    runner_parser,
)


def parse_args(argv=None):
    parser = runner_parser('Test (and eval) a segmentor', 'test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='directory to save the predicted masks (as PNG)')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory to save drawn predictions')
    parser.add_argument('--wait-time', type=float, default=2, help='interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    return parse_runner_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = runner_config(args)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        vis = cfg.default_hooks.visualization
        vis.draw, vis.interval = True, 1
        if args.show:
            vis.show, vis.wait_time = True, args.wait_time
        if args.show_dir:
            cfg.visualizer.save_dir = args.show_dir
    if args.tta:
        if 'tta_pipeline' not in cfg or 'tta_model' not in cfg:
            print('--tta: the config has no tta_pipeline / tta_model', file=sys.stderr)
            return 2
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    runner = Runner.from_cfg(cfg)
    with process_group_teardown():
        runner.test()
    return 0


if __name__ == '__main__':
    sys.exit(main())
