"""Several training processes on a machine without a GPU (gloo).

mmengine 0.10.7 calls ``torch.cuda.set_device`` unconditionally when it initialises a
``pytorch`` launcher, asks for NCCL by default, and wraps CPU models in DDP with
``device_ids``, which DDP rejects for CPU modules, and converts BN to SyncBN when a config
says ``sync_bn`` (SyncBN raises on CPU tensors). These patches change behaviour only for
models on the CPU.
"""
import functools
import logging

import torch
from mmengine.logging import print_log


def install() -> None:
    import mmengine.dist.utils as dist_utils
    from mmengine.device import get_device
    from mmengine.model.wrappers import MMDistributedDataParallel

    init_pytorch = dist_utils._init_dist_pytorch
    if getattr(init_pytorch, '_mmseg_tao_cpu', False):
        return

    @functools.wraps(init_pytorch)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if get_device() != 'cpu' or init_backend != 'torch':
            return init_pytorch(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(
            backend='gloo' if backend == 'nccl' else backend, **kwargs)

    _init_dist_pytorch._mmseg_tao_cpu = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch

    ddp_init = MMDistributedDataParallel.__init__

    @functools.wraps(ddp_init)
    def __init__(self, module, *args, **kwargs):
        param = next(module.parameters(), None)
        if param is not None and param.device.type == 'cpu':
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        ddp_init(self, module, *args, **kwargs)

    MMDistributedDataParallel.__init__ = __init__

    import mmengine.runner.runner as runner_module
    convert = runner_module.convert_sync_batchnorm

    @functools.wraps(convert)
    def convert_sync_batchnorm(module, implementation='torch'):
        param = next(module.parameters(), None)
        if param is not None and param.device.type == 'cpu':
            print_log('sync_bn is set but the model is on the CPU, where SyncBN cannot run: '
                      'keeping BatchNorm (statistics per process)', logger='current',
                      level=logging.WARNING)
            return module
        return convert(module, implementation)

    runner_module.convert_sync_batchnorm = convert_sync_batchnorm
