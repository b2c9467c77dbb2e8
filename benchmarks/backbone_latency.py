#!/usr/bin/env python
"""Forward latency of mmseg-tao SegFormers vs Hugging Face transformers, on CPU.

    python benchmarks/backbone_latency.py [--size 512] [--repeats 10] [--threads N]
                                          [--json out.json]

Whole model (backbone + decode head, logits at 1/4 resolution), batch 1, eval mode,
``torch.inference_mode``. For each MiT size the two implementations run interleaved
(ours, HF, ours, HF, ...) so that machine noise hits both alike; the median is reported.
HF models are built from their config (random weights: latency does not depend on them)
with the same decoder width as ours (256 for B0/B1, 768 for B2).
"""
import argparse
import json
import platform
import statistics
import time

import torch
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401

MIT = {  # name: (hidden sizes, depths, decoder width)
    'mit_b0': ([32, 64, 160, 256], [2, 2, 2, 2], 256),
    'mit_b1': ([64, 128, 320, 512], [2, 2, 2, 2], 256),
    'mit_b2': ([64, 128, 320, 512], [3, 4, 6, 3], 768),
}
FAN = {'fan_tiny_8_p4_hybrid': 256}
NUM_CLASSES = 19


class Logits(torch.nn.Module):

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        return self.segmentor.decode_head(self.segmentor.backbone(x))


def ours(name: str, embed_dim: int) -> torch.nn.Module:
    model = MODELS.build(dict(
        type='TAOEncoderDecoder', backbone=dict(type=name),
        decode_head=dict(type='TAOSegFormerHead', embed_dim=embed_dim,
                         num_classes=NUM_CLASSES)))
    return Logits(model).eval()


def hugging_face(hidden, depths, width) -> torch.nn.Module:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation
    cfg = SegformerConfig(hidden_sizes=hidden, depths=depths, decoder_hidden_size=width,
                          num_labels=NUM_CLASSES)
    model = SegformerForSemanticSegmentation(cfg).eval()
    return lambda x: model(pixel_values=x).logits


def time_interleaved(fns: dict, x: torch.Tensor, repeats: int, warmup: int = 2) -> dict:
    times = {k: [] for k in fns}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns.values():
                fn(x)
        for _ in range(repeats):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn(x)
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, args.size, args.size)

    rows = []
    for name, (hidden, depths, width) in MIT.items():
        ms = time_interleaved({'ours': ours(name, width),
                               'hf': hugging_face(hidden, depths, width)}, x, args.repeats)
        rows.append(dict(model=name, ours_ms=ms['ours'], hf_ms=ms['hf'],
                         ratio=ms['ours'] / ms['hf']))
    for name, width in FAN.items():
        ms = time_interleaved({'ours': ours(name, width)}, x, args.repeats)
        rows.append(dict(model=name, ours_ms=ms['ours'], hf_ms=None, ratio=None))

    cpu = platform.processor() or platform.machine()
    print(f'CPU latency, batch 1, {args.size}x{args.size}, {args.threads} threads, '
          f'median of {args.repeats}; torch {torch.__version__}, {cpu}')
    print(f'{"model":<24}{"ours ms":>10}{"HF ms":>10}{"ours/HF":>10}')
    for r in rows:
        hf = f'{r["hf_ms"]:10.1f}' if r['hf_ms'] is not None else f'{"-":>10}'
        ratio = f'{r["ratio"]:10.3f}' if r['ratio'] is not None else f'{"-":>10}'
        print(f'{r["model"]:<24}{r["ours_ms"]:10.1f}{hf}{ratio}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(size=args.size, threads=args.threads, repeats=args.repeats,
                           torch=torch.__version__, rows=rows), f, indent=2)


if __name__ == '__main__':
    main()
