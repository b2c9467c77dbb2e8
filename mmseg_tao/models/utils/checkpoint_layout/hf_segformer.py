"""``hf-segformer`` and ``hf-segformer-v5``: Hugging Face transformers Segformer.

``hf-segformer`` is the layout published on the hub and saved by transformers
(``segformer.encoder.block.i.j``, separate ``query`` / ``key`` / ``value``, decode head
``linear_c`` / ``linear_fuse`` / ``batch_norm`` / ``classifier``); ``hf-segformer-v5`` the
module names of transformers >= 5.9 (``segformer.stages.i.blocks.j``, ``q_proj`` /
``k_proj`` / ``v_proj``), renamed to the former and converted alike.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping

import torch

from .layout import ConversionResult, Layout, Tensor, keys_matching, rename, stage

# (source regex, target template); group ``s`` is a 0-based stage.
_ENCODER_RULES = [
    (r'encoder\.patch_embeddings\.(?P<s>\d+)\.proj\.(?P<p>\w+)', 'patch_embed{s}.proj.{p}'),
    (r'encoder\.patch_embeddings\.(?P<s>\d+)\.layer_norm\.(?P<p>\w+)',
     'patch_embed{s}.norm.{p}'),
    (r'encoder\.block\.(?P<s>\d+)\.(?P<b>\d+)\.layer_norm_(?P<n>[12])\.(?P<p>\w+)',
     'block{s}.{b}.norm{n}.{p}'),
    (r'encoder\.block\.(?P<s>\d+)\.(?P<b>\d+)\.attention\.self\.query\.(?P<p>\w+)',
     'block{s}.{b}.attn.q.{p}'),
    (r'encoder\.block\.(?P<s>\d+)\.(?P<b>\d+)\.attention\.self\.sr\.(?P<p>\w+)',
     'block{s}.{b}.attn.sr.{p}'),
    (r'encoder\.block\.(?P<s>\d+)\.(?P<b>\d+)\.attention\.self\.layer_norm\.(?P<p>\w+)',
     'block{s}.{b}.attn.norm.{p}'),
    (r'encoder\.block\.(?P<s>\d+)\.(?P<b>\d+)\.attention\.output\.dense\.(?P<p>\w+)',
     'block{s}.{b}.attn.proj.{p}'),
    (r'encoder\.block\.(?P<s>\d+)\.(?P<b>\d+)\.mlp\.dense1\.(?P<p>\w+)',
     'block{s}.{b}.mlp.fc1.{p}'),
    (r'encoder\.block\.(?P<s>\d+)\.(?P<b>\d+)\.mlp\.dwconv\.dwconv\.(?P<p>\w+)',
     'block{s}.{b}.mlp.dwconv.dwconv.{p}'),
    (r'encoder\.block\.(?P<s>\d+)\.(?P<b>\d+)\.mlp\.dense2\.(?P<p>\w+)',
     'block{s}.{b}.mlp.fc2.{p}'),
    (r'encoder\.layer_norm\.(?P<s>\d+)\.(?P<p>\w+)', 'norm{s}.{p}'),
]

_HEAD_RULES = [
    (r'decode_head\.linear_c\.(?P<s>\d+)\.proj\.(?P<p>\w+)',
     'decode_head.linear_c{s}.proj.{p}'),
    (r'decode_head\.linear_fuse\.weight', 'decode_head.linear_fuse.conv.weight'),
    (r'decode_head\.batch_norm\.(?P<p>\w+)', 'decode_head.linear_fuse.bn.{p}'),
    (r'decode_head\.classifier\.(?P<p>\w+)', 'decode_head.linear_pred.{p}'),
]

# transformers >= 5.9 module names -> the on-disk (4.x) names handled above.
_V5_TO_V4 = [
    (r'stages\.(\d+)\.patch_embeddings\.', r'encoder.patch_embeddings.\1.'),
    (r'stages\.(\d+)\.blocks\.', r'encoder.block.\1.'),
    (r'stages\.(\d+)\.layer_norm\.', r'encoder.layer_norm.\1.'),
    (r'attention\.q_proj\.', 'attention.self.query.'),
    (r'attention\.k_proj\.', 'attention.self.key.'),
    (r'attention\.v_proj\.', 'attention.self.value.'),
    (r'attention\.sequence_reduction\.sequence_reduction\.', 'attention.self.sr.'),
    (r'attention\.sequence_reduction\.layer_norm\.', 'attention.self.layer_norm.'),
    (r'attention\.o_proj\.', 'attention.output.dense.'),
    (r'mlp\.fc1\.', 'mlp.dense1.'),
    (r'mlp\.fc2\.', 'mlp.dense2.'),
    (r'layernorm_before\.', 'layer_norm_1.'),
    (r'layernorm_after\.', 'layer_norm_2.'),
    (r'decode_head\.linear_projections\.', 'decode_head.linear_c.'),
]

_SEPARATE_KV = re.compile(
    r'encoder\.block\.(\d+)\.(\d+)\.attention\.self\.(key|value)\.(weight|bias)')


def convert_hf_segformer(sd: Mapping[str, Tensor], result: ConversionResult) -> None:
    """Rename by the rules (``segformer.`` becomes ``backbone.``); concatenate ``key`` and
    ``value`` into ``kv``; leave out the ImageNet classifier."""
    out, unmatched = result.state_dict, result.unmatched
    kv: Dict[str, Dict[str, Tensor]] = {}
    for key, value in sd.items():
        if re.fullmatch(r'classifier\.(weight|bias)', key):
            result.ignored[key] = 'ImageNet classifier of SegformerForImageClassification'
            continue
        if key.startswith('decode_head.'):
            new = rename(key, _HEAD_RULES)
            if new is None:
                unmatched.append(key)
            else:
                out[new] = value
            continue
        rest = key[len('segformer.'):] if key.startswith('segformer.') else key
        prefix = 'backbone.' if key.startswith('segformer.') else ''
        separate = _SEPARATE_KV.fullmatch(rest)
        if separate:
            s, b, part, p = separate.groups()
            kv.setdefault(f'{prefix}block{stage(s)}.{b}.attn.kv.{p}', {})[part] = value
            continue
        new = rename(rest, _ENCODER_RULES)
        if new is None:
            unmatched.append(key)
        else:
            out[prefix + new] = value
    for target, parts in kv.items():
        if set(parts) != {'key', 'value'}:
            unmatched.append(f'{target} (only {sorted(parts)} present)')
            continue
        out[target] = torch.cat([parts['key'], parts['value']], dim=0)


def convert_hf_segformer_v5(sd: Mapping[str, Tensor], result: ConversionResult) -> None:
    """transformers >= 5.9 names -> the 4.x names, then :func:`convert_hf_segformer`."""
    renamed: 'OrderedDict[str, Tensor]' = OrderedDict()
    for key, value in sd.items():
        for pattern, repl in _V5_TO_V4:
            key = re.sub(pattern, repl, key)
        renamed[key] = value
    convert_hf_segformer(renamed, result)


HF_SEGFORMER = Layout(
    name='hf-segformer',
    summary='Hugging Face transformers Segformer, as on the hub (segformer.encoder.block.i.j)',
    recognise=keys_matching(r'(^|\.)encoder\.block\.\d+\.\d+\.attention\.self\.'),
    convert=convert_hf_segformer)

HF_SEGFORMER_V5 = Layout(
    name='hf-segformer-v5',
    summary='transformers >= 5.9 module names (segformer.stages.i.blocks.j, q_proj / k_proj '
            '/ v_proj)',
    recognise=keys_matching(r'(^|\.)stages\.\d+\.blocks\.\d+\.attention\.q_proj\.'),
    convert=convert_hf_segformer_v5)
