"""Shared helpers of the benchmark scripts: the machine, a device-aware timer, the matmul
peak, the models under test, worker processes and JSON output."""
import json
import logging
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
Device = Union[str, torch.device]


def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def on_cuda(device: Device) -> bool:
    return torch.device(device).type == 'cuda'


def machine() -> Dict:
    """CPU, threads, torch and Python; the GPU, its memory, CUDA and bf16 support if any."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    info = dict(cpu=cpu, cores=os.cpu_count(), threads=torch.get_num_threads(),
                torch=torch.__version__, python=platform.python_version(), gpu=None)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f'{props.major}.{props.minor}',
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    bf16=torch.cuda.is_bf16_supported())
    return info


def describe(info: Dict) -> str:
    """One line for a table's header."""
    text = f'{info["cpu"]}, {info["threads"]} threads, torch {info["torch"]}'
    if info['gpu']:
        text += (f'; {info["gpu"]} ({info["gpu_memory_gib"]} GiB, CUDA {info["cuda"]}, '
                 f'bf16 {"yes" if info["bf16"] else "no"})')
    return text


# ----------------------------------------------------------------------------- timing
def synchronize(device: Device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if on_cuda(device):
        torch.cuda.synchronize(device)


def call_ms(fn: Callable, device: Device) -> float:
    """Milliseconds of one call of ``fn`` from an idle device to its last result.

    On CUDA a pair of events brackets the call after a synchronisation, so the time covers
    the host's kernel launches and the GPU's work; on the CPU it is wall time.
    """
    if not on_cuda(device):
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000
    synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def times_ms(fns: Dict[str, Callable], repeats: int, warmup: Optional[int] = None,
             device: Device = 'cpu') -> Dict[str, List[float]]:
    """Per-call milliseconds of each function, run interleaved so that noise (clocks, other
    processes) hits all alike. ``warmup`` calls of each come first: 2 on the CPU, 10 on
    CUDA (lazy initialisation, cuDNN autotuning, CUDA-graph recording, clocks)."""
    if warmup is None:
        warmup = 10 if on_cuda(device) else 2
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    synchronize(device)
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(call_ms(fn, device))
    return times


def median_ms(fns: Dict[str, Callable], repeats: int, warmup: Optional[int] = None,
              device: Device = 'cpu') -> Dict[str, float]:
    """Median milliseconds per call of each function (see :func:`times_ms`)."""
    return {k: statistics.median(v) for k, v in times_ms(fns, repeats, warmup, device).items()}


# ----------------------------------------------------------------------- matmul peak
@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 for float32 matmuls and cuDNN convolutions on or off, restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def matmul_tflops(dtype: torch.dtype = torch.float32, device: Device = 'cpu',
                  n: Optional[int] = None, repeats: int = 10) -> float:
    """Best TFLOP/s of an n x n matmul (2 n^3 FLOPs) in ``dtype`` on ``device``; n is 8192
    on CUDA, 2048 on the CPU. float32 uses TF32 as currently set (see :func:`tf32`)."""
    n = n or (8192 if on_cuda(device) else 2048)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    with torch.inference_mode():
        best = min(times_ms({'mm': lambda: torch.mm(a, b)}, repeats, device=device)['mm'])
    return 2 * n**3 / best / 1e9


def matmul_peaks(device: Device) -> Dict[str, float]:
    """Measured matmul TFLOP/s per number format: on CUDA 'fp32' (TF32 off), 'tf32'
    (float32 with TF32 on), 'fp16' and 'bf16' (where supported); on the CPU 'fp32'."""
    with tf32(False):
        peaks = {'fp32': matmul_tflops(torch.float32, device)}
    if on_cuda(device):
        with tf32(True):
            peaks['tf32'] = matmul_tflops(torch.float32, device)
        peaks['fp16'] = matmul_tflops(torch.float16, device)
        if torch.cuda.is_bf16_supported():
            peaks['bf16'] = matmul_tflops(torch.bfloat16, device)
    return peaks


# ---------------------------------------------------------------------------- models
class Logits(torch.nn.Module):
    """backbone + decode head of a segmentor (logits at 1/4 resolution); the input is cast
    to the model's precision."""

    def __init__(self, segmentor: torch.nn.Module):
        super().__init__()
        self.segmentor = segmentor
        self.dtype = torch.float32

    def set_precision(self, precision: str) -> 'Logits':
        """Cast the weights once: ours through ``TAOEncoderDecoder.set_precision``, other
        segmentors (stock mmseg) with ``.to(dtype)``."""
        self.dtype = PRECISIONS[precision]
        if hasattr(self.segmentor, 'set_precision'):
            self.segmentor.set_precision(self.dtype)
        else:
            self.segmentor.to(self.dtype)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        return self.segmentor.decode_head(self.segmentor.backbone(x))


def _build_quietly(cfg: dict) -> torch.nn.Module:
    """Build a segmentor from mmseg's registry and initialise it, without init_weights'
    per-parameter log."""
    from mmengine.logging import MMLogger
    from mmseg.registry import MODELS

    import mmseg_tao  # noqa: F401  (registers ours and mmseg's models)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model = MODELS.build(cfg)
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def tao_segformer(backbone: str, embed_dim: int, num_classes: int = 19) -> Logits:
    """Our SegFormer (TAOEncoderDecoder, ``backbone``, TAOSegFormerHead) in eval mode."""
    return Logits(_build_quietly(dict(
        type='TAOEncoderDecoder', backbone=dict(type=backbone),
        decode_head=dict(type='TAOSegFormerHead', embed_dim=embed_dim,
                         num_classes=num_classes)))).eval()


def stock_segformer_model(embed_dims: int = 32, num_layers: Sequence[int] = (2, 2, 2, 2),
                          channels: int = 256, num_classes: int = 19,
                          data_preprocessor: Optional[dict] = None) -> dict:
    """mmseg 1.x SegFormer model dict (configs/segformer/segformer_mit-b*): EncoderDecoder,
    MixVisionTransformer, SegformerHead; the defaults are mit_b0."""
    return dict(
        type='EncoderDecoder', data_preprocessor=data_preprocessor,
        backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=embed_dims,
                      num_stages=4, num_layers=list(num_layers), num_heads=[1, 2, 5, 8],
                      patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
                      out_indices=(0, 1, 2, 3), mlp_ratio=4, qkv_bias=True,
                      drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
        decode_head=dict(type='SegformerHead',
                         in_channels=[embed_dims * m for m in (1, 2, 5, 8)],
                         in_index=[0, 1, 2, 3], channels=channels, dropout_ratio=0.1,
                         num_classes=num_classes, norm_cfg=dict(type='BN', requires_grad=True),
                         align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                          loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def stock_segformer(embed_dims: int, num_layers: Sequence[int], channels: int,
                    num_classes: int = 19) -> Logits:
    """Stock mmseg's SegFormer of the given size in eval mode."""
    return Logits(_build_quietly(
        stock_segformer_model(embed_dims, num_layers, channels, num_classes))).eval()


# ------------------------------------------------------------------ data, processes, IO
def demo_shapes(size: int, num_train: int = 40) -> str:
    """Write the demo 'shapes' dataset (tools/make_demo_dataset.py) at ``size`` into a
    temporary directory; returns the directory holding spec.yaml."""
    root = tempfile.mkdtemp()
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'make_demo_dataset.py'), root,
                    '--kind', 'shapes', '--size', str(size), '--num-train', str(num_train),
                    '--num-val', '2'], check=True, capture_output=True)
    return osp.join(root, 'shapes')


def run_worker(script: str, args: List[str], device: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh process with ``args``; with device 'cpu' the GPUs are
    hidden from it (mmengine's Runner uses CUDA whenever it sees a GPU)."""
    env = dict(os.environ, PYTHONPATH=HERE)
    if device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        raise SystemExit(f'{osp.basename(script)} {" ".join(args)}: exit {out.returncode}')
    return out


def last_json_line(text: str) -> Dict:
    """The JSON object a worker printed last."""
    return json.loads(text.strip().splitlines()[-1])


def write_json(path: Optional[str], payload: Dict) -> None:
    if path:  # whole or not at all: an interrupted run keeps the previous figures
        from mmseg_tao.utils.fileio import atomic_path
        text = json.dumps(dict(machine=machine(), **payload), indent=2)
        with atomic_path(path) as tmp, open(tmp, 'w') as f:
            f.write(text)
