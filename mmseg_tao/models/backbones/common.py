"""Pieces the MiT and FAN backbones share: token / map reshapes, attention with its ONNX
export path, gradient checkpointing of a block, weight initialisation, and the base class
that turns an ``arch`` name or dict into settings and loads pretrained weights."""
import math
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from timm.layers import trunc_normal_
from torch.utils import checkpoint as cp

from ..utils.pretrained import load_pretrained

HW = Tuple[int, int]
Arch = Union[str, Mapping[str, Any]]


def tokens_to_map(x: torch.Tensor, hw: HW) -> torch.Tensor:
    """[B, H*W, C] -> [B, C, H, W]."""
    return x.transpose(1, 2).reshape(x.shape[0], -1, hw[0], hw[1])


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H*W, C]."""
    return x.flatten(2).transpose(1, 2)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """[B, N, C] -> [B, heads, N, C / heads]."""
    B, N, C = x.shape
    return x.reshape(B, N, num_heads, C // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, N, d] -> [B, N, heads * d]."""
    B, heads, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, heads * d)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
              dropout_p: float = 0.) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` over [B, heads, N, d] tensors.

    Fused SDPA in PyTorch; plain matmul + softmax while exporting to ONNX, which exports
    at any opset (SDPA needs opset >= 14). Export runs in eval mode, so without dropout.
    """
    if torch.onnx.is_in_onnx_export():
        return ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1) @ v
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate ``q`` and ``kv`` projections (the NVlabs /
    TAO parameter names). Subclasses may shorten the key/value sequence in
    :meth:`reduce`.

    Args:
        dim (int): Token channels.
        num_heads (int): Attention heads.
        qkv_bias (bool): Bias in the q and kv projections. Default: True.
        attn_drop (float): Dropout on attention weights. Default: 0.
        proj_drop (float): Dropout after the output projection. Default: 0.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def reduce(self, x: torch.Tensor, hw: Optional[HW]) -> torch.Tensor:
        """The sequence keys and values are computed from: ``x`` itself here."""
        return x

    def forward(self, x: torch.Tensor, hw: Optional[HW] = None) -> torch.Tensor:
        B, N, C = x.shape
        q = split_heads(self.q(x), self.num_heads)
        kv = self.kv(self.reduce(x, hw)).reshape(B, -1, 2, self.num_heads, C // self.num_heads)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        x = attention(q, k, v, self.scale, self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(merge_heads(x)))


def forward_block(block: nn.Module, x: torch.Tensor, hw: HW, with_cp: bool) -> torch.Tensor:
    """``block(x, hw)``; with ``with_cp`` and a gradient to compute, under activation
    checkpointing (the block's activations are recomputed in backward, not stored)."""
    if with_cp and x.requires_grad:
        return cp.checkpoint(block, x, hw, use_reentrant=False)
    return block(x, hw)


def init_module_weights(m: nn.Module, conv: bool = True) -> None:
    """SegFormer / FAN initialisation of one module: truncated normal (std 0.02) for
    ``Linear``, ones and zeros for ``LayerNorm``, and, with ``conv``, He normal over the
    fan-out for ``Conv2d``. Biases start at zero."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=.02)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
    elif isinstance(m, nn.Conv2d) and conv:
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
    else:
        return
    if m.bias is not None:
        nn.init.zeros_(m.bias)


class TAOBackbone(BaseModule):
    """Base of the TAO backbones: an architecture from ``arch_zoo`` (mmpretrain style) and
    weights from ``init_cfg``.

    Subclasses set ``arch_zoo`` (arch name -> settings, every entry with the same keys)
    and implement :meth:`init_random_weights`.

    Args:
        arch (str | dict): A name in ``arch_zoo``, or a dict with exactly the keys of its
            entries.
        pretrained (str, optional): Deprecated alias of
            ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=path)`` loads
            backbone weights in any layout :func:`load_pretrained` recognises (backbone
            or whole-model checkpoints) and logs what it loaded; other initialisers run as
            in mmengine; None initialises randomly.
    """

    arch_zoo: ClassVar[Dict[str, Dict[str, Any]]] = {}

    def __init__(self, arch: Arch, pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('pass either pretrained or init_cfg, not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self.resolve_arch(arch)

    @classmethod
    def resolve_arch(cls, arch: Arch) -> Dict[str, Any]:
        """The settings of ``arch`` (a name in ``arch_zoo`` or a dict of its keys).

        Raises:
            ValueError: Unknown name, or a dict with missing or extra keys.
            TypeError: ``arch`` is neither a string nor a dict.
        """
        keys = list(next(iter(cls.arch_zoo.values())))
        if isinstance(arch, str):
            if arch not in cls.arch_zoo:
                raise ValueError(f'{cls.__name__}: unknown arch {arch!r}; choose one of '
                                 f'{", ".join(cls.arch_zoo)} or pass a dict with keys '
                                 f'{", ".join(keys)}')
            return dict(cls.arch_zoo[arch])
        if not isinstance(arch, Mapping):
            raise TypeError(f'{cls.__name__}: arch must be one of {", ".join(cls.arch_zoo)} '
                            f'or a dict with keys {", ".join(keys)}, got {arch!r}')
        missing = [k for k in keys if k not in arch]
        extra = [k for k in arch if k not in keys]
        if missing or extra:
            raise ValueError(f'{cls.__name__}: an arch dict needs exactly the keys '
                             f'{", ".join(keys)}; missing: {missing}, not arch keys: {extra}')
        return dict(arch)

    def init_weights(self) -> None:
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained(self, self.init_cfg['checkpoint'])
        elif self.init_cfg is not None:
            super().init_weights()
        else:
            self.init_random_weights()

    def init_random_weights(self) -> None:
        """Initialise for training from scratch (``init_cfg=None``)."""
        raise NotImplementedError


BackboneT = TypeVar('BackboneT', bound=TAOBackbone)


def build_variant(cls: Type[BackboneT], arch: str, kwargs: Dict[str, Any],
                  name: str) -> BackboneT:
    """``cls(arch=arch, **kwargs)`` for the registered variant ``name``, refusing keyword
    arguments that the name fixes (``arch`` and its settings).

    Raises:
        TypeError: ``kwargs`` sets ``arch`` or one of its settings.
    """
    fixed = [k for k in ('arch', *cls.arch_zoo[arch]) if k in kwargs]
    if fixed:
        raise TypeError(f'{name} fixes {", ".join(fixed)}; build {cls.__name__} with '
                        f'arch=dict(...) to choose them')
    return cls(arch=arch, **kwargs)
