"""Where a task runs: TAO's ``num_gpus`` / ``gpu_ids`` rule, the device and the backend.

The spec loader has already reconciled ``num_gpus`` and ``gpu_ids`` as TAO's launcher does
(:func:`mmseg_tao.spec.loader.reconcile_gpus`); here they become processes: one per GPU
with NCCL, each seeing only its ``gpu_ids`` (``CUDA_VISIBLE_DEVICES``, as TAO), or
``num_gpus`` CPU processes with gloo on a machine without a GPU. ``train.num_nodes`` multiplies
them: that many machines run as many processes each (:mod:`mmseg_tao.apis.nodes`).
"""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from ..spec.validation import SpecError


@dataclass
class LaunchPlan:
    """How a task's processes are started.

    Attributes:
        nproc: Processes on this machine (one per GPU on a GPU machine).
        device: ``'cuda'`` or ``'cpu'``.
        backend: ``torch.distributed`` backend: ``'nccl'`` on GPUs, ``'gloo'`` on CPU.
        gpu_ids: GPU indices as this process sees them (empty on CPU).
        visible_devices: ``CUDA_VISIBLE_DEVICES`` for relaunched processes (None: keep).
        num_nodes: Machines of the run, each with ``nproc`` processes (``train.num_nodes``).
    """
    nproc: int
    device: str
    backend: str
    gpu_ids: List[int]
    visible_devices: Optional[str] = None
    num_nodes: int = 1

    @property
    def world_size(self) -> int:
        """The processes of the run on all its machines."""
        return self.nproc * self.num_nodes

    @property
    def sync_bn(self) -> bool:
        """SyncBN only makes sense, and only works, across several GPU processes."""
        return self.device == 'cuda' and self.world_size > 1

    def env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """The environment for relaunched processes."""
        env = dict(os.environ if base is None else base)
        if self.visible_devices is not None:
            env['CUDA_VISIBLE_DEVICES'] = self.visible_devices
        if self.device == 'cpu':
            # Each process gets its share of the cores instead of all of them.
            env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // self.nproc)))
        return env


def plan_launch(spec, task: str, launched: bool = False) -> LaunchPlan:
    """The launch of ``task`` for a loaded (reconciled) spec on this machine.

    Args:
        spec: The loaded spec.
        task: ``train``, ``evaluate``, ``inference`` or ``export``.
        launched: True inside a process started by :func:`relaunch_distributed` (or any
            torchrun): its ``CUDA_VISIBLE_DEVICES`` already shows only the run's GPUs.

    Raises:
        SpecError: ``gpu_ids`` name GPUs this machine does not show, or repeat one.
    """
    section = getattr(spec, task)
    nproc = section.num_gpus
    nodes = getattr(section, 'num_nodes', 1) if task == 'train' else 1  # others: ignored
    ids = list(getattr(section, 'gpu_ids', None) or range(nproc))
    if not torch.cuda.is_available():
        return LaunchPlan(nproc, 'cpu', 'gloo', [], num_nodes=nodes)
    if launched:
        return LaunchPlan(nproc, 'cuda', 'nccl', list(range(nproc)), num_nodes=nodes)
    visible = torch.cuda.device_count()
    problems = []
    if len(set(ids)) != len(ids):
        problems.append(f'{task}.gpu_ids: {ids} names a GPU twice; one process per GPU')
    missing = [i for i in ids if i >= visible]
    if missing:
        problems.append(f'{task}.gpu_ids: {ids} but this machine shows {visible} GPU(s) '
                        f'(indices 0..{visible - 1}); GPU(s) {missing} do not exist '
                        '(lower num_gpus / gpu_ids, or check CUDA_VISIBLE_DEVICES)')
    if problems:
        raise SpecError(problems)
    return LaunchPlan(nproc, 'cuda', 'nccl', ids, _visible_devices(ids), num_nodes=nodes)


def _visible_devices(ids: Sequence[int]) -> str:
    """``CUDA_VISIBLE_DEVICES`` that shows ``ids`` (indices as this process sees the GPUs,
    i.e. into an existing ``CUDA_VISIBLE_DEVICES``) as 0..n-1 to the children."""
    current = os.environ.get('CUDA_VISIBLE_DEVICES')
    if current is None or not current.strip():
        return ','.join(str(i) for i in ids)
    names = [x.strip() for x in current.split(',') if x.strip()]
    return ','.join(names[i] for i in ids)


def select_device(plan: LaunchPlan) -> str:
    """Make the plan's first GPU current (single-process runs) and name the device."""
    if plan.device != 'cuda':
        return 'cpu'
    torch.cuda.set_device(plan.gpu_ids[0])
    return f'cuda:{plan.gpu_ids[0]}'
