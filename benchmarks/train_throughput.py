#!/usr/bin/env python
"""Training throughput and peak memory: the TAO-spec path vs a stock mmseg config.

    python benchmarks/train_throughput.py [--iters 40] [--rounds 2] [--size 512]
                                          [--json benchmarks/results/train.json]

Both train mit_b0 SegFormer on the same demo data (tools/make_demo_dataset.py, shapes, at
``--size``), batch 2, no dataloader workers, no validation: (a) ``ours``: the config that
tools/spec2cfg.py makes from the demo spec (TAOSegDataset with the palette lookup,
LoadTAOAnnotations, mit_b0 + TAOSegFormerHead, status / atomic-checkpoint / record hooks);
(b) ``stock``: a hand-written mmseg config in the style of mmseg's segformer configs
(BaseSegDataset, LoadAnnotations, MixVisionTransformer + SegformerHead, mmseg's hooks);
(c) ``ours-data``: (a) with (b)'s model, which isolates the plugin's data path and hooks.
Each run is its own process (peak RSS is the process's); runs alternate ours / stock for
``--rounds`` rounds and the best iterations/s of each is reported with the ratio.
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
CLASSES = ('background', 'ellipse', 'box', 'triangle')
VARIANTS = ('ours', 'ours-data', 'stock')


def stock_config(data_root: str, size: int, iters: int, work_dir: str) -> dict:
    """mmseg 1.x SegFormer mit_b0 (configs/segformer/segformer_mit-b0_*), hand-written."""
    crop = (size, size)
    norm = dict(type='BN', requires_grad=True)
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
    return dict(
        default_scope='mmseg', work_dir=work_dir, randomness=dict(seed=49),
        env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
                     dist_cfg=dict(backend='gloo')),
        model=dict(
            type='EncoderDecoder', data_preprocessor=pre,
            backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=32,
                          num_stages=4, num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
                          patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
                          out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True,
                          drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
            decode_head=dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                             in_index=[0, 1, 2, 3], channels=256, dropout_ratio=0.1,
                             num_classes=len(CLASSES), norm_cfg=norm, align_corners=False,
                             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                              loss_weight=1.0)),
            train_cfg=dict(), test_cfg=dict(mode='whole')),
        train_dataloader=dict(
            batch_size=2, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(type='BaseSegDataset', data_root=data_root,
                         data_prefix=dict(img_path='images/train', seg_map_path='masks/train'),
                         img_suffix='.png', seg_map_suffix='.png',
                         metainfo=dict(classes=CLASSES), pipeline=pipeline)),
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
            paramwise_cfg=dict(custom_keys=dict(pos_block=dict(decay_mult=0.0),
                                                norm=dict(decay_mult=0.0),
                                                head=dict(lr_mult=10.0)))),
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


def ours_config(spec: str, iters: int, work_dir: str) -> dict:
    from mmseg_tao.spec import load_spec, spec_to_config
    cfg = spec_to_config(load_spec(spec, [
        f'train.max_iters={iters}', 'train.validate=false', f'train.checkpoint_interval={iters}',
        'train.logging_interval=10', 'dataset.batch_size=2', 'dataset.workers_per_gpu=0',
        'dataset.repeat_data_times=1'], task='train'))
    cfg.update(work_dir=work_dir, log_level='WARNING')
    return cfg


def run_one(variant: str, data: str, size: int, iters: int) -> dict:
    """Train in this process and report iterations/s (after 10 warm-up iterations)."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS
    from mmengine.runner import Runner

    import mmseg_tao  # noqa: F401

    @HOOKS.register_module(name='BenchIterTimes', force=True)
    class Times(Hook):
        times = []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.times.append(runner.message_hub.get_scalar('train/time').current())

    work = tempfile.mkdtemp()
    if variant == 'stock':
        cfg = stock_config(data, size, iters, work)
    else:
        cfg = ours_config(osp.join(data, 'spec.yaml'), iters, work)
        if variant == 'ours-data':  # our data path and hooks around the stock model
            cfg['model'] = stock_config(data, size, iters, work)['model']
    cfg['custom_hooks'] = list(cfg.get('custom_hooks') or []) + [dict(type='BenchIterTimes')]
    Runner.from_cfg(Config(cfg)).train()
    steady = Times.times[10:]
    return dict(variant=variant, iters_per_s=1.0 / statistics.median(steady),
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, default=40)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--data', help='existing demo shapes dir (default: generate)')
    parser.add_argument('--json', default=None)
    parser.add_argument('--worker', choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_one(args.worker, args.data, args.size, args.iters)))
        return
    data = args.data
    if not data:
        root = tempfile.mkdtemp()
        subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'make_demo_dataset.py'), root,
                        '--kind', 'shapes', '--size', str(args.size), '--num-train', '40',
                        '--num-val', '2'], check=True, capture_output=True)
        data = osp.join(root, 'shapes')
    results = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, '--worker', variant, '--data', data,
                                  '--size', str(args.size), '--iters', str(args.iters)],
                                 check=True, capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONPATH=HERE))
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {k: max(v, key=lambda r: r['iters_per_s']) for k, v in results.items()}
    ratio = best['ours']['iters_per_s'] / best['stock']['iters_per_s']
    overhead = best['ours-data']['iters_per_s'] / best['stock']['iters_per_s']
    print(f'mit_b0 training, batch 2, {args.size}x{args.size}, {args.iters} iterations '
          f'(10 warm-up), best of {args.rounds}')
    print(f'{"path":<11}{"it/s":>8}{"peak RSS MB":>13}')
    for k in VARIANTS:
        print(f'{k:<11}{best[k]["iters_per_s"]:8.3f}{best[k]["peak_rss_mb"]:13.0f}')
    print(f'ours/stock throughput: {ratio:.3f} (TAO spec path, our model and head)')
    print(f'ours-data/stock throughput: {overhead:.3f} (same stock model: plugin data path '
          'and hooks only)')
    from common import write_json
    write_json(args.json, dict(size=args.size, iters=args.iters, rounds=args.rounds,
                               runs=results, ratio=ratio, data_path_ratio=overhead))


if __name__ == '__main__':
    main()
