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
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS


class LinearEmbed(nn.Module):
    """A Linear applied to every pixel of a [B, C, H, W] map."""

    def __init__(self, in_dim: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        x = self.proj(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).reshape(B, -1, H, W)


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
        **kwargs: Other :class:`BaseDecodeHead` arguments (num_classes, dropout_ratio,
            align_corners, in_index, loss_decode, ignore_index, ...).
    """

    def __init__(self,
                 in_channels: List[int],
                 embed_dim: int = 768,
                 channels: Optional[int] = None,
                 norm_cfg: Optional[dict] = None,
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
        for i, dim in enumerate(self.in_channels):
            setattr(self, f'linear_c{i + 1}', LinearEmbed(dim, embed_dim))
        self.linear_fuse = ConvModule(
            embed_dim * len(self.in_channels), embed_dim, kernel_size=1,
            norm_cfg=self.norm_cfg, act_cfg=dict(type='ReLU'))
        self.linear_pred = nn.Conv2d(embed_dim, self.out_channels, kernel_size=1)

    def cls_seg(self, feat: torch.Tensor) -> torch.Tensor:
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.linear_pred(feat)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        feats = self._transform_inputs(inputs)
        size = feats[0].shape[2:]
        levels = []
        for i in reversed(range(len(feats))):  # deepest first: [c4, c3, c2, c1]
            x = getattr(self, f'linear_c{i + 1}')(feats[i])
            if i > 0:
                x = resize(x, size=size, mode='bilinear', align_corners=self.align_corners)
            levels.append(x)
        return self.cls_seg(self.linear_fuse(torch.cat(levels, dim=1)))
