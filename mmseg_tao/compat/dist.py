"""Several training processes on a machine without a GPU (gloo).

mmengine 0.10.7 calls ``torch.cuda.set_device`` unconditionally when it initialises a
``pytorch`` or ``slurm`` launcher, asks for NCCL by default, and wraps CPU models in DDP with
``device_ids``, which DDP rejects for CPU modules, and converts BN to SyncBN when a config
says ``sync_bn`` (SyncBN raises on CPU tensors). These patches change behaviour only for
models on the CPU.
"""
import functools
import logging
from typing import Callable
from unittest import mock

import torch
from mmengine.logging import print_log

from .registry import Patch, register

_VERSIONS = 'mmengine >=0.10,<0.11'


def _on_cpu(module: torch.nn.Module) -> bool:
    param = next(module.parameters(), None)
    return param is not None and param.device.type == 'cpu'


def _gloo_without_gpu(init_pytorch: Callable) -> Callable:
    from mmengine.device import get_device

    @functools.wraps(init_pytorch)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if get_device() != 'cpu' or init_backend != 'torch':
            return init_pytorch(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(
            backend='gloo' if backend == 'nccl' else backend, **kwargs)

    return _init_dist_pytorch


def _slurm_gloo_without_gpu(init_slurm: Callable) -> Callable:
    from mmengine.device import get_device

    @functools.wraps(init_slurm)
    def _init_dist_slurm(backend, port=None, init_backend='torch', **kwargs):
        if get_device() != 'cpu' or init_backend != 'torch':
            return init_slurm(backend, port=port, init_backend=init_backend, **kwargs)
        # mmengine's own variables (ranks and master from SLURM), without a GPU to select.
        with mock.patch('torch.cuda.set_device', lambda device: None):
            init_slurm('gloo' if backend == 'nccl' else backend, port=port,
                       init_backend=init_backend, **kwargs)

    return _init_dist_slurm


def _no_device_ids_on_cpu(ddp_init: Callable) -> Callable:

    @functools.wraps(ddp_init)
    def __init__(self, module, *args, **kwargs):
        if _on_cpu(module):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        ddp_init(self, module, *args, **kwargs)

    return __init__


def _keep_bn_on_cpu(convert: Callable) -> Callable:

    @functools.wraps(convert)
    def convert_sync_batchnorm(module, implementation='torch'):
        if _on_cpu(module):
            print_log('sync_bn is set but the model is on the CPU, where SyncBN cannot run: '
                      'keeping BatchNorm (statistics per process)', logger='current',
                      level=logging.WARNING)
            return module
        return convert(module, implementation)

    return convert_sync_batchnorm


register(Patch(
    name='mmengine-dist-gloo-on-cpu',
    target='mmengine.dist.utils._init_dist_pytorch',
    reason='without a GPU, torch.cuda.set_device fails and NCCL is unavailable: initialise '
           'the process group with gloo instead',
    versions=_VERSIONS, wrap=_gloo_without_gpu))
register(Patch(
    name='mmengine-dist-slurm-gloo-on-cpu',
    target='mmengine.dist.utils._init_dist_slurm',
    reason='SLURM tasks without a GPU: torch.cuda.set_device fails and NCCL is unavailable; '
           "keep mmengine's SLURM variables and initialise the process group with gloo",
    versions=_VERSIONS, wrap=_slurm_gloo_without_gpu))
register(Patch(
    name='mmengine-ddp-cpu-device-ids',
    target='mmengine.model.wrappers.MMDistributedDataParallel.__init__',
    reason='DDP rejects device_ids for a module on the CPU: pass none there',
    versions=_VERSIONS, wrap=_no_device_ids_on_cpu))
register(Patch(
    name='mmengine-sync-bn-on-cpu',
    target='mmengine.runner.runner.convert_sync_batchnorm',
    reason="SyncBN raises on CPU tensors: a config's sync_bn keeps BatchNorm (with a "
           'warning) for a model on the CPU',
    versions=_VERSIONS, wrap=_keep_bn_on_cpu))
