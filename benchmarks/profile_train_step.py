#!/usr/bin/env python
"""Where a training iteration goes: torch.profiler over iterations of ours vs stock mmseg.

    python benchmarks/profile_train_step.py [--device {cpu,cuda}] [--batch 2] [--size 512]
        [--workers N] [--amp] [--start 5] [--end 10] [--variants ours stock]
        [--trace DIR]

Trains with the configs of benchmarks/train_throughput.py (ours: the demo spec through
spec2cfg; stock: a hand-written mmseg SegFormer config; ours-data: ours with the stock
model) through mmengine's Runner, each in its own process. A hook profiles iterations
``--start`` to ``--end`` - 1 (0-based, each with its data loading and hooks) and prints,
per variant: the top 15 ops by self CPU time (and by self CUDA time on a GPU), and per
iteration the number of aten ops (nested calls included), of kernel launches on CUDA
(cudaLaunchKernel / cuLaunchKernel events) and of host-device synchronisations
(cudaStreamSynchronize + cudaDeviceSynchronize on CUDA; on the CPU aten::_local_scalar_dense,
which every ``.item()`` reaches). ``--trace DIR`` writes a Chrome trace per variant
(chrome://tracing, https://ui.perfetto.dev).
"""
import argparse
import json
import os
import os.path as osp
from collections import Counter
from typing import Dict

from torch.profiler import ProfilerActivity, profile

from common import demo_shapes, last_json_line, on_cuda, run_worker, synchronize
from train_throughput import VARIANTS, add_run_arguments, make_config, resolve_run_arguments

LAUNCHES = ('cudaLaunchKernel', 'cuLaunchKernel', 'cudaLaunchKernelExC', 'cuLaunchKernelEx')
SYNC_EVENTS = ('aten::item', 'aten::_local_scalar_dense', 'cudaStreamSynchronize',
               'cudaDeviceSynchronize')


def counts_per_iteration(prof: profile, iterations: int, device: str) -> Dict[str, float]:
    """aten ops, kernel launches and synchronisations per iteration from the events."""
    counts = Counter(event.name for event in prof.events())
    result = {name: counts[name] / iterations for name in SYNC_EVENTS}
    sync_names = (('cudaStreamSynchronize', 'cudaDeviceSynchronize') if on_cuda(device)
                  else ('aten::_local_scalar_dense', ))
    result.update(
        aten_ops=sum(n for name, n in counts.items() if name.startswith('aten::')) / iterations,
        kernel_launches=sum(counts[name] for name in LAUNCHES) / iterations,
        syncs=sum(counts[name] for name in sync_names) / iterations)
    return result


def profile_variant(variant: str, args: argparse.Namespace) -> dict:
    """Train ``variant`` in this process, profiling iterations start..end-1."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS
    from mmengine.runner import Runner

    import mmseg_tao  # noqa: F401
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA]
                                           if on_cuda(args.device) else [])
    prof = profile(activities=activities)

    @HOOKS.register_module(name='BenchProfileIters', force=True)
    class ProfileIters(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter == args.start - 1:
                synchronize(args.device)
                prof.start()
            elif runner.iter == args.end - 1:
                synchronize(args.device)
                prof.stop()

    cfg = make_config(variant, args.data, args.size, args.end + 1, args.batch, args.workers,
                      args.amp, args.device)
    # LOWEST: the window opens and closes after every other hook of the iteration
    cfg['custom_hooks'] = list(cfg.get('custom_hooks') or []) + [
        dict(type='BenchProfileIters', priority='LOWEST')]
    Runner.from_cfg(Config(cfg)).train()

    iterations = args.end - args.start
    print(f'== {variant}: iterations {args.start}..{args.end - 1}, batch {args.batch}, '
          f'{args.size}x{args.size}, {args.device}')
    averages = prof.key_averages()
    print(averages.table(sort_by='self_cpu_time_total', row_limit=15))
    if on_cuda(args.device):
        print(averages.table(sort_by='self_device_time_total', row_limit=15))
    if args.trace:
        os.makedirs(args.trace, exist_ok=True)
        path = osp.join(args.trace, f'{variant}_b{args.batch}_{args.device}.json')
        prof.export_chrome_trace(path)
        print(f'trace: {path}')
    return dict(variant=variant, **counts_per_iteration(prof, iterations, args.device))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_run_arguments(parser)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--start', type=int, default=5, help='first profiled iteration')
    parser.add_argument('--end', type=int, default=10, help='iteration after the last')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=['ours', 'stock'])
    parser.add_argument('--trace', help='directory for Chrome traces')
    parser.add_argument('--worker', choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    resolve_run_arguments(parser, args)
    if not 1 <= args.start < args.end:
        parser.error('need 1 <= --start < --end')
    if args.worker:
        print(json.dumps(profile_variant(args.worker, args)))
        return
    args.data = args.data or demo_shapes(args.size)
    args.trace = osp.abspath(args.trace) if args.trace else None

    summaries = []
    for variant in args.variants:
        flags = ['--worker', variant, '--data', args.data, '--size', str(args.size),
                 '--batch', str(args.batch), '--workers', str(args.workers), '--start',
                 str(args.start), '--end', str(args.end), '--device', args.device]
        flags += (['--amp'] if args.amp else []) + (['--trace', args.trace] if args.trace
                                                    else [])
        out = run_worker(__file__, flags, args.device).stdout
        print(out.strip().rsplit('\n', 1)[0])
        summaries.append(last_json_line(out))

    print(f'\nper iteration ({args.end - args.start} profiled, batch {args.batch}, '
          f'{args.size}x{args.size}, {args.device}):')
    print(f'{"variant":<11}{"aten ops":>10}{"launches":>10}{"syncs":>8}{"item":>7}'
          f'{"_local_scalar_dense":>21}{"StreamSync":>12}{"DeviceSync":>12}')
    for s in summaries:
        print(f'{s["variant"]:<11}{s["aten_ops"]:10.0f}{s["kernel_launches"]:10.0f}'
              f'{s["syncs"]:8.1f}{s["aten::item"]:7.1f}{s["aten::_local_scalar_dense"]:21.1f}'
              f'{s["cudaStreamSynchronize"]:12.1f}{s["cudaDeviceSynchronize"]:12.1f}')


if __name__ == '__main__':
    main()
