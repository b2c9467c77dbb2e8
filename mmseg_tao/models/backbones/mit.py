"""Mix Transformer (MiT-B0..B5), the SegFormer encoder, in the NVlabs / TAO layout.

Registered as ``MixTransformer`` (``arch='b0'`` .. ``'b5'`` or a dict of sizes) and by TAO's
names ``mit_b0`` .. ``mit_b5``. Parameter names are those of NVlabs'
``mix_transformer.py``, which TAO checkpoints use (``patch_embed1.proj``,
``block1.0.attn.q`` / ``.attn.kv`` / ``.attn.sr``, ``mlp.dwconv.dwconv``, ``norm1`` ...), so
TAO and NVlabs weights load without renaming; other layouts are converted by
:mod:`mmseg_tao.models.utils.ckpt_convert`.

Unlike mmseg's ``MixVisionTransformer`` (packed key/value through
``nn.MultiheadAttention``, which freezes the sequence length in an exported ONNX graph),
the attention keeps separate ``q`` and ``kv`` projections and exports with dynamic
height and width.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from timm.layers import DropPath

from ...spec.backbones import MIT_NAMES
from .common import (
    HW,
    Arch,
    SelfAttention,
    TAOBackbone,
    build_variant,
    forward_block,
    init_module_weights,
    map_to_tokens,
    tokens_to_map,
)


class OverlapPatchEmbed(nn.Module):
    """Strided convolution with overlapping windows, then LayerNorm over channels.

    Args:
        in_channels (int): Input channels.
        embed_dim (int): Output channels.
        patch_size (int): Kernel size (padding is ``patch_size // 2``).
        stride (int): Stride, i.e. the downsampling factor.
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, patch_size, stride,
                              padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, HW]:
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(map_to_tokens(x)), hw


class EfficientSelfAttention(SelfAttention):
    """Multi-head self-attention whose keys and values come from a spatially reduced
    sequence (a ``sr_ratio`` strided conv + LayerNorm).

    Args:
        dim (int): Token channels.
        num_heads (int): Attention heads.
        sr_ratio (int): Spatial reduction of the key/value sequence.
        qkv_bias (bool): Bias in the q and kv projections.
        attn_drop (float): Dropout on attention weights.
        proj_drop (float): Dropout after the output projection.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def reduce(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        if self.sr_ratio == 1:
            return x
        return self.norm(map_to_tokens(self.sr(tokens_to_map(x, hw))))


class DWConv(nn.Module):
    """3x3 depthwise convolution over a token sequence."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        return map_to_tokens(self.dwconv(tokens_to_map(x, hw)))


class MixFFN(nn.Module):
    """Linear -> 3x3 depthwise conv -> GELU -> Linear (the Mix-FFN)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = DWConv(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x), hw)))
        return self.drop(self.fc2(x))


class MiTBlock(nn.Module):
    """Pre-norm transformer block: efficient self-attention and Mix-FFN."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int,
                 qkv_bias: bool = True, drop: float = 0., attn_drop: float = 0.,
                 drop_path: float = 0., norm_eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio, qkv_bias,
                                           attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.mlp(self.norm2(x), hw))


@MODELS.register_module()
class MixTransformer(TAOBackbone):
    """Mix Transformer encoder (`SegFormer <https://arxiv.org/abs/2105.15203>`_).

    Build a variant by arch name (``arch='b2'``, or its TAO name ``type='mit_b2'``) or
    with other sizes (``arch=dict(embed_dims=..., depths=...)``). Arguments after
    ``arch`` are keyword-only.

    Args:
        arch (str | dict): ``'b0'`` .. ``'b5'`` (SegFormer paper, Table 6), or a dict with
            ``embed_dims`` (channels per stage) and ``depths`` (blocks per stage).
        in_channels (int): Input image channels. Default: 3.
        num_heads (Sequence[int]): Attention heads per stage. Default: (1, 2, 5, 8).
        sr_ratios (Sequence[int]): Key/value spatial reduction per stage.
            Default: (8, 4, 2, 1).
        mlp_ratio (float): Mix-FFN hidden ratio. Default: 4.
        patch_sizes (Sequence[int]): Patch-embedding kernel per stage. Default: (7, 3, 3, 3).
        strides (Sequence[int]): Patch-embedding stride per stage. Default: (4, 2, 2, 2).
        qkv_bias (bool): Bias in q / kv projections. Default: True.
        drop_rate (float): Dropout after projections and in the FFN. Default: 0.
        attn_drop_rate (float): Dropout on attention weights. Default: 0.
        drop_path_rate (float): Stochastic depth, increasing linearly over all blocks.
            Default: 0.1 (TAO and the paper).
        norm_eps (float): Epsilon of the block and stage LayerNorms: 1e-6 in NVlabs' and
            TAO's models; Hugging Face's port uses 1e-5. Default: 1e-6.
        out_indices (Sequence[int]): Stages whose outputs are returned. Default: (0, 1, 2, 3).
        frozen_stages (int): Stages (from the first) whose parameters are frozen;
            -1 freezes nothing. Default: -1.
        with_cp (bool): Gradient checkpointing of the blocks (saves memory). Default: False.
        pretrained (str, optional): Deprecated alias of
            ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=path)`` loads
            backbone weights in any layout :func:`load_pretrained` recognises.
    """

    arch_zoo = {
        'b0': dict(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2)),
        'b1': dict(embed_dims=(64, 128, 320, 512), depths=(2, 2, 2, 2)),
        'b2': dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 6, 3)),
        'b3': dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 18, 3)),
        'b4': dict(embed_dims=(64, 128, 320, 512), depths=(3, 8, 27, 3)),
        'b5': dict(embed_dims=(64, 128, 320, 512), depths=(3, 6, 40, 3)),
    }

    def __init__(self,
                 arch: Arch,
                 *,
                 in_channels: int = 3,
                 num_heads: Sequence[int] = (1, 2, 5, 8),
                 sr_ratios: Sequence[int] = (8, 4, 2, 1),
                 mlp_ratio: float = 4.,
                 patch_sizes: Sequence[int] = (7, 3, 3, 3),
                 strides: Sequence[int] = (4, 2, 2, 2),
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 norm_eps: float = 1e-6,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(arch, pretrained, init_cfg)
        embed_dims = tuple(self.arch_settings['embed_dims'])
        depths = tuple(self.arch_settings['depths'])
        num_stages = len(embed_dims)
        for name, value in dict(depths=depths, num_heads=num_heads, sr_ratios=sr_ratios,
                                patch_sizes=patch_sizes, strides=strides).items():
            if len(value) != num_stages:
                raise ValueError(f'{name} has {len(value)} entries, expected one per '
                                 f'stage ({num_stages}, as embed_dims)')
        if not set(out_indices) <= set(range(num_stages)):
            raise ValueError(f'out_indices {tuple(out_indices)} must be stage indices '
                             f'in 0..{num_stages - 1}')
        self.embed_dims = embed_dims
        self.depths = depths
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp

        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        prev = in_channels
        for i in range(num_stages):
            start = sum(depths[:i])
            setattr(self, f'patch_embed{i + 1}',
                    OverlapPatchEmbed(prev, embed_dims[i], patch_sizes[i], strides[i]))
            setattr(self, f'block{i + 1}', nn.ModuleList([
                MiTBlock(embed_dims[i], num_heads[i], mlp_ratio, sr_ratios[i], qkv_bias,
                         drop_rate, attn_drop_rate, dpr[start + j], norm_eps)
                for j in range(depths[i])
            ]))
            setattr(self, f'norm{i + 1}', nn.LayerNorm(embed_dims[i], eps=norm_eps))
            prev = embed_dims[i]
        self._freeze_stages()

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned feature maps, in order."""
        return [self.embed_dims[i] for i in self.out_indices]

    def init_random_weights(self) -> None:
        for m in self.modules():
            init_module_weights(m)

    def _freeze_stages(self) -> None:
        for i in range(1, self.frozen_stages + 2):
            for name in (f'patch_embed{i}', f'block{i}', f'norm{i}'):
                module = getattr(self, name)
                module.eval()
                for p in module.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> 'MixTransformer':
        super().train(mode)
        self._freeze_stages()
        return self

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outs = []
        for i in range(len(self.depths)):
            x, hw = getattr(self, f'patch_embed{i + 1}')(x)
            for blk in getattr(self, f'block{i + 1}'):
                x = forward_block(blk, x, hw, self.with_cp)
            x = tokens_to_map(getattr(self, f'norm{i + 1}')(x), hw)
            if i in self.out_indices:
                outs.append(x)
        return outs


# TAO's backbone names (torch-free, in mmseg_tao.spec.backbones) and their settings (the
# checkpoint diagnostics read this table).
MIT_ARCHS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    name: MixTransformer.arch_zoo[arch] for name, arch in MIT_NAMES.items()}


# TAO's names. Parameter counts are of the encoder (no head).
@MODELS.register_module()
def mit_b0(**kwargs) -> MixTransformer:
    """MiT-B0 (TAO name): embed dims 32/64/160/256, depths 2/2/2/2, 3.32M parameters."""
    return build_variant(MixTransformer, 'b0', kwargs, 'mit_b0')


@MODELS.register_module()
def mit_b1(**kwargs) -> MixTransformer:
    """MiT-B1 (TAO name): embed dims 64/128/320/512, depths 2/2/2/2, 13.15M parameters."""
    return build_variant(MixTransformer, 'b1', kwargs, 'mit_b1')


@MODELS.register_module()
def mit_b2(**kwargs) -> MixTransformer:
    """MiT-B2 (TAO name): embed dims 64/128/320/512, depths 3/4/6/3, 24.20M parameters."""
    return build_variant(MixTransformer, 'b2', kwargs, 'mit_b2')


@MODELS.register_module()
def mit_b3(**kwargs) -> MixTransformer:
    """MiT-B3 (TAO name): embed dims 64/128/320/512, depths 3/4/18/3, 44.07M parameters."""
    return build_variant(MixTransformer, 'b3', kwargs, 'mit_b3')


@MODELS.register_module()
def mit_b4(**kwargs) -> MixTransformer:
    """MiT-B4 (TAO name): embed dims 64/128/320/512, depths 3/8/27/3, 60.84M parameters."""
    return build_variant(MixTransformer, 'b4', kwargs, 'mit_b4')


@MODELS.register_module()
def mit_b5(**kwargs) -> MixTransformer:
    """MiT-B5 (TAO name): embed dims 64/128/320/512, depths 3/6/40/3, 81.44M parameters."""
    return build_variant(MixTransformer, 'b5', kwargs, 'mit_b5')
