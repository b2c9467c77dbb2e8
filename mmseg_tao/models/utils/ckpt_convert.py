"""Recognise SegFormer / FAN checkpoint layouts and convert them to this package's.

The package's own layout is TAO's (NVlabs names): backbone keys ``patch_embed1.proj``,
``block1.0.attn.q`` / ``attn.kv`` ... (MiT) or ``patch_embed.backbone.stem`` ... (FAN),
whole models ``backbone.*`` + ``decode_head.linear_c{i}.proj`` / ``linear_fuse.conv`` /
``linear_fuse.bn`` / ``linear_pred``. Recognised inputs:

========================  ==============================================================
``tao``                   TAO 5.x / NVlabs SegFormer, whole model or backbone only
                          (``mit_bX.pth`` ImageNet files included), TAO / NVlabs FAN
``mmseg-mit``             mmsegmentation 1.x ``MixVisionTransformer``
                          (``layers.i.0.projection``, packed ``attn.attn.in_proj``)
``hf-segformer``          Hugging Face transformers Segformer, as published on the hub
                          and saved by transformers (``segformer.encoder.block.i.j``)
``hf-segformer-v5``       transformers >= 5.9 module names (``segformer.stages.i.blocks.j``,
                          ``q_proj`` / ``k_proj`` / ``v_proj``)
========================  ==============================================================

Every rule is a row of a table (regex -> template, optional tensor transform), so a layout
reads as data; keys no rule matches are returned, never dropped silently.
"""
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch

Tensor = torch.Tensor


class ConversionResult(NamedTuple):
    """What :func:`convert_state_dict` produced.

    Attributes:
        state_dict: Converted tensors, in the package's layout.
        layout: Name of the recognised source layout.
        ignored: Source keys deliberately left out (classifier heads of ImageNet files,
            TAO's unused ``conv_seg``), each with the reason.
        unmatched: Source keys no rule of the layout knew (to be reported).
    """
    state_dict: 'OrderedDict[str, Tensor]'
    layout: str
    ignored: Dict[str, str]
    unmatched: List[str]


def _stage(i: str) -> str:
    return str(int(i) + 1)


def _unsqueeze_1x1(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], t.shape[1]) if t.dim() == 4 else t


# Rows: (source regex, target template, stage groups to shift 0->1 based).
# Templates use {name} for regex groups.
_MMSEG_MIT = [
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

_HF_ENCODER = [
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

_HF_HEAD = [
    (r'decode_head\.linear_c\.(?P<s>\d+)\.proj\.(?P<p>\w+)',
     'decode_head.linear_c{s}.proj.{p}'),
    (r'decode_head\.linear_fuse\.weight', 'decode_head.linear_fuse.conv.weight'),
    (r'decode_head\.batch_norm\.(?P<p>\w+)', 'decode_head.linear_fuse.bn.{p}'),
    (r'decode_head\.classifier\.(?P<p>\w+)', 'decode_head.linear_pred.{p}'),
]

# transformers >= 5.9 module names -> the on-disk (4.x) names handled above.
_HF_V5_TO_V4 = [
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


def _apply_rules(key: str, rules) -> Optional[str]:
    for pattern, template in rules:
        m = re.fullmatch(pattern, key)
        if m:
            groups = {k: (_stage(v) if k == 's' else v) for k, v in m.groupdict().items()}
            return template.format(**groups)
    return None


def unwrap_checkpoint(ckpt: Mapping) -> 'OrderedDict[str, Tensor]':
    """The tensor dict inside a checkpoint (``state_dict`` / ``model`` / flat), with
    DataParallel's ``module.`` prefix removed."""
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt.get(key), Mapping):
            ckpt = ckpt[key]
            break
    if not all(isinstance(v, Tensor) for v in ckpt.values()):
        bad = next(k for k, v in ckpt.items() if not isinstance(v, Tensor))
        raise ValueError(f'not a state dict: entry {bad!r} is a '
                         f'{type(ckpt[bad]).__name__}, expected tensors')
    return OrderedDict((k[7:] if k.startswith('module.') else k, v)
                       for k, v in ckpt.items())


def detect_layout(state_dict: Mapping[str, Tensor]) -> str:
    """Name of the layout of ``state_dict`` (see the module docstring).

    Raises:
        ValueError: No known SegFormer / FAN layout matches.
    """
    keys = list(state_dict)

    def has(pattern):
        return any(re.search(pattern, k) for k in keys)

    if has(r'(^|\.)encoder\.block\.\d+\.\d+\.attention\.self\.'):
        return 'hf-segformer'
    if has(r'(^|\.)stages\.\d+\.blocks\.\d+\.attention\.q_proj\.'):
        return 'hf-segformer-v5'
    if has(r'(^|\.)layers\.\d+\.1\.\d+\.attn\.attn\.in_proj_weight'):
        return 'mmseg-mit'
    if has(r'(^|\.)block1\.0\.attn\.(q|kv)\.') or has(r'(^|\.)patch_embed\.backbone\.stem\.'):
        return 'tao'
    sample = ', '.join(keys[:5])
    raise ValueError('unrecognised checkpoint layout: expected a SegFormer MiT (TAO / '
                     'NVlabs, mmseg or Hugging Face names) or a FAN hybrid state dict; '
                     f'first keys: {sample}')


def _split_prefix(key: str, markers: Tuple[str, ...]) -> Tuple[str, str]:
    """Split ``key`` into (whatever precedes the first marker, rest)."""
    for marker in markers:
        idx = key.find(marker)
        if idx == 0 or (idx > 0 and key[idx - 1] == '.'):
            return key[:idx], key[idx:]
    return '', key


def _convert_mmseg(sd, out, ignored, unmatched):
    for key, value in sd.items():
        prefix, rest = _split_prefix(key, ('layers.', ))
        m = re.fullmatch(r'layers\.(\d+)\.1\.(\d+)\.attn\.attn\.in_proj_(weight|bias)', rest)
        if m:  # packed [q; k; v] -> q and kv
            s, b, p = _stage(m.group(1)), m.group(2), m.group(3)
            dim = value.shape[0] // 3
            out[f'{prefix}block{s}.{b}.attn.q.{p}'] = value[:dim]
            out[f'{prefix}block{s}.{b}.attn.kv.{p}'] = value[dim:]
            continue
        new = _apply_rules(rest, _MMSEG_MIT)
        if new is None:
            unmatched.append(key)
        else:
            out[prefix + new] = _unsqueeze_1x1(value) if '.mlp.fc' in new else value


def _convert_hf(sd, out, ignored, unmatched):
    kv: Dict[str, Dict[str, Tensor]] = {}
    for key, value in sd.items():
        if re.fullmatch(r'classifier\.(weight|bias)', key):
            ignored[key] = 'ImageNet classifier of SegformerForImageClassification'
            continue
        if key.startswith('decode_head.'):
            new = _apply_rules(key, _HF_HEAD)
            if new is None:
                unmatched.append(key)
            else:
                out[new] = value
            continue
        rest = key[len('segformer.'):] if key.startswith('segformer.') else key
        prefix = 'backbone.' if key.startswith('segformer.') else ''
        m = re.fullmatch(
            r'encoder\.block\.(\d+)\.(\d+)\.attention\.self\.(key|value)\.(weight|bias)', rest)
        if m:  # key and value -> kv = [k; v]
            target = f'{prefix}block{_stage(m.group(1))}.{m.group(2)}.attn.kv.{m.group(4)}'
            kv.setdefault(target, {})[m.group(3)] = value
            continue
        new = _apply_rules(rest, _HF_ENCODER)
        if new is None:
            unmatched.append(key)
        else:
            out[prefix + new] = value
    for target, parts in kv.items():
        if set(parts) != {'key', 'value'}:
            unmatched.append(f'{target} (only {sorted(parts)} present)')
            continue
        out[target] = torch.cat([parts['key'], parts['value']], dim=0)


def _convert_tao(sd, out, ignored, unmatched):
    for key, value in sd.items():
        if re.fullmatch(r'(backbone\.)?head\.(weight|bias)', key):
            ignored[key] = 'ImageNet classifier head'
        elif key.startswith('decode_head.conv_seg.'):
            ignored[key] = "TAO's unused conv_seg (the classifier is linear_pred)"
        elif re.fullmatch(r'(backbone\.)?norm\.(weight|bias)', key) and \
                any('patch_embed.backbone.' in k for k in sd):
            ignored[key] = 'FAN classification final norm (not used for segmentation)'
        elif re.fullmatch(r'(.*cls_attn_blocks\.\d+\.attn)\.qkv\.(weight|bias)', key):
            # NVlabs FAN classification checkpoints fuse q, k, v of class attention.
            base, p = re.fullmatch(r'(.*)\.qkv\.(weight|bias)', key).groups()
            for name, part in zip('qkv', value.chunk(3, dim=0)):
                out[f'{base}.{name}.{p}'] = part
        else:
            out[key] = value


LAYOUTS = ('tao', 'mmseg-mit', 'hf-segformer', 'hf-segformer-v5')

_CONVERTERS: Dict[str, Callable] = {
    'tao': _convert_tao,
    'mmseg-mit': _convert_mmseg,
    'hf-segformer': _convert_hf,
}


def convert_state_dict(state_dict: Mapping[str, Tensor],
                       layout: Optional[str] = None) -> ConversionResult:
    """Convert a SegFormer / FAN state dict to this package's layout.

    Args:
        state_dict: Tensors keyed by the source layout's names.
        layout: Force a layout instead of detecting it.

    Returns:
        ConversionResult: converted tensors, the layout, ignored and unmatched keys.
    """
    layout = layout or detect_layout(state_dict)
    if layout not in LAYOUTS:
        raise ValueError(f'unknown layout {layout!r}; expected one of {LAYOUTS}')
    if layout == 'hf-segformer-v5':
        renamed = OrderedDict()
        for key, value in state_dict.items():
            for pattern, repl in _HF_V5_TO_V4:
                key = re.sub(pattern, repl, key)
            renamed[key] = value
        state_dict = renamed
    converter = _CONVERTERS['hf-segformer' if layout == 'hf-segformer-v5' else layout]
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    ignored: Dict[str, str] = {}
    unmatched: List[str] = []
    converter(state_dict, out, ignored, unmatched)
    return ConversionResult(out, layout, ignored, unmatched)


def to_model_layout(state_dict: Mapping[str, Tensor]
                    ) -> Tuple[str, 'OrderedDict[str, Tensor]', int]:
    """A whole-model state dict in this package's layout, as loading converts it.

    Returns:
        (layout, tensors, number converted): keys a foreign layout cannot convert keep
        their names, so that loading or checking reports them.

    Raises:
        ValueError: No known layout matches.
    """
    layout = detect_layout(state_dict)
    if layout == 'tao':
        return layout, OrderedDict(state_dict), 0
    result = convert_state_dict(state_dict, layout)
    out = OrderedDict(result.state_dict)
    out.update((k, state_dict[k]) for k in result.unmatched if k in state_dict)
    return layout, out, len(result.state_dict)
