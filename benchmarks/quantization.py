"""Quantized vs fp32 SegFormer: mIoU, size on disk and CPU latency, per backbone.

For each backbone (default mit_b0, mit_b2, fan_tiny_8_p4_hybrid) the product's own commands
run in order on the demo ``shapes`` data (4 classes, 512x512; ``mmseg-tao demo-data``):

1. ``mmseg-tao train`` (random 256x256 crops; skipped when the checkpoint exists),
2. ``mmseg-tao export`` (TAO 6's contract: logits at 1/4 resolution, dynamic batch),
3. ``mmseg-tao quantize`` with each backend: ``modelopt.onnx`` (int8 Q/DQ ONNX),
   ``torchao`` (int8 weight-only) and ``modelopt.pytorch`` (int8 static, simulated),
   calibrated on the training images,
4. ``mmseg-tao evaluate`` of the checkpoint and of every deployed model on the validation
   images (the mIoU column),

then times every contender at batch 1 and batch 8 (512x512, median of ``--repeats``, all
contenders interleaved in one loop so that noise hits all alike) on ``--threads`` threads,
and prints the table with the issue's targets judged: INT8 ONNX Runtime at least 1.5x faster
than fp32 ONNX Runtime at batch 8 for mit_b2, and every quantized model within 1.0 mIoU
point of fp32.

    python benchmarks/quantization.py --work-dir /tmp/qbench \
        --json benchmarks/results/quantization_cpu.json
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
from typing import Callable, Dict, List, Optional

import torch
import yaml

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from common import describe, machine, times_ms, write_json  # noqa: E402

BACKBONES = ('mit_b0', 'mit_b2', 'fan_tiny_8_p4_hybrid')
SIZE = 512
# Quantize every Conv2d / Linear (weights and inputs); the head's classifier stays fp32.
INT8_LAYERS = [dict(module_name='Conv2d', weights=dict(dtype='int8'),
                    activations=dict(dtype='int8')),
               dict(module_name='Linear', weights=dict(dtype='int8'),
                    activations=dict(dtype='int8'))]
BACKENDS = {
    'modelopt.onnx': dict(mode='static_ptq', algorithm='max', layers=INT8_LAYERS),
    'torchao': dict(mode='weight_only_ptq', algorithm='minmax',
                    layers=[dict(module_name='Linear', weights=dict(dtype='int8')),
                            dict(module_name='Conv2d', weights=dict(dtype='int8'))]),
    'modelopt.pytorch': dict(mode='static_ptq', algorithm='max', layers=INT8_LAYERS),
}
CONTENDERS = ('pytorch fp32', 'ort fp32', 'ort int8 (modelopt.onnx)', 'torchao',
              'modelopt.pytorch')


def mmseg_tao(*args: str, log: str) -> None:
    """Run one ``mmseg-tao`` command; its output goes to ``log``; a failure stops the run."""
    cmd = [sys.executable, '-m', 'mmseg_tao.cli', *args]
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        sys.exit(f'failed ({proc.returncode}): {" ".join(cmd)}\nsee {log}')


def newest(pattern: str) -> str:
    files = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not files:
        sys.exit(f'nothing matches {pattern}')
    return files[-1]


class Backbone:
    """The files of one backbone's run under ``WORK/<name>``."""

    def __init__(self, work: str, name: str, args: argparse.Namespace):
        self.name, self.dir, self.args = name, osp.join(work, name), args
        self.data = osp.join(work, 'shapes')
        os.makedirs(self.dir, exist_ok=True)
        iters = args.iters.get(name, 300)
        self.common = [f'results_dir={self.dir}', f'model.backbone.type={name}']
        self.train_overrides = [
            f'train.max_iters={iters}', f'train.checkpoint_interval={iters}',
            f'train.validation_interval={iters}', f'dataset.batch_size={args.batch.get(name, 2)}',
            'dataset.train_dataset.pipeline.augmentation_config.random_crop.crop_size='
            '[256,256]']
        self.checkpoint = osp.join(self.dir, 'train', f'iter_{iters}.pth')
        self.onnx = osp.join(self.dir, 'export', 'model.onnx')

    def spec(self, quantize: Optional[Dict] = None) -> str:
        """The demo spec with a ``quantize`` section (TAO 5 form: an addition) written
        beside the run; calibration on the training images."""
        with open(osp.join(self.data, 'spec.yaml')) as f:
            spec = yaml.safe_load(f)
        if quantize is None:
            return osp.join(self.data, 'spec.yaml')
        spec['dataset']['quant_calibration_dataset'] = dict(
            img_dir=osp.join(self.data, 'images', 'train'))
        spec['quantize'] = quantize
        path = osp.join(self.dir, f'spec_{quantize["backend"]}.yaml')
        with open(path, 'w') as f:
            yaml.safe_dump(spec, f)
        return path

    def train(self) -> None:
        if osp.exists(self.checkpoint):
            return
        print(f'[{self.name}] train', flush=True)
        mmseg_tao('train', '-e', self.spec(), *self.common, *self.train_overrides,
                  log=osp.join(self.dir, 'train.log'))

    def export(self) -> None:
        if osp.exists(self.onnx):
            return
        print(f'[{self.name}] export', flush=True)
        mmseg_tao('export', '-e', self.spec(), *self.common,
                  f'export.checkpoint={self.checkpoint}', f'export.onnx_file={self.onnx}',
                  'export.format=tao6', 'export.batch_size=-1', f'export.input_height={SIZE}',
                  f'export.input_width={SIZE}', log=osp.join(self.dir, 'export.log'))

    def quantize(self, backend: str) -> str:
        """The deployed file of ``backend`` (quantized now unless it exists)."""
        out = osp.join(self.dir, 'quantize', backend)
        found = glob.glob(osp.join(out, '*.onnx' if backend == 'modelopt.onnx' else '*.pth'))
        if found:
            return found[0]
        print(f'[{self.name}] quantize {backend}', flush=True)
        shutil.rmtree(out, ignore_errors=True)
        section = dict(backend=backend, results_dir=out, device='cpu', **BACKENDS[backend])
        section['model_path'] = self.onnx if backend == 'modelopt.onnx' else self.checkpoint
        mmseg_tao('quantize', '-e', self.spec(section), *self.common,
                  log=osp.join(self.dir, f'quantize_{backend}.log'))
        return newest(osp.join(out, '*.onnx' if backend == 'modelopt.onnx' else '*.pth'))

    def evaluate(self, checkpoint: str, tag: str, spec: Optional[str] = None) -> float:
        """mIoU (%) of ``mmseg-tao evaluate`` on the validation images."""
        out = osp.join(self.dir, 'evaluate', tag.replace(' ', '_'))
        results = osp.join(out, 'results.json')
        if not osp.exists(results):
            print(f'[{self.name}] evaluate {tag}', flush=True)
            mmseg_tao('evaluate', '-e', spec or self.spec(), *self.common,
                      f'evaluate.checkpoint={checkpoint}', f'evaluate.results_dir={out}',
                      log=osp.join(self.dir, f'evaluate_{tag.replace(" ", "_")}.log'))
        with open(results) as f:
            return float(json.load(f)['summary']['mIoU'])


def torch_model(run: Backbone, quantized: Optional[str] = None,
                spec: Optional[str] = None) -> torch.nn.Module:
    """The fp32 model (``init_model`` of the spec's config) or the quantized one restored
    on it; ``forward`` gives the logits at 1/4 resolution, as the ONNX graph."""
    from mmseg.apis import init_model

    from mmseg_tao.quantization import restore_quantized_model
    cfg = osp.join(run.dir, 'model_config.py')
    if not osp.exists(cfg):
        mmseg_tao('spec2cfg', run.spec(), *run.common, '-o', cfg,
                  log=osp.join(run.dir, 'spec2cfg.log'))
    model = init_model(cfg, run.checkpoint, device='cpu')
    if quantized:
        model = restore_quantized_model(model, quantized)
    return model.eval()


def ort_session(path: str, threads: int):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])


def latency(fns: Dict[str, Callable[[torch.Tensor], object]], batches: List[int],
            repeats: int) -> Dict[int, Dict[str, float]]:
    """Median ms per call of each contender at each batch, interleaved."""
    out = {}
    for batch in batches:
        x = torch.randn(batch, 3, SIZE, SIZE)
        calls = {k: (lambda f=f, x=x: f(x)) for k, f in fns.items()}
        with torch.inference_mode():
            t = times_ms(calls, repeats, warmup=1)
        out[batch] = {k: statistics.median(v) for k, v in t.items()}
    return out


def size_mb(path: str) -> float:
    return os.path.getsize(path) / 2**20


def measure(run: Backbone, args: argparse.Namespace) -> List[Dict]:
    run.train()
    run.export()
    files = {'pytorch fp32': run.checkpoint, 'ort fp32': run.onnx}
    specs = {}
    for backend in BACKENDS:
        label = 'ort int8 (modelopt.onnx)' if backend == 'modelopt.onnx' else backend
        files[label] = run.quantize(backend)
        specs[label] = osp.join(run.dir, f'spec_{backend}.yaml')
    miou = {k: run.evaluate(v, k, specs.get(k)) for k, v in files.items()}
    if args.prepare_only:
        return []

    fp32_model = torch_model(run)
    fns = {
        'pytorch fp32': lambda x: fp32_model(x, mode='tensor'),
        'ort fp32': (lambda s: lambda x: s.run(None, {'input': x.numpy()}))(
            ort_session(run.onnx, args.threads)),
        'ort int8 (modelopt.onnx)': (lambda s: lambda x: s.run(None, {'input': x.numpy()}))(
            ort_session(files['ort int8 (modelopt.onnx)'], args.threads)),
    }
    for label in ('torchao', 'modelopt.pytorch'):
        m = torch_model(run, files[label], specs[label])
        fns[label] = (lambda mm: lambda x: mm(x, mode='tensor'))(m)
    print(f'[{run.name}] latency', flush=True)
    ms = latency(fns, args.batch_sizes, args.repeats)
    rows = []
    for label in CONTENDERS:
        rows.append(dict(backbone=run.name, contender=label, miou=miou[label],
                         size_mb=round(size_mb(files[label]), 2),
                         **{f'ms_b{b}': round(ms[b][label], 1) for b in args.batch_sizes}))
    return rows


def judge(rows: List[Dict], batch: int) -> List[str]:
    """The issue's targets, each met or not, with the figures."""
    lines = []
    by = {(r['backbone'], r['contender']): r for r in rows}
    key = f'ms_b{batch}'
    if ('mit_b2', 'ort fp32') in by and key in by[('mit_b2', 'ort fp32')]:
        fp32 = by[('mit_b2', 'ort fp32')][key]
        int8 = by[('mit_b2', 'ort int8 (modelopt.onnx)')][key]
        speedup = fp32 / int8
        lines.append(f'INT8 ORT vs fp32 ORT, mit_b2, batch {batch}: {speedup:.2f}x '
                     f'(target >= 1.5x): {"met" if speedup >= 1.5 else "MISSED"}')
    for r in rows:
        if r['contender'] in ('pytorch fp32', 'ort fp32'):
            continue
        ref = by[(r['backbone'], 'pytorch fp32')]['miou']
        drop = ref - r['miou']
        lines.append(f'{r["backbone"]} {r["contender"]}: mIoU {r["miou"]:.2f} vs fp32 '
                     f'{ref:.2f} (drop {drop:+.2f}, target <= 1.0): '
                     f'{"met" if drop <= 1.0 else "MISSED"}')
    return lines


def print_table(rows: List[Dict], batches: List[int]) -> None:
    head = ['backbone', 'model', 'mIoU', 'MB on disk', *(f'ms b{b}' for b in batches),
            *(f'x vs ORT fp32 b{b}' for b in batches)]
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '---|' * len(head))
    by = {(r['backbone'], r['contender']): r for r in rows}
    for r in rows:
        ref = by[(r['backbone'], 'ort fp32')]
        cells = [r['backbone'], r['contender'], f'{r["miou"]:.2f}', f'{r["size_mb"]:.1f}',
                 *(f'{r[f"ms_b{b}"]:.1f}' for b in batches),
                 *(f'{ref[f"ms_b{b}"] / r[f"ms_b{b}"]:.2f}' for b in batches)]
        print('| ' + ' | '.join(cells) + ' |')


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--work-dir', default='/tmp/mmseg_tao_qbench',
                   help='data, checkpoints and deployed models (reused when present)')
    p.add_argument('--backbones', nargs='+', default=list(BACKBONES))
    p.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 8])
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    p.add_argument('--batch', type=json.loads, default={'mit_b0': 4},
                   help='training batch per iteration and backbone (JSON; default 2)')
    p.add_argument('--iters', type=json.loads, default={'mit_b0': 400},
                   help='training iterations per backbone (JSON; default 300)')
    p.add_argument('--prepare-only', action='store_true',
                   help='train, export, quantize and evaluate; no timing (a later run '
                   'reuses the files and only times)')
    p.add_argument('--json', default=None)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    work = osp.abspath(args.work_dir)
    if not osp.exists(osp.join(work, 'shapes', 'spec.yaml')):
        mmseg_tao('demo-data', work, '--kind', 'shapes', '--size', str(SIZE),
                  '--num-train', '64', '--num-val', '16', log=osp.join(work, 'data.log'))
    rows = []
    for name in args.backbones:
        rows += measure(Backbone(work, name, args), args)
    if args.prepare_only:
        return
    info = machine()
    print(f'\n{describe(info)}; ONNX Runtime {__import__("onnxruntime").__version__}\n')
    print_table(rows, args.batch_sizes)
    verdicts = judge(rows, max(args.batch_sizes))
    print('\n' + '\n'.join(verdicts))
    write_json(args.json, dict(size=SIZE, rows=rows, targets=verdicts))


if __name__ == '__main__':
    main()
