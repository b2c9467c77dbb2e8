"""Where ONNX Runtime spends its time, per operator type, for one or more ONNX files.

Runs each file (CPU provider, ``ORT_ENABLE_ALL`` as the product's evaluate does) on one
random batch with ONNX Runtime's profiler on, and prints the kernel time per operator type of
the last run and the slowest nodes: the profile behind the quantization benchmark's verdict
(docs/benchmarks.md, "Quantization"). The fp32 graph shows which share INT8 can speed up at
all (MatMul, Conv) and which it cannot (Transpose, Add, Resize, normalisations).

    python benchmarks/profile_onnx.py fp32.onnx int8.onnx --batch 8 --size 512 --threads 2
"""
import argparse
import collections
import json
import os
import tempfile
from typing import Dict, Tuple

import numpy as np


def profile(path: str, batch: int, size: int, threads: int,
            runs: int = 2) -> Tuple[Dict[str, float], Dict[str, float]]:
    """``(ms per operator type, ms per node)`` of the last of ``runs`` runs of ``path``."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tempfile.mkdtemp(), 'ort')
    session = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name:
            np.random.default_rng(0).standard_normal((batch, 3, size, size), np.float32)}
    for _ in range(runs):
        session.run(None, feed)
    trace = session.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    last = max(e['ts'] for e in events if e.get('name') == 'model_run')
    by_op, by_node = collections.Counter(), collections.Counter()
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time') and e['ts'] >= last:
            by_op[e['args']['op_name']] += e['dur'] / 1000
            by_node[e['name'][:-len('_kernel_time')]] += e['dur'] / 1000
    return dict(by_op), dict(by_node)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('onnx', nargs='+')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--threads', type=int, default=os.cpu_count())
    p.add_argument('--top', type=int, default=12)
    args = p.parse_args()
    for path in args.onnx:
        by_op, by_node = profile(path, args.batch, args.size, args.threads)
        total = sum(by_op.values())
        print(f'{path}: {total:.0f} ms of kernels (batch {args.batch}, {args.size}x'
              f'{args.size}, {args.threads} threads)')
        for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f'  {op:28s} {ms:9.1f} ms {100 * ms / total:5.1f}%')
        print('  slowest nodes:')
        for node, ms in sorted(by_node.items(), key=lambda kv: -kv[1])[:5]:
            print(f'    {node[:72]:72s} {ms:8.1f} ms')


if __name__ == '__main__':
    main()
