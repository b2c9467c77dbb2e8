"""From a TAO spec to a ready mmengine config for one task, and process launching."""
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import List, Optional, Sequence

import torch
from mmengine.config import Config

from ..engine import find_resume_checkpoint
from ..spec import load_spec, spec_to_config
from ..spec.schema import ExperimentSpec
from ..spec.translate import results_dir, spec_warnings


def task_config(spec: ExperimentSpec, task: str, launcher: str = 'none') -> Config:
    """The mmengine config that runs ``task`` for ``spec``.

    train: results in ``<results_dir>/train``; resumes from
    ``train.resume_training_checkpoint_path`` or else the newest complete ``iter_N.pth``
    there. evaluate / inference / export: the task's checkpoint is loaded, training parts
    are dropped. SyncBN only with CUDA and several processes.
    """
    cfg = spec_to_config(spec)
    cfg['work_dir'] = results_dir(spec, task)
    cfg['launcher'] = launcher
    if not torch.cuda.is_available():
        cfg['sync_bn'] = None
        cfg['env_cfg']['dist_cfg'] = dict(backend='gloo')
    if task == 'train':
        resume_from = spec.train.resume_training_checkpoint_path or \
            find_resume_checkpoint(cfg['work_dir'])
        if resume_from:
            cfg.update(load_from=resume_from, resume=True)
            cfg['model']['backbone']['init_cfg'] = None  # the checkpoint has everything
    else:
        cfg.update(load_from=getattr(spec, task).checkpoint, resume=False,
                   train_dataloader=None, train_cfg=None, optim_wrapper=None,
                   param_scheduler=None, val_dataloader=None, val_cfg=None,
                   val_evaluator=None)
        cfg['model']['backbone']['init_cfg'] = None
        cfg['custom_hooks'] = []
    return Config(cfg)


def prepare(spec_path: str, overrides: Sequence[str], task: str):
    """Load and check the spec for ``task``; print warnings."""
    spec = load_spec(spec_path, overrides, task=task)
    for warning in spec_warnings(spec):
        print(f'warning: {warning}', file=sys.stderr)
    return spec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def relaunch_distributed(task: str, spec_path: str, overrides: Sequence[str], nproc: int,
                         gpu_ids: Optional[List[int]] = None) -> int:
    """Run this command again under torchrun with ``nproc`` processes (gloo on CPU)."""
    env = dict(os.environ)
    if gpu_ids and torch.cuda.is_available():
        env['CUDA_VISIBLE_DEVICES'] = ','.join(str(i) for i in gpu_ids)
    env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // nproc)))
    cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
           f'--master_port={_free_port()}', '-m', 'mmseg_tao.cli', task, '-e',
           osp.abspath(spec_path), *overrides, '--launcher', 'pytorch']
    print(f'launching {nproc} processes: {" ".join(cmd)}', flush=True)
    return subprocess.call(cmd, env=env)
