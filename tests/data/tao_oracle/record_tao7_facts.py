"""Record facts from TAO 7.0.1's own SegFormer model as test data (TAO 6/7 checkpoints).

This script is ours; TAO's code never enters the repository. It imports TAO's model
modules from a checkout given on the command line (``--tao-src``: a directory holding the
``nvidia_tao_pytorch`` package of NVIDIA-TAO/tao-pytorch, see README.md here), builds
TAO's ``SegFormer`` (``cv/segformer/model/segformer.py``) for mit_b0 and
fan_tiny_8_p4_hybrid as its ``build_model`` does, and writes:

- ``tao7_keys.json``: the Lightning ``state_dict`` keys and shapes of each model, as TAO's
  Lightning module (``SegFormerPlModel``, which holds the network as ``self.model``) saves
  them: ``model.backbone.*``, ``model.decoder.*``;
- ``tao7_outputs.pt``: the backbone features and the decoder's logits (1/4 resolution) for
  the oracle input under the oracle weights of those keys (``record_tao_facts.py``: each
  tensor seeded by the CRC32 of its key), so the fuse convolution's bias is not zero.

Only the modules the two models need are imported: the package ``__init__`` files that
pull in every other backbone (open_clip, fvcore, compiled ops) and TAO's logging and
distributed helpers are replaced by small stand-ins here. PyTorch Lightning is not needed:
the Lightning module only prefixes the network's keys with ``model.``.

Run (outside the repository's environment only the TAO source is extra)::

    python tests/data/tao_oracle/record_tao7_facts.py --tao-src /path/to/tao-pytorch \\
        --commit d99ff77 --out tests/data/tao_oracle
"""
import argparse
import importlib.util
import logging
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Dict

import torch

HERE = Path(__file__).parent
BACKBONES = ('mit_b0', 'fan_tiny_8_p4_hybrid')
NUM_CLASSES = 3
EMBED_DIM = 256  # TAO 6/7's default decoder_params.embed_dim
IMG_SIZE = 64  # dataset.segment.img_size given to the backbone (no parameter depends on it)


def _record_module():
    spec = importlib.util.spec_from_file_location('record_tao_facts',
                                                  HERE / 'record_tao_facts.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Registry:
    """Stand-in for fvcore's Registry (``BACKBONE_REGISTRY.register()`` decorators)."""

    def __init__(self):
        self.entries = {}

    def register(self, obj=None):
        def add(fn):
            self.entries[fn.__name__] = fn
            return fn
        return add(obj) if obj is not None else add


def _package(name: str, path: Path, **attrs) -> types.ModuleType:
    """A package module whose ``__init__`` is not run (submodules import from ``path``)."""
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def install_stand_ins(src: Path) -> None:
    """Make TAO's SegFormer importable from ``src`` with only torch and timm installed."""
    root = src / 'nvidia_tao_pytorch'
    _package('nvidia_tao_pytorch', root)
    _package('nvidia_tao_pytorch.cv', root / 'cv')
    _package('nvidia_tao_pytorch.core', root / 'core')
    _package('nvidia_tao_pytorch.core.distributed', root / 'core' / 'distributed')
    _module('nvidia_tao_pytorch.core.distributed.comm', get_global_rank=lambda: 0)
    _module('nvidia_tao_pytorch.core.tlt_logging', logging=logging.getLogger('tao'))
    _package('nvidia_tao_pytorch.core.utils', root / 'core' / 'utils')

    def no_pretrained(*args, **kwargs):
        raise RuntimeError('pretrained weights are not used for the record')

    _module('nvidia_tao_pytorch.core.utils.ptm_utils', load_pretrained_weights=no_pretrained)
    _package('nvidia_tao_pytorch.cv.backbone_v2', root / 'cv' / 'backbone_v2',
             BACKBONE_REGISTRY=_Registry())
    from nvidia_tao_pytorch.cv.backbone_v2 import mit
    seg = root / 'cv' / 'segformer'
    _package('nvidia_tao_pytorch.cv.segformer', seg)
    _package('nvidia_tao_pytorch.cv.segformer.model', seg / 'model')
    backbones = _package('nvidia_tao_pytorch.cv.segformer.model.backbones',
                         seg / 'model' / 'backbones')
    from nvidia_tao_pytorch.cv.segformer.model.backbones import fan
    backbones.mit_model_dict = {f'mit_b{i}': getattr(mit, f'mit_b{i}') for i in range(6)}
    backbones.fan_model_dict = {n: getattr(fan, n) for n in (
        'fan_tiny_8_p4_hybrid', 'fan_small_12_p4_hybrid', 'fan_base_16_p4_hybrid',
        'fan_large_16_p4_hybrid')}
    backbones.vit_adapter_model_dict = {}
    backbones.cradio_vit_adapter_model_dict = {}


# TAO 7.0.1's build_model: decode-head in_channels by backbone (its channels_map).
IN_CHANNELS = {'mit_b0': [32, 64, 160, 256], 'fan_tiny_8_p4_hybrid': [128, 256, 192, 192]}


def build_tao_segformer(name: str) -> torch.nn.Module:
    """TAO's ``SegFormer`` as ``build_model`` makes it (default spec values, 3 classes)."""
    from nvidia_tao_pytorch.cv.segformer.model.segformer import SegFormer
    return SegFormer(input_nc=3, output_nc=NUM_CLASSES, embed_dim=EMBED_DIM, model=name,
                     img_size=IMG_SIZE, in_channels=IN_CHANNELS[name],
                     feature_strides=[4, 8, 16, 32], in_index=[0, 1, 2, 3],
                     feat_downsample=False, pretrained_backbone_path=None,
                     freeze_backbone=False)


def lightning_state_dict(model: torch.nn.Module) -> 'OrderedDict':
    """The network's tensors as TAO's Lightning module saves them (``self.model``)."""
    return OrderedDict((f'model.{k}', v) for k, v in model.state_dict().items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tao-src', required=True, type=Path)
    parser.add_argument('--commit', required=True, help='commit of the TAO source')
    parser.add_argument('--out', required=True, type=Path)
    args = parser.parse_args()
    facts = _record_module()
    sys.path.insert(0, str(args.tao_src))
    install_stand_ins(args.tao_src)

    torch.manual_seed(0)
    records: Dict[str, dict] = {}
    outputs = {}
    for name in BACKBONES:
        model = build_tao_segformer(name)
        sd = lightning_state_dict(model)
        keys = [(k, list(v.shape)) for k, v in sd.items()]
        records[name] = dict(head=dict(in_channels=IN_CHANNELS[name], embed_dim=EMBED_DIM,
                                       num_classes=NUM_CLASSES),
                             backbone_params=sum(p.numel() for p in
                                                 model.backbone.parameters()),
                             keys=keys)
        weights = facts.oracle_weights(keys)
        model.load_state_dict({k[len('model.'):]: v for k, v in weights.items()},
                              strict=True)
        model.eval()
        with torch.no_grad():
            feats = model.backbone.forward_feature_pyramid(facts.oracle_input())
            logits = model.decoder(feats)
        outputs[name] = dict(**{f'feat{i}': f.contiguous() for i, f in enumerate(feats)},
                             logits=logits)
        bias = weights['model.decoder.linear_fuse.0.bias']
        print(f'{name}: {len(keys)} keys, logits {list(logits.shape)}, fuse bias |max| '
              f'{float(bias.abs().max()):.3f}')

    import timm
    meta = dict(source='NVIDIA-TAO/tao-pytorch', release='7.0.1', commit=args.commit,
                modules=['nvidia_tao_pytorch/cv/segformer/model/segformer.py',
                         'nvidia_tao_pytorch/cv/segformer/model/decode_heads/'
                         'segformer_head.py',
                         'nvidia_tao_pytorch/cv/segformer/model/backbones/fan.py',
                         'nvidia_tao_pytorch/cv/backbone_v2/{mit,fan,convnext_utils,swin,'
                         'swin_utils,backbone_base}.py'],
                torch=str(torch.__version__), timm=str(timm.__version__),
                input_shape=list(facts.INPUT_SHAPE), num_classes=NUM_CLASSES,
                embed_dim=EMBED_DIM)
    facts.write_record(args.out, 'tao7', meta, records, outputs)


if __name__ == '__main__':
    main()
