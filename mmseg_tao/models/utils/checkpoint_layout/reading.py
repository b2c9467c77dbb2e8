"""Tensors of a checkpoint file, whatever wraps them."""
from collections import OrderedDict
from typing import Dict, Mapping

import torch

Tensor = torch.Tensor


def unwrap_checkpoint(ckpt: Mapping, source: str = 'checkpoint'
                      ) -> 'OrderedDict[str, Tensor]':
    """The tensor dict inside a checkpoint (``state_dict`` / ``model`` / flat), with
    DataParallel's ``module.`` prefix removed; a TAO-encrypted one decrypted first.

    Args:
        ckpt: The loaded checkpoint.
        source: Where it came from, for messages.

    Raises:
        ValueError: An entry is not a tensor.
        EncryptedCheckpointError: TAO encrypted it and it cannot be decrypted here.
    """
    from ..tao_encryption import decrypt_checkpoint, is_encrypted
    if is_encrypted(ckpt):
        ckpt = decrypt_checkpoint(ckpt, source)
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt.get(key), Mapping):
            ckpt = ckpt[key]
            break
    if not all(isinstance(v, Tensor) for v in ckpt.values()):
        bad = next(k for k, v in ckpt.items() if not isinstance(v, Tensor))
        raise ValueError(f'not a state dict: entry {bad!r} is a '
                         f'{type(ckpt[bad]).__name__}, expected tensors')
    return OrderedDict((k[7:] if k.startswith('module.') else k, v)
                       for k, v in ckpt.items())


def read_state_dict(filename: str) -> Dict[str, Tensor]:
    """Tensors of a checkpoint file: ``.safetensors`` (Hugging Face) or a torch pickle
    read with ``weights_only`` (through mmengine's loader, see :mod:`mmseg_tao.compat`)."""
    if filename.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(filename)
    from mmengine.runner.checkpoint import CheckpointLoader
    return unwrap_checkpoint(CheckpointLoader.load_checkpoint(filename, map_location='cpu'),
                             filename)
