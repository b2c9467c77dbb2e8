"""The original SegFormer all-MLP decode head (NVlabs / TAO), not mmseg's SegformerHead.

Per level a Linear to ``embed_dim`` (``linear_c{i}.proj``), upsampled to the first level's
size and concatenated deepest first ([c4, c3, c2, c1]); a 1x1 conv + BN + ReLU fuses them
(``linear_fuse``), then Dropout2d and a 1x1 classifier (``linear_pred``). mmseg's head adds
BN + ReLU to every level and concatenates shallowest first, so its weights do not map onto
this one. Parameter names match TAO checkpoints.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList


def pixel_accuracy(seg_logits: torch.Tensor, seg_label: torch.Tensor,
                   ignore_index: int) -> torch.Tensor:
    """Top-1 accuracy (%) over pixels whose label is not ``ignore_index``, as mmseg's
    ``accuracy(..., topk=1)`` computes it (same epsilon for all-ignored batches), without
    leaving the device."""
    eps = torch.finfo(torch.float32).eps
    valid = seg_label != ignore_index
    correct = ((seg_logits.argmax(dim=1) == seg_label) & valid).sum().float()
    return ((correct + eps) * 100.0 / (valid.sum().float() + eps)).reshape(1)


class LinearEmbed(nn.Module):
    """A level's per-pixel Linear to ``embed_dim`` (``proj``, TAO's parameter name), on
    feature maps: [N, C, H, W] -> [N, E, H, W]."""

    def __init__(self, in_dim: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        return self.proj(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(n, -1, h, w)


@MODELS.register_module()
class TAOSegFormerHead(BaseDecodeHead):
    """All-MLP SegFormer head as in the paper, NVlabs' code and TAO.

    Args:
        in_channels (list[int]): Channels of the backbone levels, shallowest first.
        embed_dim (int): Width of the per-level projections and the fused map
            (TAO's ``decoder_params.embed_dim``). Default: 768.
        channels (int, optional): mmseg's head width; here the fused width, so it
            defaults to ``embed_dim`` and any other value is an error.
        norm_cfg (dict): Norm of the fuse conv. Default: BN (TAO trains with SyncBN on
            several GPUs; pass ``dict(type='SyncBN')`` for that).
        fuse_levels (bool): Apply each level's Linear together with its block of the fuse
            conv, at the level's own resolution (fast; see :meth:`forward`). False runs
            the modules one by one as TAO does (``linear_c*``, upsample, concatenate,
            ``linear_fuse``), for forward hooks, quantisation and FLOP counters that must
            see them. Both give the same outputs and gradients. Default: True.
        **kwargs: Other :class:`BaseDecodeHead` arguments (num_classes, dropout_ratio,
            align_corners, in_index, loss_decode, ignore_index, ...).
    """

    def __init__(self,
                 in_channels: List[int],
                 embed_dim: int = 768,
                 channels: Optional[int] = None,
                 norm_cfg: Optional[dict] = None,
                 fuse_levels: bool = True,
                 **kwargs):
        if channels is not None and channels != embed_dim:
            raise ValueError(f'TAOSegFormerHead: channels ({channels}) is the fused '
                             f'width and must equal embed_dim ({embed_dim}); '
                             'leave it unset')
        kwargs.setdefault('in_index', list(range(len(in_channels))))
        kwargs.setdefault('init_cfg', dict(type='Normal', std=0.01,
                                           override=dict(name='linear_pred')))
        super().__init__(
            in_channels=in_channels,
            channels=embed_dim,
            input_transform='multiple_select',
            norm_cfg=norm_cfg or dict(type='BN', requires_grad=True),
            **kwargs)
        del self.conv_seg  # the classifier is linear_pred, as in TAO checkpoints
        self.fuse_levels = fuse_levels
        for i, dim in enumerate(self.in_channels):
            setattr(self, f'linear_c{i + 1}', LinearEmbed(dim, embed_dim))
        self.linear_fuse = ConvModule(
            embed_dim * len(self.in_channels), embed_dim, kernel_size=1,
            norm_cfg=self.norm_cfg, act_cfg=dict(type='ReLU'))
        self.linear_pred = nn.Conv2d(embed_dim, self.out_channels, kernel_size=1)

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples: SampleList) -> dict:
        """:meth:`BaseDecodeHead.loss_by_feat` (logits resized to the labels, each
        ``loss_decode`` summed by name, ``acc_seg``) with the accuracy computed on the
        device: mmseg's ``accuracy`` selects the valid pixels by boolean indexing, a
        host-device synchronisation in every training step."""
        seg_label = self._stack_batch_gt(batch_data_samples)
        seg_logits = resize(seg_logits, size=seg_label.shape[2:], mode='bilinear',
                            align_corners=self.align_corners)
        seg_weight = None if self.sampler is None else self.sampler.sample(seg_logits, seg_label)
        seg_label = seg_label.squeeze(1)
        losses = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) \
            else [self.loss_decode]
        loss = dict()
        for loss_decode in losses:
            value = loss_decode(seg_logits, seg_label, weight=seg_weight,
                                ignore_index=self.ignore_index)
            name = loss_decode.loss_name
            loss[name] = loss[name] + value if name in loss else value
        loss['acc_seg'] = pixel_accuracy(seg_logits, seg_label, self.ignore_index)
        return loss

    def cls_seg(self, feat: torch.Tensor) -> torch.Tensor:
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.linear_pred(feat)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        feats = self._transform_inputs(inputs)
        if not self.fuse_levels:
            return self.cls_seg(self._forward_modules(feats))
        size = feats[0].shape[2:]
        embed = self.channels
        fuse = self.linear_fuse.conv.weight.flatten(1)  # [E, n*E], blocks deepest first
        x = None
        for i in reversed(range(len(feats))):
            # The 1x1 fuse conv over the concatenation equals the sum of its per-level
            # blocks, and a per-pixel linear map commutes with bilinear upsampling: so each
            # level's Linear and its fuse block are applied as one (C_i -> E) map at the
            # level's own resolution, then upsampled and summed. Same result as
            # upsample-concat-conv, without the 4E-channel map at 1/4 resolution.
            block = fuse[:, (len(feats) - 1 - i) * embed:(len(feats) - i) * embed]
            proj = getattr(self, f'linear_c{i + 1}').proj
            y = F.conv2d(feats[i], (block @ proj.weight)[:, :, None, None],
                         block @ proj.bias)
            if i > 0:
                y = resize(y, size=size, mode='bilinear', align_corners=self.align_corners)
            x = y if x is None else x + y
        if self.linear_fuse.conv.bias is not None:
            x = x + self.linear_fuse.conv.bias[None, :, None, None]
        if self.linear_fuse.with_norm:
            x = self.linear_fuse.norm(x)
        if self.linear_fuse.with_activation:
            x = self.linear_fuse.activate(x)
        return self.cls_seg(x)

    def _forward_modules(self, feats: List[torch.Tensor]) -> torch.Tensor:
        """TAO's order, module by module: per-level Linear, upsample to the first level,
        concatenate deepest first, ``linear_fuse``."""
        size = feats[0].shape[2:]
        maps = []
        for i in reversed(range(len(feats))):
            y = getattr(self, f'linear_c{i + 1}')(feats[i])
            if i > 0:
                y = resize(y, size=size, mode='bilinear', align_corners=self.align_corners)
            maps.append(y)
        return self.linear_fuse(torch.cat(maps, dim=1))
