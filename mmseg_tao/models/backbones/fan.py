"""FAN hybrid backbones (Fully Attentional Networks, Zhou et al. 2022) as TAO builds them.

``fan_{tiny_8,small_12,base_16,large_16}_p4_hybrid`` (TAO's names; also ``FAN`` with
``arch='tiny'`` .. ``'large'`` or a dict of sizes): a two-stage ConvNeXt stem (timm's
ConvNeXt stages), a 2x2 stride-2 projection to tokens at stride 16 with Fourier positional
encoding, FAN blocks (token-mixing self-attention, then channel processing: a sigmoid
channel attention gating an MLP with depthwise convolutions), then two class-attention
blocks. Parameter names follow TAO's / NVlabs' checkpoints (``patch_embed.backbone.stem``,
``patch_embed.proj``, ``pos_embed.token_projection``, ``blocks.i``, ``cls_attn_blocks.i``,
``cls_token``).

Outputs: stem stage 1 (128 ch, /4), stem stage 2 (256 ch, /8), the tokens after block
``out_idx`` (E ch, /16) and the patch tokens after the class-attention blocks (E ch, /16).

The class token and the class-attention path that only feeds it (``cls_token``,
``cls_attn_blocks.*.attn``, ``.mlp``, ``.gamma2``) do not influence the outputs: patch tokens
never attend to the class token. They are kept for checkpoint compatibility and, as in
TAO, computed, so they receive zero gradients rather than none (DDP needs no
``find_unused_parameters`` for them).
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models.convnext import ConvNeXtStage

from ...spec.backbones import FAN_NAMES
from .common import (
    HW,
    Arch,
    SelfAttention,
    TAOBackbone,
    attention,
    build_variant,
    forward_block,
    init_module_weights,
    map_to_tokens,
    merge_heads,
    split_heads,
    tokens_to_map,
)

STEM_DIMS = (128, 256)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map, computed as TAO's FAN stem does.

    TAO 5.x (``nvidia_tao_pytorch/cv/backbone/convnext_utils.py``) normalises an
    NCHW-contiguous input with ``F.layer_norm`` (biased variance) and any other input with
    ``torch.var_mean`` (unbiased variance). The stem's norm returns a permuted,
    non-contiguous map, so in TAO the six block norms and the stage-1 downsample norm take
    the unbiased path; timm's LayerNorm2d is always biased (outputs about 1e-2 apart).
    Same parameters as ``nn.LayerNorm``, so TAO checkpoints load unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_contiguous():
            return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight,
                                self.bias, self.eps).permute(0, 3, 1, 2)
        var, mean = torch.var_mean(x, dim=1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class ConvNeXtStem(nn.Module):
    """ConvNeXt patchify stem and stages (timm's, with TAO's :class:`LayerNorm2d`),
    returning every stage's output."""

    def __init__(self, in_channels: int, depths: Sequence[int],
                 dims: Sequence[int] = STEM_DIMS, drop_path_rate: float = 0.):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4),
            LayerNorm2d(dims[0], eps=1e-6))
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).split(list(depths))
        self.stages = nn.Sequential(*[
            ConvNeXtStage(dims[max(i - 1, 0)], dims[i], stride=1 if i == 0 else 2,
                          depth=depths[i], drop_path_rates=dpr[i].tolist(),
                          ls_init_value=1e-6, conv_mlp=True, norm_layer=LayerNorm2d)
            for i in range(len(depths))
        ])

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class HybridEmbed(nn.Module):
    """ConvNeXt stem, then a 2x2 stride-2 conv to tokens (overall stride 16)."""

    def __init__(self, in_channels: int, embed_dim: int, stem_depths: Sequence[int],
                 drop_path_rate: float = 0.):
        super().__init__()
        self.backbone = ConvNeXtStem(in_channels, stem_depths,
                                     drop_path_rate=drop_path_rate)
        self.proj = nn.Conv2d(STEM_DIMS[-1], embed_dim, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor):
        stem_outs = self.backbone(x)
        x = self.proj(stem_outs[-1])
        hw = (x.shape[2], x.shape[3])
        return map_to_tokens(x), hw, stem_outs


class PositionalEncodingFourier(nn.Module):
    """Sine/cosine features of normalised (row, column) positions, projected to ``dim``.

    Args:
        dim (int): Output channels.
        hidden_dim (int): Frequencies per axis. Default: 32.
        temperature (float): Frequency base. Default: 10000.
        freq_rounding (str): ``'floor'`` (TAO, NVlabs' classification code): channel
            ``i`` uses ``temperature ** (2 * (i // 2) / hidden_dim)``, so sin and cos
            pairs share a frequency. ``'none'`` (NVlabs' segmentation code, which divides
            with ``torch.div(i, 2)``): ``temperature ** (i / hidden_dim)``. Checkpoints
            trained by NVlabs' segmentation code need ``'none'`` to reproduce their
            outputs. Default: ``'floor'``.
    """

    def __init__(self, dim: int, hidden_dim: int = 32, temperature: float = 10000.,
                 freq_rounding: str = 'floor'):
        super().__init__()
        if freq_rounding not in ('floor', 'none'):
            raise ValueError(f"freq_rounding must be 'floor' (TAO) or 'none' (NVlabs "
                             f"segmentation), got {freq_rounding!r}")
        self.token_projection = nn.Conv2d(hidden_dim * 2, dim, kernel_size=1)
        self.hidden_dim = hidden_dim
        self.temperature = temperature
        self.freq_rounding = freq_rounding

    def forward(self, batch: int, hw: HW) -> torch.Tensor:
        device = self.token_projection.weight.device
        eps, scale = 1e-6, 2 * math.pi
        H, W = hw
        y = torch.arange(1, H + 1, dtype=torch.float32, device=device)
        x = torch.arange(1, W + 1, dtype=torch.float32, device=device)
        y = (y / (y[-1:] + eps) * scale)[:, None].expand(-1, W)
        x = (x / (x[-1:] + eps) * scale)[None, :].expand(H, -1)
        i = torch.arange(self.hidden_dim, dtype=torch.float32, device=device)
        half = torch.div(i, 2, rounding_mode='floor') if self.freq_rounding == 'floor' else i / 2
        freq = self.temperature**(2 * half / self.hidden_dim)

        def encode(pos):  # [H, W] -> [H, W, hidden]: sin/cos interleaved
            pos = pos[..., None] / freq
            return torch.stack([pos[..., 0::2].sin(), pos[..., 1::2].cos()],
                               dim=-1).flatten(2)

        pos = torch.cat([encode(y), encode(x)], dim=-1).permute(2, 0, 1)[None]
        pos = self.token_projection(pos.to(self.token_projection.weight.dtype))
        return pos.expand(batch, -1, -1, -1)


class DWConv(nn.Module):
    """Depthwise 3x3 conv -> GELU -> BatchNorm -> depthwise 3x3 conv, on tokens."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.act = nn.GELU()
        self.bn = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        return map_to_tokens(self.conv2(self.bn(self.act(self.conv1(tokens_to_map(x, hw))))))


class ConvMlp(nn.Module):
    """fc1 -> residual layer-scaled depthwise convs -> fc2 (no activation between the
    linears, as in FAN)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(hidden_dim))
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = DWConv(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        x = self.fc1(x)
        x = self.drop(self.gamma * self.dwconv(x, hw)) + x
        return self.drop(self.fc2(x))


class ChannelProcessing(nn.Module):
    """FAN's channel attention: a per-head, per-channel sigmoid gate computed from
    token-softmaxed queries and inputs, applied to ``norm_v(ConvMlp(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.,
                 qkv_bias: bool = True, drop: float = 0.):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.mlp_v = ConvMlp(dim, int(dim * mlp_ratio), drop)
        self.norm_v = nn.LayerNorm(dim)  # eps 1e-5 here, as in TAO
        self.q = nn.Linear(dim, dim, bias=qkv_bias)

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        B, N, C = x.shape
        q = split_heads(self.q(x), self.num_heads).softmax(dim=-2).transpose(-1, -2)
        k = split_heads(x, self.num_heads).softmax(dim=-2).mean(dim=-1, keepdim=True)
        gate = torch.sigmoid(q @ k) * self.temperature          # [B, h, d, 1]
        v = split_heads(self.norm_v(self.mlp_v(x, hw)), self.num_heads)  # [B, h, N, d]
        return (gate * v.transpose(-1, -2)).permute(0, 3, 1, 2).reshape(B, N, C)


class FANBlock(nn.Module):
    """Token mixing then channel processing, each residual with a layer scale."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.,
                 qkv_bias: bool = True, drop: float = 0., drop_path: float = 0.,
                 eta: float = 1.):
        super().__init__()
        self.gamma1 = nn.Parameter(eta * torch.ones(dim))
        self.gamma2 = nn.Parameter(eta * torch.ones(dim))
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads, qkv_bias, proj_drop=drop)  # token mixing
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ChannelProcessing(dim, num_heads, mlp_ratio, qkv_bias, drop)

    def forward(self, x: torch.Tensor, hw: HW) -> torch.Tensor:
        x = x + self.drop_path(self.gamma1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.gamma2 * self.mlp(self.norm2(x), hw))


class ClassAttn(nn.Module):
    """Attention of the class token (first token) over all tokens."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = split_heads(self.q(x[:, :1]), self.num_heads)
        k, v = split_heads(self.k(x), self.num_heads), split_heads(self.v(x), self.num_heads)
        return self.proj(merge_heads(attention(q, k, v, self.scale)))


class ClassAttentionBlock(nn.Module):
    """CaiT-style class-attention block with ``tokens_norm``: patch tokens leave as
    ``2 * norm2(x + gamma1 * norm1(x))``; only the class token is attended and MLP'd."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.,
                 qkv_bias: bool = True, drop_path: float = 0., eta: float = 1.):
        super().__init__()
        self.gamma1 = nn.Parameter(eta * torch.ones(dim))
        self.gamma2 = nn.Parameter(eta * torch.ones(dim))
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ClassAttn(dim, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_norm = self.norm1(x)
        x_attn = torch.cat([self.attn(x_norm), x_norm[:, 1:]], dim=1)
        x = self.norm2(x + self.drop_path(self.gamma1 * x_attn))
        cls = self.gamma2 * self.mlp(x[:, :1])
        return x + self.drop_path(torch.cat([cls, x[:, 1:]], dim=1))


@MODELS.register_module()
class FAN(TAOBackbone):
    """FAN hybrid backbone for dense prediction.

    Build a variant by arch name (``arch='tiny'``, or its TAO name
    ``type='fan_tiny_8_p4_hybrid'``) or with other sizes (``arch=dict(...)`` with the keys
    below). Arguments after ``arch`` are keyword-only.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'``, or a dict with
            ``embed_dim`` (token channels E), ``depth`` (FAN blocks), ``num_heads``,
            ``stem_depths`` (ConvNeXt blocks in the two stem stages) and ``out_idx`` (the
            block whose tokens are the third output).
        in_channels (int): Input image channels. Default: 3.
        mlp_ratio (float): Hidden ratio of the MLPs. Default: 4.
        qkv_bias (bool): Bias in the attention projections. Default: True.
        drop_rate (float): Dropout. Default: 0.
        drop_path_rate (float): Stochastic depth of every FAN block (uniform, as TAO).
            Default: 0.
        cls_attn_layers (int): Class-attention blocks. Default: 2.
        eta (float): Layer-scale initial value. Default: 1.
        pos_freq_rounding (str): Frequencies of the Fourier positional encoding:
            ``'floor'`` as TAO (and NVlabs' ImageNet models), ``'none'`` as NVlabs'
            segmentation code, for its checkpoints. See
            :class:`PositionalEncodingFourier`. Default: ``'floor'``.
        out_indices (Sequence[int]): Which of the four outputs to return.
            Default: (0, 1, 2, 3).
        with_cp (bool): Gradient checkpointing of the FAN blocks. Default: False.
        pretrained (str, optional): Deprecated alias of ``init_cfg`` Pretrained.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=path)`` loads
            TAO / NVlabs FAN weights (backbone or whole-model checkpoints).
    """

    # As TAO builds them; fan_small_12 has 10 blocks there, and large a deeper stem.
    arch_zoo = {
        'tiny': dict(embed_dim=192, depth=8, num_heads=8, stem_depths=(3, 3), out_idx=7),
        'small': dict(embed_dim=384, depth=10, num_heads=8, stem_depths=(3, 3), out_idx=9),
        'base': dict(embed_dim=448, depth=16, num_heads=8, stem_depths=(3, 3), out_idx=15),
        'large': dict(embed_dim=480, depth=22, num_heads=10, stem_depths=(3, 5), out_idx=18),
    }

    def __init__(self,
                 arch: Arch,
                 *,
                 in_channels: int = 3,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 cls_attn_layers: int = 2,
                 eta: float = 1.,
                 pos_freq_rounding: str = 'floor',
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(arch, pretrained, init_cfg)
        embed_dim, depth, num_heads, stem_depths, out_idx = (
            self.arch_settings[k] for k in ('embed_dim', 'depth', 'num_heads', 'stem_depths',
                                            'out_idx'))
        if not 0 <= out_idx < depth:
            raise ValueError(f'out_idx {out_idx} must be a block index in 0..{depth - 1}')
        if not set(out_indices) <= {0, 1, 2, 3}:
            raise ValueError(f'out_indices {tuple(out_indices)} must be in 0..3')
        self.embed_dim = embed_dim
        self.out_idx = out_idx
        self.out_indices = tuple(out_indices)
        self.with_cp = with_cp

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.patch_embed = HybridEmbed(in_channels, embed_dim, stem_depths)
        self.pos_embed = PositionalEncodingFourier(embed_dim, freq_rounding=pos_freq_rounding)
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList([
            FANBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate,
                     drop_path_rate, eta) for _ in range(depth)
        ])
        self.cls_attn_blocks = nn.ModuleList([
            ClassAttentionBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, eta=eta)
            for _ in range(cls_attn_layers)
        ])

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned feature maps, in order."""
        all_channels = [*STEM_DIMS, self.embed_dim, self.embed_dim]
        return [all_channels[i] for i in self.out_indices]

    def init_random_weights(self) -> None:
        trunc_normal_(self.cls_token, std=.02)
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d) and name.startswith('patch_embed.backbone'):
                trunc_normal_(m.weight, std=.02)  # ConvNeXt's init
                nn.init.zeros_(m.bias)
            else:  # convolutions outside the stem and the blocks keep PyTorch's init
                init_module_weights(m, conv=name.startswith('blocks'))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        B = x.shape[0]
        x, hw, outs = self.patch_embed(x)
        x = self.pos_drop(x + map_to_tokens(self.pos_embed(B, hw)))
        for i, blk in enumerate(self.blocks):
            x = forward_block(blk, x, hw, self.with_cp)
            if i == self.out_idx:
                outs.append(tokens_to_map(x, hw))
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        for blk in self.cls_attn_blocks:
            x = blk(x)
        outs.append(tokens_to_map(x[:, 1:], hw))
        return [outs[i] for i in self.out_indices]


# TAO's backbone names (torch-free, in mmseg_tao.spec.backbones) and their settings (the
# checkpoint diagnostics read this table).
FAN_ARCHS: Dict[str, dict] = {name: FAN.arch_zoo[arch] for name, arch in FAN_NAMES.items()}


# TAO's names. Parameter counts are of the backbone (no head).
@MODELS.register_module()
def fan_tiny_8_p4_hybrid(**kwargs) -> FAN:
    """FAN-Tiny hybrid (TAO name): E 192, 8 FAN blocks, 8 heads, stem depths 3/3,
    7.27M parameters."""
    return build_variant(FAN, 'tiny', kwargs, 'fan_tiny_8_p4_hybrid')


@MODELS.register_module()
def fan_small_12_p4_hybrid(**kwargs) -> FAN:
    """FAN-Small hybrid (TAO name): E 384, 10 FAN blocks, 8 heads, stem depths 3/3,
    25.73M parameters."""
    return build_variant(FAN, 'small', kwargs, 'fan_small_12_p4_hybrid')


@MODELS.register_module()
def fan_base_16_p4_hybrid(**kwargs) -> FAN:
    """FAN-Base hybrid (TAO name): E 448, 16 FAN blocks, 8 heads, stem depths 3/3,
    50.03M parameters."""
    return build_variant(FAN, 'base', kwargs, 'fan_base_16_p4_hybrid')


@MODELS.register_module()
def fan_large_16_p4_hybrid(**kwargs) -> FAN:
    """FAN-Large hybrid (TAO name): E 480, 22 FAN blocks, 10 heads, stem depths 3/5,
    76.37M parameters."""
    return build_variant(FAN, 'large', kwargs, 'fan_large_16_p4_hybrid')
