#!/usr/bin/env python
"""Inference latency on CPU: mmseg-tao eager, ONNX Runtime on our export, Hugging Face.

    python benchmarks/inference_latency.py [--size 512] [--repeats 10] [--threads N]
                                           [--json benchmarks/results/inference.json]

Whole model (backbone + decode head, logits at 1/4 resolution), batch 1. For each model the
implementations run interleaved and the median is reported, with the ratios ours/HF and
ORT/eager. The same run measures the machine's limit: the GFLOP/s of a large fp32 matmul on
the same threads, against which each model's FLOPs / latency is put (fraction of the limit).
HF models are built from their config (random weights; latency does not depend on them)
with the decoder width of the paper (256 for B0/B1, 768 for B2), as ours.
"""
import argparse
import os
import tempfile
import time

import torch

from common import machine, median_ms, tao_segformer, write_json

MODELS = {  # name: (HF hidden sizes, HF depths, decoder width); FAN has no HF port
    'mit_b0': ([32, 64, 160, 256], [2, 2, 2, 2], 256),
    'mit_b1': ([64, 128, 320, 512], [2, 2, 2, 2], 256),
    'mit_b2': ([64, 128, 320, 512], [3, 4, 6, 3], 768),
    'fan_tiny_8_p4_hybrid': (None, None, 256),
}


def hugging_face(hidden, depths, width):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation
    cfg = SegformerConfig(hidden_sizes=hidden, depths=depths, decoder_hidden_size=width,
                          num_labels=19)
    model = SegformerForSemanticSegmentation(cfg).eval()
    return lambda x: model(pixel_values=x).logits


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best GFLOP/s of an n x n fp32 matmul (2 n^3 FLOPs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float('inf')
    with torch.inference_mode():
        torch.mm(a, b)
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


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


def onnx_session(model, x, threads):
    import onnxruntime as ort
    path = os.path.join(tempfile.mkdtemp(), 'model.onnx')
    torch.onnx.export(model, (x, ), path, dynamo=False, opset_version=17,
                      input_names=['input'], output_names=['output'])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
    feed = {'input': x.numpy()}
    return lambda: sess.run(None, feed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, args.size, args.size)
    peak = matmul_gflops()

    rows = []
    for name in args.models:
        hidden, depths, width = MODELS[name]
        ours = tao_segformer(name, width)
        with torch.inference_mode():
            fns = dict(eager=lambda: ours(x), ort=onnx_session(ours, x, args.threads))
            if hidden:
                hf = hugging_face(hidden, depths, width)
                fns['hf'] = lambda: hf(x)
            ms = median_ms(fns, args.repeats)
        gflops = model_gflops(ours, x)
        rows.append(dict(
            model=name, gflops=gflops, eager_ms=ms['eager'], ort_ms=ms['ort'],
            hf_ms=ms.get('hf'), ours_over_hf=ms['eager'] / ms['hf'] if 'hf' in ms else None,
            ort_over_eager=ms['ort'] / ms['eager'],
            eager_gflops_s=gflops / ms['eager'] * 1000,
            fraction_of_peak=gflops / ms['eager'] * 1000 / peak))

    m = machine()
    print(f'{m["cpu"]}, {args.threads} threads, torch {m["torch"]}; batch 1, '
          f'{args.size}x{args.size}, median of {args.repeats}')
    print(f'peak: {peak:.1f} GFLOP/s (2048x2048 fp32 matmul, same threads)')
    head = (f'{"model":<22}{"GFLOPs":>8}{"eager ms":>10}{"ORT ms":>9}{"HF ms":>9}'
            f'{"ours/HF":>9}{"ORT/eager":>10}{"GFLOP/s":>9}{"% peak":>8}')
    print(head)

    def fmt(v, spec):
        width = int(spec.split('.')[0])
        return format(v, spec) if v is not None else '-'.rjust(width)

    for r in rows:
        print(f'{r["model"]:<22}{r["gflops"]:8.2f}{r["eager_ms"]:10.1f}{r["ort_ms"]:9.1f}'
              f'{fmt(r["hf_ms"], "9.1f")}{fmt(r["ours_over_hf"], "9.3f")}'
              f'{r["ort_over_eager"]:10.3f}{r["eager_gflops_s"]:9.1f}'
              f'{100 * r["fraction_of_peak"]:8.1f}')
    write_json(args.json, dict(size=args.size, repeats=args.repeats, threads=args.threads,
                               peak_gflops=peak, rows=rows))


if __name__ == '__main__':
    main()
