#!/usr/bin/env python
"""Inference latency and throughput of mmseg-tao's SegFormer against other implementations.

    python benchmarks/inference_latency.py [--device {cpu,cuda}] [--models mit_b0 ...]
        [--sizes 512x512 1024x2048] [--batch-sizes 1 8 32] [--precisions fp32 fp16 bf16]
        [--compile] [--tf32] [--repeats N] [--threads N] [--json FILE]

Whole model (backbone + decode head, logits at 1/4 resolution) on one random fp32 batch per
size and batch size. Contenders (``--contenders``), all given the same fp32 input:

- ``ours``: TAOEncoderDecoder eager, weights cast once (``set_precision``);
- ``ours-compiled`` (``--compile``): ``ours`` through torch.compile, CUDA graphs on CUDA
  (mode 'reduce-overhead'; compiling costs minutes);
- ``ours-autocast``: fp32 weights under torch.autocast in the row's precision;
- ``ort``: our model exported to ONNX (opset 17), ONNX Runtime on the CPU, fp32 only;
- ``mmseg``: stock mmseg's EncoderDecoder + MixVisionTransformer + SegformerHead;
- ``hf``: Hugging Face transformers' SegformerForSemanticSegmentation.

Defaults: on CUDA ours, ours-autocast, mmseg and hf at 512x512 and 1024x2048, batch 1, 8
and 32, fp32 / fp16 / bf16; on the CPU ours, ort and hf at 512x512, batch 1, fp32. All
contenders and precisions of one model, size and batch run interleaved; each figure is the
median of ``--repeats`` calls timed from an idle device (CUDA events on a GPU). Models have
random weights (latency does not depend on them) and the decoder width of the paper (256
for B0/B1, 768 for B2). FLOPs are 2 x multiply-adds of our forward, the same for every
contender; the same run measures the matmul peak of each number format, against which the
achieved FLOP/s are put. "masks" is the fraction of pixels whose argmax equals that of
``ours`` in fp32 on the same input. On CUDA the issue's targets for mit_b0 at 512x512 are
checked.
"""
import argparse
import copy
import os
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import torch

from common import (
    PRECISIONS,
    default_device,
    describe,
    machine,
    matmul_peaks,
    median_ms,
    on_cuda,
    stock_segformer,
    tao_segformer,
    tf32,
    write_json,
)

MODELS = {  # name: (hidden sizes, depths, decoder width); FAN has no HF or mmseg version
    'mit_b0': ([32, 64, 160, 256], [2, 2, 2, 2], 256),
    'mit_b1': ([64, 128, 320, 512], [2, 2, 2, 2], 256),
    'mit_b2': ([64, 128, 320, 512], [3, 4, 6, 3], 768),
    'fan_tiny_8_p4_hybrid': (None, None, 256),
}
CONTENDERS = ('ours', 'ours-compiled', 'ours-autocast', 'ort', 'mmseg', 'hf')
OURS = ('ours', 'ours-compiled')  # weights cast once: what the targets are about
DEFAULTS = dict(  # device: (contenders, sizes, batch sizes, precisions)
    cpu=(['ours', 'ort', 'hf'], ['512x512'], [1], ['fp32']),
    cuda=(['ours', 'ours-autocast', 'mmseg', 'hf'], ['512x512', '1024x2048'], [1, 8, 32],
          ['fp32', 'fp16', 'bf16']))
Size = Tuple[int, int]
Fn = Callable[[], torch.Tensor]
Args = argparse.Namespace


# --------------------------------------------------------------------------- models
class HFLogits(torch.nn.Module):
    """Hugging Face's SegformerForSemanticSegmentation returning its logits."""

    def __init__(self, hidden: List[int], depths: List[int], width: int):
        super().__init__()
        from transformers import SegformerConfig, SegformerForSemanticSegmentation
        self.model = SegformerForSemanticSegmentation(SegformerConfig(
            hidden_sizes=hidden, depths=depths, decoder_hidden_size=width, num_labels=19))
        self.dtype = torch.float32

    def set_precision(self, precision: str) -> 'HFLogits':
        self.dtype = PRECISIONS[precision]
        self.model.to(self.dtype)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x.to(self.dtype)).logits


class Zoo:
    """The implementations of one model on the device, built once in fp32 and cast per
    precision on first use (a copy of the fp32 model, so ours has the same weights in
    every precision)."""

    def __init__(self, name: str, device: str):
        hidden, depths, width = MODELS[name]
        self.builders: Dict[str, Callable[[], torch.nn.Module]] = {
            'ours': lambda: tao_segformer(name, width)}
        if hidden:
            self.builders['hf'] = lambda: HFLogits(hidden, depths, width).eval()
            self.builders['mmseg'] = lambda: stock_segformer(hidden[0], depths, width)
        self.device = device
        self.models: Dict[Tuple[str, str], torch.nn.Module] = {}

    def get(self, kind: str, precision: str = 'fp32') -> Optional[torch.nn.Module]:
        if kind not in self.builders:
            return None
        if (kind, precision) not in self.models:
            if precision == 'fp32':
                torch.manual_seed(0)  # the same weights in every run
                model = self.builders[kind]().to(self.device)
            else:
                model = copy.deepcopy(self.get(kind)).set_precision(precision)
            self.models[kind, precision] = model
        return self.models[kind, precision]


# ----------------------------------------------------------------------- contenders
def compiled(zoo: Zoo, precision: str, x: torch.Tensor, args: Args) -> Optional[Fn]:
    """torch.compile of the Logits module; on CUDA mode 'reduce-overhead' replays CUDA
    graphs, and each call starts a new step (its output lives in the graph's buffers until
    the next call)."""
    mode = 'reduce-overhead' if on_cuda(x.device) else 'default'
    fn = torch.compile(zoo.get('ours', precision), mode=mode, dynamic=False)

    def call() -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return fn(x)
    return call


def autocast(zoo: Zoo, precision: str, x: torch.Tensor, args: Args) -> Optional[Fn]:
    """fp32 weights with autocast: every matmul / conv casts its weights on each call."""
    if precision == 'fp32':
        return None
    model = zoo.get('ours')

    def call() -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=PRECISIONS[precision]):
            return model(x)
    return call


def onnx_runtime(zoo: Zoo, precision: str, x: torch.Tensor, args: Args) -> Optional[Fn]:
    """Our fp32 model exported at this input's shape and run by ONNX Runtime's CPU
    provider on ``--threads`` threads."""
    if precision != 'fp32' or on_cuda(x.device):
        return None
    import onnxruntime as ort
    path = os.path.join(tempfile.mkdtemp(), 'model.onnx')
    torch.onnx.export(zoo.get('ours'), (x, ), path, dynamo=False, opset_version=17,
                      input_names=['input'], output_names=['output'])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
    feed = {'input': x.numpy()}
    return lambda: torch.from_numpy(sess.run(None, feed)[0])


def plain(kind: str) -> Callable:
    """The model of ``kind`` in the row's precision, called as it is (eager)."""
    def build(zoo: Zoo, precision: str, x: torch.Tensor, args: Args) -> Optional[Fn]:
        model = zoo.get(kind, precision)
        return (lambda: model(x)) if model is not None else None
    return build


BUILDERS = {'ours': plain('ours'), 'ours-compiled': compiled, 'ours-autocast': autocast,
            'ort': onnx_runtime, 'mmseg': plain('mmseg'), 'hf': plain('hf')}


# ------------------------------------------------------------------------ measuring
def model_gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs (2 x multiply-adds) of one forward, attention included."""
    from mmengine.analysis import FlopAnalyzer

    def sdpa(inputs, outputs):
        q, k = inputs[0].type().sizes(), inputs[1].type().sizes()
        return 2 * int(torch.tensor(q).prod()) * k[-2]  # QK^T and AV

    analyzer = FlopAnalyzer(model, (x, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return 2 * analyzer.total() / 1e9


def first_calls(fns: Dict) -> Tuple[Dict, Dict, Dict]:
    """Call each contender twice (this compiles, initialises and records CUDA graphs, so
    their memory is taken before the next contender starts); returns those that ran, the
    argmax masks of their second outputs, and the ones that ran out of device memory."""
    ran, masks, failed = {}, {}, {}
    for key, fn in fns.items():
        try:
            fn()
            masks[key] = fn().argmax(1)
            ran[key] = fn
        except torch.cuda.OutOfMemoryError:
            failed[key] = 'out of memory'
            torch.cuda.empty_cache()
    return ran, masks, failed


def measure(zoo: Zoo, name: str, size: Size, batch: int, gflops: float,
            peaks: Dict[str, float], args: Args) -> List[Dict]:
    """All contenders and precisions of one model, size and batch, interleaved."""
    torch.manual_seed(0)
    x = torch.randn(batch, 3, *size, device=args.device)
    torch._dynamo.reset()  # compile afresh for this shape (no recompilation limit)
    fns = {}
    for precision in args.precisions:
        for contender in args.contenders:
            fn = BUILDERS[contender](zoo, precision, x, args)
            if fn is not None:
                fns[contender, precision] = fn
    fns, masks, failed = first_calls(fns)
    reference = masks.get(('ours', 'fp32'))
    if reference is None and ('ours', 'fp32') not in failed:
        reference = zoo.get('ours')(x).argmax(1)
    ms = median_ms(fns, args.repeats, device=args.device)

    rows = []
    for (contender, precision) in list(fns) + list(failed):
        peak_name = 'tf32' if precision == 'fp32' and args.tf32 else precision
        row = dict(model=name, impl=contender, size=f'{size[0]}x{size[1]}', batch=batch,
                   precision=precision, gflops_per_image=gflops, peak=peak_name,
                   ms=None, images_per_s=None, tflops=None, fraction_of_peak=None,
                   mask_agreement=None, error=failed.get((contender, precision)))
        if row['error'] is None:
            t = ms[contender, precision]
            tflops = gflops * batch / t  # GFLOP / ms = TFLOP / s
            row.update(ms=t, images_per_s=batch / t * 1000, tflops=tflops,
                       fraction_of_peak=tflops / peaks[peak_name] if peak_name in peaks
                       else None)
            if (contender.startswith('ours') and (contender, precision) != ('ours', 'fp32')
                    and reference is not None):
                mask = masks[contender, precision].to(reference.device)
                row['mask_agreement'] = (mask == reference).float().mean().item()
        rows.append(row)
    return rows


# -------------------------------------------------------------------------- targets
def targets(rows: List[Dict]) -> List[Tuple[str, str, Optional[bool]]]:
    """The issue's targets for mit_b0 at 512x512 (implementations with cast weights):
    (target, measured figure, passed or None when not measured)."""
    ours = [r for r in rows if r['model'] == 'mit_b0' and r['size'] == '512x512'
            and r['impl'] in OURS and r['ms'] is not None]

    def where(r: Dict) -> str:
        return f'{r["impl"]} {r["precision"]} batch {r["batch"]}'

    def check(name: str, candidates: List, best, figure, passed) -> Tuple:
        """(name, figure of the best candidate, passed) or not measured."""
        if not candidates:
            return name, 'not measured', None
        chosen = best(candidates)
        return name, figure(chosen), passed(chosen)

    fp32 = {(r['impl'], r['batch']): r for r in ours if r['precision'] == 'fp32'}
    slowdowns = [(r['ms'] / fp32[r['impl'], r['batch']]['ms'], r) for r in ours
                 if r['precision'] == 'fp16' and (r['impl'], r['batch']) in fp32]
    return [
        check('batch 1 <= 1.0 ms', [r for r in ours if r['batch'] == 1],
              lambda c: min(c, key=lambda r: r['ms']),
              lambda r: f'{r["ms"]:.3f} ms ({where(r)})', lambda r: r['ms'] <= 1.0),
        check('fp16 never slower than fp32', slowdowns, lambda c: max(c, key=lambda p: p[0]),
              lambda p: f'worst fp16/fp32 time {p[0]:.3f} ({p[1]["impl"]} batch '
                        f'{p[1]["batch"]})', lambda p: p[0] <= 1.0),
        check('batch 32 >= 2000 images/s', [r for r in ours if r['batch'] == 32],
              lambda c: max(c, key=lambda r: r['images_per_s']),
              lambda r: f'{r["images_per_s"]:.0f} images/s ({where(r)})',
              lambda r: r['images_per_s'] >= 2000),
        check('masks agree >= 99.5%',
              [r for r in ours if r['mask_agreement'] is not None and r['precision'] != 'fp32'],
              lambda c: min(c, key=lambda r: r['mask_agreement']),
              lambda r: f'{100 * r["mask_agreement"]:.2f}% at worst ({where(r)})',
              lambda r: r['mask_agreement'] >= 0.995),
    ]


# ---------------------------------------------------------------------------- output
def fmt(value: Optional[float], spec: str) -> str:
    width = int(spec.split('.')[0])
    return format(value, spec) if value is not None else '-'.rjust(width)


def print_rows(rows: List[Dict]) -> None:
    print(f'{"model":<22}{"impl":<15}{"size":<11}{"batch":>5}{"prec":>6}{"ms":>10}'
          f'{"img/s":>9}{"GFLOPs/img":>11}{"TFLOP/s":>9}{"% peak":>8}{"masks %":>9}')
    for r in rows:
        pct = 100 * r['fraction_of_peak'] if r['fraction_of_peak'] is not None else None
        agree = 100 * r['mask_agreement'] if r['mask_agreement'] is not None else None
        line = (f'{r["model"]:<22}{r["impl"]:<15}{r["size"]:<11}{r["batch"]:>5}'
                f'{r["precision"]:>6}')
        if r['error']:
            print(f'{line}  {r["error"]}')
            continue
        print(f'{line}{r["ms"]:10.3f}{r["images_per_s"]:9.1f}{r["gflops_per_image"]:11.2f}'
              f'{r["tflops"]:9.3f}{fmt(pct, "8.1f")}{fmt(agree, "9.2f")}')


def print_cpu_table(rows: List[Dict]) -> None:
    """The CPU comparison: eager vs ORT vs HF per model, size, batch and precision."""
    groups: Dict[tuple, Dict[str, Dict]] = {}
    for r in rows:
        if r['ms'] is not None:
            groups.setdefault((r['model'], r['size'], r['batch'], r['precision']),
                              {})[r['impl']] = r
    print(f'{"model":<22}{"size":<11}{"batch":>5}{"prec":>6}{"GFLOPs":>8}{"eager ms":>10}'
          f'{"ORT ms":>9}{"HF ms":>9}{"ours/HF":>9}{"ORT/eager":>10}{"GFLOP/s":>9}'
          f'{"% peak":>8}')
    for (model, size, batch, precision), g in groups.items():
        if 'ours' not in g:
            continue
        eager_ms = g['ours']['ms']
        ort_ms = g['ort']['ms'] if 'ort' in g else None
        hf_ms = g['hf']['ms'] if 'hf' in g else None
        pct = g['ours']['fraction_of_peak']
        print(f'{model:<22}{size:<11}{batch:>5}{precision:>6}'
              f'{g["ours"]["gflops_per_image"]:8.2f}{eager_ms:10.1f}{fmt(ort_ms, "9.1f")}'
              f'{fmt(hf_ms, "9.1f")}{fmt(eager_ms / hf_ms if hf_ms else None, "9.3f")}'
              f'{fmt(ort_ms / eager_ms if ort_ms else None, "10.3f")}'
              f'{1000 * g["ours"]["tflops"]:9.1f}{fmt(100 * pct if pct else None, "8.1f")}')


# ------------------------------------------------------------------------------ main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default=default_device())
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--sizes', nargs='+', help='HxW or N (square)')
    parser.add_argument('--batch-sizes', nargs='+', type=int)
    parser.add_argument('--precisions', nargs='+', choices=list(PRECISIONS))
    parser.add_argument('--contenders', nargs='+', choices=CONTENDERS)
    parser.add_argument('--compile', action='store_true',
                        help='add ours-compiled (torch.compile; minutes per shape)')
    parser.add_argument('--tf32', action='store_true',
                        help='fp32 rows with TF32 matmuls and convolutions (default: off)')
    parser.add_argument('--repeats', type=int)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no GPU')
    contenders, sizes, batches, precisions = DEFAULTS[args.device]
    if args.device == 'cuda' and not torch.cuda.is_bf16_supported():
        precisions = [p for p in precisions if p != 'bf16']
    args.contenders = args.contenders or contenders
    if args.compile and 'ours-compiled' not in args.contenders:
        args.contenders = args.contenders + ['ours-compiled']
    args.sizes = [parse_size(s) for s in args.sizes or sizes]
    args.batch_sizes = args.batch_sizes or batches
    args.precisions = args.precisions or precisions
    args.repeats = args.repeats or (20 if args.device == 'cuda' else 10)
    return args


def parse_size(text: str) -> Size:
    h, _, w = text.lower().partition('x')
    return int(h), int(w or h)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    peaks = matmul_peaks(args.device)
    rows = []
    with torch.no_grad(), tf32(args.tf32):
        for name in args.models:
            zoo = Zoo(name, args.device)
            for size in args.sizes:
                x1 = torch.randn(1, 3, *size, device=args.device)
                gflops = model_gflops(zoo.get('ours'), x1)
                for batch in args.batch_sizes:
                    rows += measure(zoo, name, size, batch, gflops, peaks, args)

    info = machine()
    print(f'{describe(info)}; {args.device}, median of {args.repeats}')
    print('matmul peaks (TFLOP/s): ' + ', '.join(f'{k} {v:.2f}' for k, v in peaks.items())
          + ('; fp32 rows with TF32 on' if args.tf32 and args.device == 'cuda'
             else '; fp32 rows with TF32 off' if args.device == 'cuda' else ''))
    print_rows(rows)
    if args.device == 'cpu':
        print()
        print_cpu_table(rows)
    checks = targets(rows)
    print(f'\ntargets (mit_b0, 512x512, {" / ".join(OURS)})' +
          ('' if args.device == 'cuda' else ': CUDA targets, not judged on the CPU'))
    for target, figure, passed in checks:
        verdict = ('' if args.device != 'cuda' or passed is None
                   else 'PASS' if passed else 'FAIL')
        print(f'  {target:<30}{figure:<52}{verdict}')
    write_json(args.json, dict(
        device=args.device, sizes=[f'{h}x{w}' for h, w in args.sizes],
        batch_sizes=args.batch_sizes, precisions=args.precisions, contenders=args.contenders,
        repeats=args.repeats, threads=args.threads, tf32=args.tf32, peak_tflops=peaks,
        rows=rows, targets=[dict(target=t, figure=f, passed=p) for t, f, p in checks]))


if __name__ == '__main__':
    main()
