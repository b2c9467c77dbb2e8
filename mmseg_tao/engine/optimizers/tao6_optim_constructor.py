"""TAO 6/7's optimizer parameter groups, for configs made from TAO 6/7 specs."""
import copy
from typing import List

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

# Substrings of parameter names (relative to the backbone / the decode head) that TAO 6
# trains without weight decay (SegFormerPlModel._get_parameter_groups, TAO 6.25.10). The
# match is by substring, so 'ls' also catches the FAN class-attention blocks ('cls_...').
NO_DECAY_SUBSTRINGS = ('bias', 'norm', 'gamma', 'bn', 'temperature', 'token', 'level_embed',
                       'spm', 'ls', 'linear_fuse.1')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TAO6OptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Four parameter groups as TAO 6/7 makes them: backbone parameters at the base
    learning rate, decode-head parameters at ``head_lr_mult`` times it, each split into
    parameters with weight decay and parameters without (names containing one of
    :data:`NO_DECAY_SUBSTRINGS`).

    ``paramwise_cfg`` keys:
        head_lr_mult (float): Learning-rate multiplier of the decode head. Default: 10.
        freeze_backbone (bool): TAO 6's ``model.backbone.freeze_backbone``: the backbone's
            parameters get no gradient and are left out of the optimizer. Default: False.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if is_model_wrapper(model):
            model = model.module
        cfg = self.paramwise_cfg or {}
        unknown = set(cfg) - {'head_lr_mult', 'freeze_backbone'}
        if unknown:
            raise ValueError(f'TAO6OptimWrapperConstructor: unknown paramwise_cfg key(s) '
                             f'{sorted(unknown)}; expected head_lr_mult, freeze_backbone')
        lr = self.optimizer_cfg['lr']
        wd = self.optimizer_cfg.get('weight_decay', 0.0)
        head_lr = lr * cfg.get('head_lr_mult', 10.0)
        if cfg.get('freeze_backbone', False):
            model.backbone.requires_grad_(False)
        groups: List[dict] = []
        for part, part_lr in ((model.backbone, lr), (model.decode_head, head_lr)):
            decay, no_decay = [], []
            for name, param in part.named_parameters():
                if not param.requires_grad:
                    continue
                target = no_decay if any(s in name for s in NO_DECAY_SUBSTRINGS) else decay
                target.append(param)
            groups += [dict(params=decay, lr=part_lr, weight_decay=wd),
                       dict(params=no_decay, lr=part_lr, weight_decay=0.0)]
        optimizer_cfg = copy.deepcopy(self.optimizer_cfg)
        optimizer_cfg['params'] = [g for g in groups if g['params']]
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(self.optim_wrapper_cfg,
                                    default_args=dict(optimizer=optimizer))
