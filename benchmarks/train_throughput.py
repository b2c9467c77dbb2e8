#!/usr/bin/env python
"""Training throughput and peak memory: the TAO-spec path vs a stock mmseg config, and the
whole training loop vs a bare training step.

    python benchmarks/train_throughput.py [--device {cpu,cuda}] [--batch-sizes 2 8]
        [--workers N] [--amp] [--iters 40] [--rounds 2] [--size 512]
        [--json benchmarks/results/train.json]

All train mit_b0 SegFormer on the same demo data (tools/make_demo_dataset.py, shapes, at
``--size``) without validation: (a) ``ours``: the config that tools/spec2cfg.py makes from
the demo spec (TAOSegDataset with the palette lookup, LoadTAOAnnotations, mit_b0 +
TAOSegFormerHead, status / atomic-checkpoint / record hooks); (b) ``stock``: a hand-written
mmseg config in the style of mmseg's segformer configs (BaseSegDataset, LoadAnnotations,
MixVisionTransformer + SegformerHead, mmseg's hooks); (c) ``ours-data``: (a) with (b)'s
model, which isolates the plugin's data path and hooks. Each run is its own process (peak
RSS and GPU memory are the process's); runs alternate for ``--rounds`` rounds and the best
iterations/s of each is reported (median of mmengine's iteration times after 10 warm-up
iterations; each iteration ends with a host-device synchronisation when its losses are
logged, so on CUDA the wall time between iterations is the device's time too).

Per batch size, a ``bare step`` process times (a)'s model, built from the same config and
moved to the device, doing forward + backward + AdamW (through the config's optimizer
wrapper) on a fixed random batch already on the device: no runner, no data loading. The
whole loop's images/s as a fraction of it shows what the data path, hooks and logging cost.

Defaults: on CUDA batch 2 and 8, 4 dataloader workers with pinned memory; on the CPU (GPUs
hidden from the workers) batch 2, no workers. ``--amp``: ours ``train.amp=true``
(TAOAmpOptimWrapper, dtype 'auto': bf16 where the GPU has it, else fp16), stock mmengine's
AmpOptimWrapper in the same dtype (it needs a GPU).
"""
import argparse
import copy
import json
import os.path as osp
import resource
import statistics
import tempfile
from typing import Dict, List, Optional

import torch

from common import (
    default_device,
    demo_shapes,
    last_json_line,
    median_ms,
    run_worker,
    stock_segformer_model,
    write_json,
)

CLASSES = ('background', 'ellipse', 'box', 'triangle')
VARIANTS = ('ours', 'ours-data', 'stock')
WARMUP_ITERS = 10
TARGETS = dict(loop_fraction=0.70, ratio=1.0)  # on a GPU (issue 10)


# --------------------------------------------------------------------------- configs
def amp_dtype_name() -> str:
    """The dtype TAOAmpOptimWrapper's 'auto' picks here ('bfloat16' or 'float16')."""
    from mmseg_tao.engine.optimizers import amp_dtype
    return str(amp_dtype('auto')).replace('torch.', '')


def stock_config(data_root: str, size: int, iters: int, work_dir: str, batch: int = 2,
                 workers: int = 0, pin_memory: bool = False, amp: bool = False) -> dict:
    """mmseg 1.x SegFormer mit_b0 (configs/segformer/segformer_mit-b0_*), hand-written."""
    crop = (size, size)
    pre = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
               size=crop)
    pipeline = [
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
        dict(type='RandomResize', scale=(size, 1024 if size < 1024 else 2048),
             ratio_range=(0.5, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop, cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5), dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs')]
    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
        paramwise_cfg=dict(custom_keys=dict(pos_block=dict(decay_mult=0.0),
                                            norm=dict(decay_mult=0.0),
                                            head=dict(lr_mult=10.0))))
    if amp:
        optim_wrapper.update(type='AmpOptimWrapper', dtype=amp_dtype_name())
    return dict(
        default_scope='mmseg', work_dir=work_dir, randomness=dict(seed=49),
        # mmseg's default_runtime.py turns cudnn_benchmark on, as our configs do
        env_cfg=dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork'),
                     dist_cfg=dict(backend='gloo')),
        model=stock_segformer_model(num_classes=len(CLASSES), data_preprocessor=pre),
        train_dataloader=dict(
            batch_size=batch, num_workers=workers, persistent_workers=workers > 0,
            pin_memory=pin_memory, sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(type='BaseSegDataset', data_root=data_root,
                         data_prefix=dict(img_path='images/train', seg_map_path='masks/train'),
                         img_suffix='.png', seg_map_suffix='.png',
                         metainfo=dict(classes=CLASSES), pipeline=pipeline)),
        optim_wrapper=optim_wrapper,
        param_scheduler=[dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=iters,
                              by_epoch=False)],
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=iters),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        log_processor=dict(by_epoch=False), log_level='WARNING')


def ours_config(spec: str, iters: int, work_dir: str, batch: int = 2, workers: int = 0,
                pin_memory: bool = False, amp: bool = False) -> dict:
    """The config tools/spec2cfg.py makes from ``spec``, for a benchmark run."""
    from mmseg_tao.spec import load_spec, spec_to_config
    cfg = spec_to_config(load_spec(spec, [
        f'train.max_iters={iters}', 'train.validate=false', f'train.checkpoint_interval={iters}',
        'train.logging_interval=10', f'dataset.batch_size={batch}',
        f'dataset.workers_per_gpu={workers}', 'dataset.repeat_data_times=1',
        f'train.amp={str(amp).lower()}'], task='train'))
    cfg.update(work_dir=work_dir, log_level='WARNING')
    cfg['train_dataloader']['pin_memory'] = pin_memory
    return cfg


def make_config(variant: str, data: str, size: int, iters: int, batch: int, workers: int,
                amp: bool, device: str) -> dict:
    """The config of ``variant`` (ours, ours-data or stock) in a fresh work dir."""
    work = tempfile.mkdtemp()
    loader = dict(batch=batch, workers=workers, pin_memory=device == 'cuda', amp=amp)
    if variant == 'stock':
        return stock_config(data, size, iters, work, **loader)
    cfg = ours_config(osp.join(data, 'spec.yaml'), iters, work, **loader)
    if variant == 'ours-data':  # our data path and hooks around the stock model
        cfg['model'] = stock_config(data, size, iters, work)['model']
    return cfg


# ------------------------------------------------------------------------- measuring
def peak_memory() -> Dict[str, Optional[float]]:
    """Peak RSS of this process and peak CUDA memory allocated by torch, in MB."""
    return dict(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20
                if torch.cuda.is_available() else None)


def run_loop(variant: str, args: argparse.Namespace) -> dict:
    """Train through mmengine's Runner in this process; iterations/s after the warm-up."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS
    from mmengine.runner import Runner

    import mmseg_tao  # noqa: F401

    @HOOKS.register_module(name='BenchIterTimes', force=True)
    class Times(Hook):
        times: List[float] = []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.times.append(runner.message_hub.get_scalar('train/time').current())

    cfg = make_config(variant, args.data, args.size, args.iters, args.batch, args.workers,
                      args.amp, args.device)
    cfg['custom_hooks'] = list(cfg.get('custom_hooks') or []) + [dict(type='BenchIterTimes')]
    Runner.from_cfg(Config(cfg)).train()
    its = 1.0 / statistics.median(Times.times[WARMUP_ITERS:])
    return dict(variant=variant, batch=args.batch, iters_per_s=its,
                images_per_s=its * args.batch, **peak_memory())


def run_bare_step(args: argparse.Namespace) -> dict:
    """Forward + backward + optimizer step of ours on a fixed batch on the device."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    import mmseg_tao  # noqa: F401
    init_default_scope('mmseg')
    cfg = make_config('ours', args.data, args.size, args.iters, args.batch, args.workers,
                      args.amp, args.device)
    model = MODELS.build(cfg['model']).to(args.device).train()
    optim = build_optim_wrapper(model, copy.deepcopy(cfg['optim_wrapper']))
    num_classes = cfg['model']['decode_head']['num_classes']
    shape = (args.size, args.size)
    inputs = torch.randn(args.batch, 3, *shape, device=args.device)
    samples = []
    for _ in range(args.batch):
        sample = SegDataSample(metainfo=dict(img_shape=shape, pad_shape=shape,
                                             ori_shape=shape))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, *shape), device=args.device))
        samples.append(sample)

    def step() -> None:  # BaseModel.train_step without the data preprocessor
        with optim.optim_context(model):
            losses = model(inputs, samples, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim.update_params(loss)

    ms = median_ms({'step': step}, args.iters - WARMUP_ITERS, device=args.device)['step']
    return dict(variant='bare', batch=args.batch, ms=ms, iters_per_s=1000 / ms,
                images_per_s=1000 * args.batch / ms, **peak_memory())


def summarise(batch: int, runs: Dict[str, List[dict]], bare: dict) -> dict:
    best = {k: max(v, key=lambda r: r['iters_per_s']) for k, v in runs.items()}
    return dict(batch=batch, runs=runs, bare=bare, best=best,
                ratio=best['ours']['iters_per_s'] / best['stock']['iters_per_s'],
                data_path_ratio=best['ours-data']['iters_per_s'] / best['stock']['iters_per_s'],
                loop_fraction=best['ours']['images_per_s'] / bare['images_per_s'])


# ---------------------------------------------------------------------------- output
def verdict(value: float, target: float, device: str) -> str:
    if device != 'cuda':
        return f'(GPU target >= {target:.2f})'
    return f'target >= {target:.2f}: {"PASS" if value >= target else "FAIL"}'


def report(results: List[dict], args: argparse.Namespace) -> None:
    amp = f', AMP {amp_dtype_name()}' if args.amp else ''
    print(f'mit_b0 training, {args.size}x{args.size}, {args.iters} iterations '
          f'({WARMUP_ITERS} warm-up), best of {args.rounds}; {args.device}, '
          f'{args.workers} dataloader workers{amp}')
    print(f'{"batch":>5}  {"path":<11}{"it/s":>8}{"images/s":>10}{"peak RSS MB":>13}'
          f'{"peak GPU MB":>13}')
    for res in results:
        for r in [*res['best'].values(), res['bare']]:
            gpu = f'{r["peak_gpu_mb"]:13.0f}' if r['peak_gpu_mb'] is not None else ' ' * 12 + '-'
            name = 'bare step' if r['variant'] == 'bare' else r['variant']
            print(f'{res["batch"]:>5}  {name:<11}{r["iters_per_s"]:8.3f}'
                  f'{r["images_per_s"]:10.2f}{r["peak_rss_mb"]:13.0f}{gpu}')
    for res in results:
        b = res['batch']
        print(f'batch {b}: ours/stock it/s {res["ratio"]:.3f} '
              f'{verdict(res["ratio"], TARGETS["ratio"], args.device)}')
        print(f'batch {b}: ours-data/stock it/s {res["data_path_ratio"]:.3f} (same stock '
              'model: plugin data path and hooks only)')
        print(f'batch {b}: whole loop / bare step images/s {res["loop_fraction"]:.3f} '
              f'{verdict(res["loop_fraction"], TARGETS["loop_fraction"], args.device)}')


# ------------------------------------------------------------------------------ main
def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared with profile_train_step.py."""
    parser.add_argument('--device', choices=['cpu', 'cuda'], default=default_device())
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--workers', type=int,
                        help='dataloader workers (default: 4 on CUDA, 0 on the CPU)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (ours train.amp=true; stock AmpOptimWrapper)')
    parser.add_argument('--data', help='existing demo shapes dir (default: generate)')


def resolve_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no GPU')
    if args.workers is None:
        args.workers = 4 if args.device == 'cuda' else 0
    if args.amp and args.device == 'cpu' and not getattr(args, 'worker', None):
        parser.error("--amp needs --device cuda: the stock config's AmpOptimWrapper "
                     '(mmengine) refuses to run without a GPU')


def worker_args(args: argparse.Namespace, variant: str, batch: int) -> List[str]:
    return ['--worker', variant, '--data', args.data, '--size', str(args.size),
            '--iters', str(args.iters), '--batch', str(batch), '--workers',
            str(args.workers), '--device', args.device] + (['--amp'] if args.amp else [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_run_arguments(parser)
    parser.add_argument('--batch-sizes', nargs='+', type=int,
                        help='default: 2 and 8 on CUDA, 2 on the CPU')
    parser.add_argument('--iters', type=int, default=40)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--json', default=None)
    parser.add_argument('--worker', choices=VARIANTS + ('bare', ), help=argparse.SUPPRESS)
    parser.add_argument('--batch', type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    resolve_run_arguments(parser, args)
    if args.iters <= WARMUP_ITERS:
        parser.error(f'--iters must exceed the {WARMUP_ITERS} warm-up iterations')
    if args.worker:
        run = run_bare_step if args.worker == 'bare' else lambda a: run_loop(args.worker, a)
        print(json.dumps(run(args)))
        return
    args.batch_sizes = args.batch_sizes or ([2, 8] if args.device == 'cuda' else [2])
    args.data = args.data or demo_shapes(args.size)

    results = []
    for batch in args.batch_sizes:
        runs: Dict[str, List[dict]] = {v: [] for v in VARIANTS}
        for _ in range(args.rounds):
            for variant in VARIANTS:
                out = run_worker(__file__, worker_args(args, variant, batch), args.device)
                runs[variant].append(last_json_line(out.stdout))
        bare = last_json_line(run_worker(__file__, worker_args(args, 'bare', batch),
                                         args.device).stdout)
        results.append(summarise(batch, runs, bare))
    report(results, args)
    write_json(args.json, dict(
        device=args.device, size=args.size, iters=args.iters, rounds=args.rounds,
        workers=args.workers, amp=amp_dtype_name() if args.amp else None,
        batches=[{k: v for k, v in r.items() if k != 'best'} for r in results]))


if __name__ == '__main__':
    main()
