"""``tao``: the package's own layout, TAO 5.x and NVlabs names.

MiT backbones ``patch_embed1.proj``, ``block1.0.attn.q`` / ``attn.kv`` ...; FAN hybrids
``patch_embed.backbone.stem`` ...; whole models ``backbone.*`` + ``decode_head.linear_c{i}.proj``
/ ``linear_fuse.conv`` / ``linear_fuse.bn`` / ``linear_pred``. Whole models load as they are;
converting (for a backbone, or the converter tool) drops what segmentation does not use.
"""
import re
from typing import Mapping

from .layout import (
    ConversionResult,
    Layout,
    Tensor,
    drop_unused_classifier,
    keys_matching,
)

_IMAGENET_HEAD = re.compile(r'(backbone\.)?head\.(weight|bias)')
_FAN_FINAL_NORM = re.compile(r'(backbone\.)?norm\.(weight|bias)')
# NVlabs FAN classification checkpoints fuse q, k, v of the class attention.
_FUSED_CLS_QKV = re.compile(r'(.*cls_attn_blocks\.\d+\.attn)\.qkv\.(weight|bias)')


def convert_nvlabs(sd: Mapping[str, Tensor], result: ConversionResult) -> None:
    """Keep the tensors; leave out ImageNet heads, FAN's final classification norm and TAO's
    unused ``conv_seg``; split FAN's fused class-attention ``qkv``."""
    is_fan = any('patch_embed.backbone.' in k for k in sd)
    out, ignored = result.state_dict, result.ignored
    for key, value in sd.items():
        fused = _FUSED_CLS_QKV.fullmatch(key)
        if _IMAGENET_HEAD.fullmatch(key):
            ignored[key] = 'ImageNet classifier head'
        elif is_fan and _FAN_FINAL_NORM.fullmatch(key):
            ignored[key] = 'FAN classification final norm (not used for segmentation)'
        elif fused:
            base, param = fused.groups()
            for name, part in zip('qkv', value.chunk(3, dim=0)):
                out[f'{base}.{name}.{param}'] = part
        else:
            out[key] = value
    ignored.update(drop_unused_classifier(out))


NVLABS = Layout(
    name='tao',
    summary='TAO 5.x / NVlabs SegFormer (whole model or backbone, mit_bX.pth ImageNet '
            'files included), TAO / NVlabs FAN',
    recognise=keys_matching(r'(^|\.)block1\.0\.attn\.(q|kv)\.',
                            r'(^|\.)patch_embed\.backbone\.stem\.'),
    convert=convert_nvlabs,
    native=True)
