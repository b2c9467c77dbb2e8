"""Record facts from TAO 5.x's own SegFormer modules as test data.

This script is ours; TAO's code never enters the repository. It imports TAO's model
modules from a checkout given on the command line (``--tao-src``: a directory holding
the ``nvidia_tao_pytorch`` package of NVIDIA/tao_pytorch_backend, see README.md here),
builds each backbone with TAO's SegFormer head exactly as TAO's training builds it, and
writes:

- ``tao5_keys.json``: for all 10 backbones, every whole-model checkpoint key (``backbone.*``,
  ``decode_head.*``) with its shape, and the head settings used;
- ``tao5_outputs.pt``: for the small configuration of each family (mit_b0, the tiny FAN
  hybrid), the backbone features and the head's logits for :func:`oracle_input` under the
  weights :func:`oracle_weights` makes from the recorded keys.

The tests import :func:`oracle_weights` and :func:`oracle_input` from this file so the
weights are made by one rule on both sides; nothing else here runs at test time.

Run (outside the repository's environment only the TAO source is extra)::

    python tests/data/tao_oracle/record_tao_facts.py --tao-src /path/to/tao_src \\
        --out tests/data/tao_oracle
"""
import argparse
import json
import math
import sys
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import torch

MIT = [f'mit_b{i}' for i in range(6)]
FAN = ['fan_tiny_8_p4_hybrid', 'fan_small_12_p4_hybrid', 'fan_base_16_p4_hybrid',
       'fan_large_16_p4_hybrid']
# TAO 5.x's model builder: decode-head in_channels by backbone, decoder width (embed_dim)
# 256 for mit_b0/b1 and 768 otherwise, conv_seg width (channels) 128 for MiT, 256 for FAN.
IN_CHANNELS = {
    'mit_b0': [32, 64, 160, 256],
    **{f'mit_b{i}': [64, 128, 320, 512] for i in range(1, 6)},
    'fan_tiny_8_p4_hybrid': [128, 256, 192, 192],
    'fan_small_12_p4_hybrid': [128, 256, 384, 384],
    'fan_base_16_p4_hybrid': [128, 256, 448, 448],
    'fan_large_16_p4_hybrid': [128, 256, 480, 480],
}
NUM_CLASSES = 3
SMALL = ('mit_b0', 'fan_tiny_8_p4_hybrid')
INPUT_SHAPE = (1, 3, 64, 96)


def head_settings(backbone: str) -> dict:
    """TAO's decode-head arguments for ``backbone`` (num_classes fixed for the record)."""
    fan = backbone.startswith('fan')
    embed_dim = 256 if backbone in ('mit_b0', 'mit_b1') else 768
    return dict(in_channels=IN_CHANNELS[backbone], channels=256 if fan else 128,
                embed_dim=embed_dim, num_classes=NUM_CLASSES)


def oracle_weights(keys_shapes: Iterable[Tuple[str, List[int]]]) -> 'OrderedDict':
    """Deterministic weights for a key list: each tensor seeded by its key's CRC32.

    Matrices and kernels are scaled by 1/sqrt(fan-in) so that activations stay of order
    one through the network; 1-D scales (norm weights, layer-scale gammas) are near 1,
    other 1-D tensors (biases) near 0; BatchNorm statistics are plausible.
    """
    out = OrderedDict()
    for key, shape in keys_shapes:
        if key.endswith('num_batches_tracked'):
            out[key] = torch.zeros((), dtype=torch.long)
            continue
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        t = torch.randn(*shape, generator=g, dtype=torch.float32)
        leaf = key.rsplit('.', 1)[-1]
        if leaf == 'running_var':
            t = 0.5 + 0.5 * t.abs()
        elif leaf == 'running_mean':
            t = 0.1 * t
        elif t.dim() <= 1:
            t = 1 + 0.1 * t if leaf.startswith(('weight', 'gamma')) else 0.1 * t
        else:
            t = t / math.sqrt(math.prod(shape[1:]))
        out[key] = t
    return out


def oracle_input() -> torch.Tensor:
    """The recorded input batch (normalised-image scale)."""
    g = torch.Generator().manual_seed(20241127)
    return torch.randn(*INPUT_SHAPE, generator=g)


def _build_tao(name: str):
    from mmseg.registry import MODELS
    s = head_settings(name)
    backbone = MODELS.build(dict(type=name))
    head = MODELS.build(dict(
        type='TAOSegFormerHead', in_channels=s['in_channels'], in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32], channels=s['channels'], dropout_ratio=0.1,
        num_classes=s['num_classes'], norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False, decoder_params=dict(embed_dim=s['embed_dim']),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
    return backbone, head


def _whole_state_dict(backbone, head) -> 'OrderedDict':
    sd = OrderedDict((f'backbone.{k}', v) for k, v in backbone.state_dict().items())
    sd.update((f'decode_head.{k}', v) for k, v in head.state_dict().items())
    return sd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tao-src', required=True, type=Path)
    parser.add_argument('--commit', required=True, help='commit of the TAO source')
    parser.add_argument('--out', required=True, type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(args.tao_src))
    import nvidia_tao_pytorch.cv.segformer.model  # noqa: F401  (registers TAO's modules)

    torch.manual_seed(0)
    keys: Dict[str, dict] = {}
    outputs = {}
    for name in MIT + FAN:
        backbone, head = _build_tao(name)
        sd = _whole_state_dict(backbone, head)
        keys[name] = dict(
            head=head_settings(name),
            backbone_params=sum(p.numel() for p in backbone.parameters()),
            keys=[(k, list(v.shape)) for k, v in sd.items()])
        if name in SMALL:
            weights = oracle_weights(keys[name]['keys'])
            backbone.load_state_dict(
                {k[len('backbone.'):]: v for k, v in weights.items()
                 if k.startswith('backbone.')}, strict=True)
            head.load_state_dict(
                {k[len('decode_head.'):]: v for k, v in weights.items()
                 if k.startswith('decode_head.')}, strict=True)
            backbone.eval()
            head.eval()
            with torch.no_grad():
                feats = backbone(oracle_input())
                logits = head(feats)
            outputs[name] = dict(
                **{f'feat{i}': f.contiguous() for i, f in enumerate(feats)}, logits=logits)
        print(f'{name}: {len(sd)} keys, {keys[name]["backbone_params"]} backbone parameters')
        del backbone, head, sd

    import mmseg
    import timm
    meta = dict(source='NVIDIA/tao_pytorch_backend', commit=args.commit,
                modules=['nvidia_tao_pytorch/cv/segformer/model/backbones/mix_transformer.py',
                         'nvidia_tao_pytorch/cv/segformer/model/backbones/fan.py',
                         'nvidia_tao_pytorch/cv/segformer/model/backbones/convnext_utils.py',
                         'nvidia_tao_pytorch/cv/backbone/{fan,convnext_utils}.py',
                         'nvidia_tao_pytorch/cv/segformer/model/decode_heads/segformer_head.py'],
                torch=str(torch.__version__), timm=str(timm.__version__),
                mmseg=str(mmseg.__version__),
                input_shape=list(INPUT_SHAPE), num_classes=NUM_CLASSES)
    write_record(args.out, 'tao5', meta, keys, outputs)


def write_record(out: Path, prefix: str, meta: dict, records: Dict[str, dict],
                 outputs: dict) -> None:
    """``<prefix>_keys.json`` (every model's keys and shapes, one line per key: readable
    and diffable, without indenting every shape) and ``<prefix>_outputs.pt`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ['{"meta": ' + json.dumps(meta) + ',', ' "models": {']
    for i, (name, record) in enumerate(records.items()):
        head = {k: v for k, v in record.items() if k != 'keys'}
        rows = ',\n'.join(f'   {json.dumps(k)}: {json.dumps(s)}' for k, s in record['keys'])
        lines.append(f'  {json.dumps(name)}: {{' + json.dumps(head)[1:-1] + ', "keys": {\n'
                     + rows + '}}' + (',' if i < len(records) - 1 else ''))
    lines.append(' }}')
    (out / f'{prefix}_keys.json').write_text('\n'.join(lines) + '\n')
    torch.save(dict(meta=meta, outputs=outputs), out / f'{prefix}_outputs.pt')


if __name__ == '__main__':
    main()
