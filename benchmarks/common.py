"""Shared helpers of the benchmark scripts (machine description, models, JSON output)."""
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, List

import torch


def machine() -> Dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), threads=torch.get_num_threads(),
                torch=torch.__version__, python=platform.python_version(),
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def median_ms(fns: Dict[str, Callable], repeats: int, warmup: int = 2) -> Dict[str, float]:
    """Median wall time of each function, run interleaved so that noise hits all alike."""
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def write_json(path: str, payload: Dict) -> None:
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(dict(machine=machine(), **payload), f, indent=2)


class Logits(torch.nn.Module):
    """backbone + decode head of a segmentor (logits at 1/4 resolution)."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        return self.segmentor.decode_head(self.segmentor.backbone(x))


def tao_segformer(backbone: str, embed_dim: int, num_classes: int = 19) -> Logits:
    import mmseg_tao  # noqa: F401
    from mmseg.registry import MODELS
    model = MODELS.build(dict(
        type='TAOEncoderDecoder', backbone=dict(type=backbone),
        decode_head=dict(type='TAOSegFormerHead', embed_dim=embed_dim,
                         num_classes=num_classes)))
    model.init_weights()
    return Logits(model).eval()
