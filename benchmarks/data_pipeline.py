#!/usr/bin/env python
"""Is data loading the bottleneck? Training-pipeline images/s per worker vs the model step.

    python benchmarks/data_pipeline.py [--size 512] [--samples 40] [--batch 2]
                                       [--json benchmarks/results/data.json]

Builds the training dataset and pipeline that tools/spec2cfg.py makes from the demo shapes
spec (TAOSegDataset, LoadTAOAnnotations, RandomResize, RandomCrop, RandomFlip,
PhotoMetricDistortion, PackSegInputs) at ``--size`` and times ``--samples`` samples in one
process (= one dataloader worker). In the same run it times mit_b0 training steps (forward,
backward, AdamW; on the GPU when torch sees one, timed with CUDA events) at that size and
batch, and reports how many workers keep the model fed.
"""
import argparse
import math
import os.path as osp
import tempfile
import time

import torch

from common import demo_shapes, machine, median_ms, write_json


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--samples', type=int, default=40)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--steps', type=int, default=8)
    parser.add_argument('--json', default=None)
    args = parser.parse_args()

    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmseg.registry import DATASETS

    import mmseg_tao  # noqa: F401
    from mmseg_tao.spec import load_spec, spec_to_config
    init_default_scope('mmseg')

    cfg = spec_to_config(load_spec(osp.join(demo_shapes(args.size, 20), 'spec.yaml'), [
        f'dataset.batch_size={args.batch}', 'dataset.workers_per_gpu=0',
        'dataset.repeat_data_times=1', 'train.validate=false', 'train.max_iters=1000'],
        task='train'))
    dataset = DATASETS.build(cfg['train_dataloader']['dataset'])
    dataset[0]  # warm-up (file cache, lazy init)
    t0 = time.perf_counter()
    for i in range(args.samples):
        dataset[i % len(dataset)]
    per_worker = args.samples / (time.perf_counter() - t0)

    cfg.update(work_dir=tempfile.mkdtemp(), log_level='WARNING', custom_hooks=[])
    runner = Runner.from_cfg(Config(cfg))
    model, optim = runner.model, runner.build_optim_wrapper(runner.optim_wrapper)
    batch = [dataset[i % len(dataset)] for i in range(args.batch)]
    data = dict(inputs=[b['inputs'] for b in batch], data_samples=[b['data_samples']
                                                                   for b in batch])
    model.train()
    device = next(model.parameters()).device  # the Runner's: CUDA when visible
    step = median_ms({'step': lambda: model.train_step(data, optim)}, args.steps,
                     device=device)['step'] / 1000
    needed = args.batch / step
    workers = math.ceil(needed / per_worker)
    m = machine()
    print(f'{m["cpu"]}, {m["threads"]} threads; {args.size}x{args.size}, batch {args.batch}')
    print(f'training pipeline: {per_worker:.1f} images/s per worker')
    print(f'mit_b0 training step: {step * 1000:.0f} ms -> consumes {needed:.1f} images/s')
    print(f'workers needed to keep up: {workers} (pipeline / model = '
          f'{per_worker / needed:.1f}x per worker)')
    write_json(args.json, dict(size=args.size, batch=args.batch,
                               images_per_s_per_worker=per_worker, step_ms=step * 1000,
                               images_per_s_needed=needed, workers_needed=workers))


if __name__ == '__main__':
    torch.manual_seed(0)
    main()
