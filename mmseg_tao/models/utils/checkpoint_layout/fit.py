"""Check that a whole-model checkpoint fits a model, strictly, naming the keys and why.

mmengine, mmseg's ``init_model`` and mmdeploy load checkpoints non-strictly: a mit_b2
checkpoint in a mit_b5 model leaves the extra blocks random with a warning in a long log.
The TAO tasks (evaluate, inference, export, resume, ``pretrained_model_path``) check first
with :func:`check_checkpoint_fits`.
"""
import re
from typing import List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ....compat.checkpoint import CheckpointReadError
from .layout import is_unused_classifier, to_model_layout
from .reading import read_state_dict


class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes do not fit the model."""


def _stage_shape(sd: Mapping[str, torch.Tensor]) -> Optional[Tuple[Tuple[int, ...], ...]]:
    """(embed dims, depths) of a MiT backbone in ``sd``, or None."""
    dims, depths = [], []
    for i in range(1, 5):
        w = sd.get(f'backbone.patch_embed{i}.proj.weight')
        if w is None:
            return None
        dims.append(int(w.shape[0]))
        blocks = {int(m.group(1)) for k in sd
                  for m in [re.match(rf'backbone\.block{i}\.(\d+)\.', k)] if m}
        depths.append(max(blocks) + 1 if blocks else 0)
    return tuple(dims), tuple(depths)


def likely_backbone(sd: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The backbone a whole-model state dict (``backbone.*``) looks like, in words."""
    from ...backbones import FAN_ARCHS, MIT_ARCHS
    shape = _stage_shape(sd)
    if shape is not None:
        for name, arch in MIT_ARCHS.items():
            if (tuple(arch['embed_dims']), tuple(arch['depths'])) == shape:
                return name
        return f'a MiT with embed dims {list(shape[0])} and depths {list(shape[1])}'
    blocks = {int(m.group(1)) for k in sd for m in [re.match(r'backbone\.blocks\.(\d+)\.', k)]
              if m}
    if blocks:
        return f'a FAN hybrid with {max(blocks) + 1} FAN blocks (one of {", ".join(FAN_ARCHS)})'
    return None


def _causes(ckpt_sd, missing, unexpected, shapes) -> List[str]:
    causes = []
    keys = missing + unexpected + [k for k, _, _ in shapes]
    if any(k.startswith('backbone.') for k in keys):
        guess = likely_backbone(ckpt_sd)
        causes.append('the backbone differs from model.backbone.type' +
                      (f' (the checkpoint looks like {guess})' if guess else ''))
    pred = [(a, b) for k, a, b in shapes if k == 'decode_head.linear_pred.weight']
    if pred:
        causes.append(f'num_classes: the checkpoint predicts {pred[0][1][0]} classes, the '
                      f'palette gives {pred[0][0][0]}')
    if any(k.startswith('decode_head.convs.') for k in unexpected):
        causes.append("the checkpoint has mmseg's SegformerHead (BN + ReLU on every level), "
                      "which does not map onto TAO's head: use it as "
                      'model.pretrained_model_path (its backbone loads) and train the head')
    width = [(a, b) for k, a, b in shapes if k.startswith('decode_head.linear_fuse.')]
    if width:
        causes.append(f'the decoder width: the checkpoint has embed_dim {width[0][1][0]}, '
                      f'model.decode_head.decoder_params.embed_dim is {width[0][0][0]}')
    return causes


def check_state_dict_fits(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                          source: str = 'checkpoint') -> None:
    """Raise unless ``state_dict`` (any supported layout) has exactly the model's keys
    and shapes; only ``decode_head.conv_seg.*`` may be absent or extra.

    Raises:
        CheckpointMismatchError: Naming the missing, unexpected and mis-shaped keys and
            the likely cause (backbone, num_classes or decoder width).
    """
    own = model.state_dict()
    try:
        ckpt = to_model_layout(state_dict, model_keys=own)[1]
    except ValueError as err:
        raise CheckpointMismatchError(f'{source}: {err}') from None
    missing = [k for k in own if k not in ckpt and not is_unused_classifier(k)]
    unexpected = [k for k in ckpt if k not in own]
    shapes = [(k, tuple(own[k].shape), tuple(ckpt[k].shape)) for k in own
              if k in ckpt and tuple(own[k].shape) != tuple(ckpt[k].shape)]
    if not (missing or unexpected or shapes):
        return
    lines = [f'{source} does not fit the model:']
    lines += key_listing('missing from the checkpoint', missing)
    lines += key_listing('in the checkpoint but not in the model', unexpected)
    lines += key_listing('of another shape (model vs checkpoint)',
                      [f'{k}: {list(a)} vs {list(b)}' for k, a, b in shapes])
    causes = _causes(ckpt, missing, unexpected, shapes)
    if causes:
        lines.append('likely cause: ' + '; '.join(causes))
    raise CheckpointMismatchError('\n'.join(lines))


def check_checkpoint_fits(model: nn.Module, filename: str) -> None:
    """:func:`check_state_dict_fits` for a checkpoint file (read with ``weights_only``).

    Raises:
        CheckpointMismatchError: The file holds no state dict, or it does not fit.
        CheckpointReadError: The file cannot be read (unsafe, truncated, not a torch file,
            encrypted without the means to decrypt it).
    """
    try:
        state_dict = read_state_dict(filename)
    except CheckpointReadError:
        raise
    except ValueError as err:  # e.g. a dict of other things than tensors
        raise CheckpointMismatchError(f'{filename}: {err}') from None
    check_state_dict_fits(model, state_dict, filename)


def key_listing(what: str, items: Sequence[str], limit: int = 8) -> List[str]:
    """Message lines: how many keys are ``what``, and the first ``limit`` of them."""
    if not items:
        return []
    more = f' (and {len(items) - limit} more)' if len(items) > limit else ''
    return [f'  {len(items)} key(s) {what}{more}:'] + [f'    {k}' for k in items[:limit]]
