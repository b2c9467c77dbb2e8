"""``mmseg-mit``: mmsegmentation 1.x ``MixVisionTransformer`` names.

``layers.i.0.projection`` (patch embedding), ``layers.i.1.j`` (blocks, with q, k, v packed
in ``attn.attn.in_proj``), ``layers.i.2`` (stage norm), and 1x1 convolutions where NVlabs
has linear layers (``ffn.layers.0`` / ``.4``). Keys outside the backbone (mmseg's
SegformerHead) have no rule and are reported as unmatched.
"""
import re
from typing import Mapping

from .layout import ConversionResult, Layout, Tensor, keys_matching, rename, split_prefix, stage

# (source regex, target template); group ``s`` is a 0-based stage.
_RULES = [
    (r'layers\.(?P<s>\d+)\.0\.projection\.(?P<p>\w+)', 'patch_embed{s}.proj.{p}'),
    (r'layers\.(?P<s>\d+)\.0\.norm\.(?P<p>\w+)', 'patch_embed{s}.norm.{p}'),
    (r'layers\.(?P<s>\d+)\.1\.(?P<b>\d+)\.norm(?P<n>[12])\.(?P<p>\w+)',
     'block{s}.{b}.norm{n}.{p}'),
    (r'layers\.(?P<s>\d+)\.1\.(?P<b>\d+)\.attn\.attn\.out_proj\.(?P<p>\w+)',
     'block{s}.{b}.attn.proj.{p}'),
    (r'layers\.(?P<s>\d+)\.1\.(?P<b>\d+)\.attn\.(?P<m>sr|norm)\.(?P<p>\w+)',
     'block{s}.{b}.attn.{m}.{p}'),
    (r'layers\.(?P<s>\d+)\.1\.(?P<b>\d+)\.ffn\.layers\.0\.(?P<p>\w+)',
     'block{s}.{b}.mlp.fc1.{p}'),
    (r'layers\.(?P<s>\d+)\.1\.(?P<b>\d+)\.ffn\.layers\.1\.(?P<p>\w+)',
     'block{s}.{b}.mlp.dwconv.dwconv.{p}'),
    (r'layers\.(?P<s>\d+)\.1\.(?P<b>\d+)\.ffn\.layers\.4\.(?P<p>\w+)',
     'block{s}.{b}.mlp.fc2.{p}'),
    (r'layers\.(?P<s>\d+)\.2\.(?P<p>\w+)', 'norm{s}.{p}'),
]
_PACKED_QKV = re.compile(r'layers\.(\d+)\.1\.(\d+)\.attn\.attn\.in_proj_(weight|bias)')


def _conv1x1_to_linear(t: Tensor) -> Tensor:
    """A 1x1 convolution weight [out, in, 1, 1] as a linear weight [out, in]."""
    return t.reshape(t.shape[0], t.shape[1]) if t.dim() == 4 else t


def convert_mmseg_mit(sd: Mapping[str, Tensor], result: ConversionResult) -> None:
    """Rename by the rules; split packed [q; k; v] into ``q`` and ``kv``; 1x1 convolutions
    of the MLP become linear weights. Any prefix before ``layers.`` is kept."""
    out = result.state_dict
    for key, value in sd.items():
        prefix, rest = split_prefix(key, ('layers.', ))
        packed = _PACKED_QKV.fullmatch(rest)
        if packed:
            s, b, p = stage(packed.group(1)), packed.group(2), packed.group(3)
            dim = value.shape[0] // 3
            out[f'{prefix}block{s}.{b}.attn.q.{p}'] = value[:dim]
            out[f'{prefix}block{s}.{b}.attn.kv.{p}'] = value[dim:]
            continue
        new = rename(rest, _RULES)
        if new is None:
            result.unmatched.append(key)
        else:
            out[prefix + new] = _conv1x1_to_linear(value) if '.mlp.fc' in new else value


MMSEG_MIT = Layout(
    name='mmseg-mit',
    summary='mmsegmentation 1.x MixVisionTransformer (layers.i.0.projection, packed '
            'attn.attn.in_proj)',
    recognise=keys_matching(r'(^|\.)layers\.\d+\.1\.\d+\.attn\.attn\.in_proj_weight'),
    convert=convert_mmseg_mit)
