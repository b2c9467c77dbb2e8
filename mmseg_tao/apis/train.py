"""The ``train`` task: a TAO spec trained by mmengine's Runner."""
from typing import Sequence

import torch.distributed as dist
from mmengine.runner import Runner

from ..spec.translate import num_processes
from .experiment import prepare, relaunch_distributed, task_config


def train(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none') -> int:
    """Train; with ``train.num_gpus`` / ``train.gpu_ids`` above one process, relaunch
    under torchrun. Returns the exit status."""
    spec = prepare(spec_path, overrides, 'train')
    nproc = num_processes(spec, 'train')
    if nproc > 1 and launcher == 'none':
        return relaunch_distributed('train', spec_path, overrides, nproc, spec.train.gpu_ids)
    cfg = task_config(spec, 'train', launcher)
    if cfg.get('load_from'):
        print(f'resuming from {cfg.load_from}', flush=True)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    finally:
        # Tearing the group down explicitly avoids an occasional abort at exit (gloo).
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0
