"""``tao6``: TAO 6.x / 7.x checkpoints (PyTorch Lightning), both ways.

TAO 6/7 trains with Lightning: a checkpoint is Lightning's dict (``epoch``,
``global_step``, ``pytorch-lightning_version``, ``state_dict``, optimizer and loop state)
and ``state_dict`` holds TAO's ``SegFormer`` under the Lightning module's ``model.``:
``model.backbone.*`` (the package's backbone names) and ``model.decoder.*``, whose fuse
layer is an ``nn.Sequential`` of a 1x1 convolution *with* bias (``linear_fuse.0``) and
BatchNorm (``linear_fuse.1``). The package's head (mmcv's ConvModule, as TAO 5's) has no
bias before its BatchNorm. BN(conv(x) + b) is BN'(conv(x)) with BN' the same BatchNorm but
``running_mean - b``: in evaluation exactly, and in training BN subtracts the batch mean,
which removes a constant bias anyway. So the bias is folded into the running mean when
reading, and written as zeros (BatchNorm unchanged) when writing.

Encrypted TAO 6/7 files are decrypted when loaded (:mod:`..tao_encryption`); this module
sees plain tensors.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping

import torch

from .layout import ConversionResult, Layout, Tensor, is_unused_classifier, rename

#: PyTorch Lightning version written into converted checkpoints: TAO 7.0.1's
#: (``docker/requirements-pip-pytorch.txt``); Lightning's loader migrates older ones.
LIGHTNING_VERSION = '2.6.1'

_FUSE_WEIGHT = 'model.decoder.linear_fuse.0.weight'
_FUSE_BIAS = 'model.decoder.linear_fuse.0.bias'
_BN_MEAN = 'model.decoder.linear_fuse.1.running_mean'

# TAO 6/7 -> package names (source regex, target template).
_RULES = [
    (r'model\.backbone\.(?P<rest>.+)', 'backbone.{rest}'),
    (r'model\.decoder\.linear_c(?P<i>\d)\.proj\.(?P<p>weight|bias)',
     'decode_head.linear_c{i}.proj.{p}'),
    (r'model\.decoder\.linear_fuse\.0\.weight', 'decode_head.linear_fuse.conv.weight'),
    (r'model\.decoder\.linear_fuse\.1\.(?P<p>weight|bias|running_mean|running_var|'
     r'num_batches_tracked)', 'decode_head.linear_fuse.bn.{p}'),
    (r'model\.decoder\.linear_pred\.(?P<p>weight|bias)', 'decode_head.linear_pred.{p}'),
]
# Package -> TAO 6/7 names.
_REVERSE_RULES = [
    (r'backbone\.(?P<rest>.+)', 'model.backbone.{rest}'),
    (r'decode_head\.linear_c(?P<i>\d)\.proj\.(?P<p>weight|bias)',
     'model.decoder.linear_c{i}.proj.{p}'),
    (r'decode_head\.linear_fuse\.conv\.(?P<p>weight|bias)', 'model.decoder.linear_fuse.0.{p}'),
    (r'decode_head\.linear_fuse\.bn\.(?P<p>\w+)', 'model.decoder.linear_fuse.1.{p}'),
    (r'decode_head\.linear_pred\.(?P<p>weight|bias)', 'model.decoder.linear_pred.{p}'),
]


def _recognise(keys) -> bool:
    return any(k.startswith(('model.backbone.', 'model.decoder.')) for k in keys)


def convert_tao6(sd: Mapping[str, Tensor], result: ConversionResult) -> None:
    """Rename by the rules; fold the fuse convolution's bias into the BatchNorm's running
    mean. A bias without the BatchNorm statistics to take it stays unmatched."""
    out = result.state_dict
    bias = sd.get(_FUSE_BIAS)
    for key, value in sd.items():
        if key == _FUSE_BIAS:
            if _BN_MEAN not in sd:
                result.unmatched.append(key)
            continue
        new = rename(key, _RULES)
        if new is None:
            result.unmatched.append(key)
        elif key == _BN_MEAN and bias is not None:
            out[new] = value - bias.to(value.dtype)
        else:
            out[new] = value


TAO6 = Layout(
    name='tao6',
    summary='TAO 6.x / 7.x (PyTorch Lightning): model.backbone.*, model.decoder.* with '
            'linear_fuse.0 (conv with bias) / linear_fuse.1 (BN)',
    recognise=_recognise,
    convert=convert_tao6)


def is_lightning_checkpoint(ckpt: Mapping) -> bool:
    """Whether a loaded checkpoint dict was written by PyTorch Lightning (TAO 6/7)."""
    return 'pytorch-lightning_version' in ckpt


def _decoder_rank(key: str) -> tuple:
    """TAO's module order in the decoder: linear_c4 .. linear_c1, linear_fuse, linear_pred."""
    m = re.match(r'model\.decoder\.linear_c(\d)\.', key)
    if m:
        return (0, -int(m.group(1)))
    return (1, ) if '.linear_fuse.' in key else (2, )


def to_tao6_state_dict(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """A whole model in the package's layout as TAO 6/7's Lightning ``state_dict``.

    The fuse convolution gets a zero bias (TAO's has one; the package's BatchNorm takes it
    in its running mean), the BatchNorm is unchanged; ``decode_head.conv_seg`` (TAO 5's
    unused classifier) is left out; keys are in TAO's module order.

    Raises:
        ValueError: A key has no TAO 6/7 name (TAO loads strictly), or the model has no
            decode head.
    """
    backbone: Dict[str, Tensor] = OrderedDict()
    decoder: Dict[str, Tensor] = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        if is_unused_classifier(key):
            continue
        new = rename(key, _REVERSE_RULES)
        if new is None:
            unknown.append(key)
            continue
        (backbone if new.startswith('model.backbone.') else decoder)[new] = value
        if new == _FUSE_WEIGHT and 'decode_head.linear_fuse.conv.bias' not in state_dict:
            decoder[_FUSE_BIAS] = torch.zeros(value.shape[0], dtype=value.dtype)
    if unknown:
        raise ValueError(f'{len(unknown)} key(s) have no TAO 6/7 name: '
                         f'{", ".join(unknown[:8])}')
    if _FUSE_WEIGHT not in decoder:
        raise ValueError('not a whole model: TAO 6/7 checkpoints hold the backbone and '
                         "the decode head (decode_head.linear_fuse.conv.weight is missing)")
    ordered = sorted(decoder, key=_decoder_rank)  # stable: keeps each module's order
    return OrderedDict([*backbone.items(), *((k, decoder[k]) for k in ordered)])


def to_tao6_checkpoint(state_dict: Mapping[str, Tensor], epoch: int = 0,
                       global_step: int = 0) -> dict:
    """A TAO 6/7 checkpoint of a whole model in the package's layout.

    TAO 6/7's evaluate, inference, export and ``train.pretrained_model_path`` load with
    Lightning's ``load_from_checkpoint``, which reads ``pytorch-lightning_version`` (to
    migrate old files) and ``state_dict`` (loaded strictly); ``epoch`` and
    ``global_step`` are Lightning's counters as TAO's file names show them
    (``model_epoch_<epoch:03d>_step_<global_step:05d>.pth``). Optimizer and loop state
    are not written: Lightning reports such a file as weights-only if asked to resume.

    Args:
        state_dict: The model's tensors (``backbone.*``, ``decode_head.*``).
        epoch: Lightning's epoch (0-based: the epoch that has just ended).
        global_step: Optimizer steps taken.
    """
    return {'epoch': int(epoch), 'global_step': int(global_step),
            'pytorch-lightning_version': LIGHTNING_VERSION,
            'state_dict': to_tao6_state_dict(state_dict)}
