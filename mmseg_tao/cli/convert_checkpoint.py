"""Convert a SegFormer / FAN checkpoint to the mmseg-tao (TAO 5) layout or to TAO 6/7's.

    mmseg-tao convert-checkpoint SRC DST [--to tao5|tao6] [--layout LAYOUT] [--strict]

SRC may be a TAO 5 / NVlabs checkpoint (whole model or ``mit_bX.pth``), a TAO 6/7
(Lightning) checkpoint, an mmseg 1.x MixVisionTransformer checkpoint, a Hugging Face
Segformer (``pytorch_model.bin`` or ``model.safetensors``) or a TAO / NVlabs FAN checkpoint.
With ``--to tao5`` (the default) DST is an mmseg-style checkpoint (``{'state_dict': ...,
'meta': ...}``) in the package's layout, which TAO 5, ``load_from``, ``tools/test.py`` and
``init_cfg=dict(type='Pretrained', ...)`` accept. With ``--to tao6`` DST is a TAO 6/7
Lightning checkpoint of the whole model (``model.backbone.*``, ``model.decoder.*``), which
TAO 6/7's evaluate, inference, export and ``train.pretrained_model_path`` load.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

import torch

from mmseg_tao.compat.checkpoint import CheckpointReadError
from mmseg_tao.models.utils import LAYOUTS
from mmseg_tao.models.utils.checkpoint_layout import TARGETS
from mmseg_tao.models.utils.checkpoint_layout import convert_checkpoint as convert
from mmseg_tao.utils import atomic_path

from .command import ExitCode, UserError, make_parser, run_main


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The arguments of ``mmseg-tao convert-checkpoint`` (and
    ``tools/convert_checkpoint.py``)."""
    parser = make_parser(prog, __doc__)
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--to', choices=TARGETS, default='tao5',
                        help="the layout written: tao5 (mmseg-tao's and TAO 5's, default) or "
                        "tao6 (TAO 6/7's Lightning checkpoint)")
    parser.add_argument('--layout', choices=LAYOUTS, help='skip detection')
    parser.add_argument('--strict', action='store_true',
                        help='fail if any source key cannot be converted')
    return parser


def convert_checkpoint(args: argparse.Namespace, prog: str) -> ExitCode:
    """Convert ``args.src`` and write ``args.dst``; returns 1 (nothing written) when
    ``--strict`` and some key has no conversion."""
    if not osp.isfile(args.src):
        raise UserError(f'{args.src}: no such file')
    try:
        ckpt, result = convert(args.src, to=args.to, layout=args.layout)
    except CheckpointReadError as err:
        raise UserError(str(err)) from err
    except (ValueError, KeyError) as err:
        raise UserError(f'{args.src}: {err}') from err
    print(f'{args.src}: recognised layout {result.layout!r}; '
          f'{len(result.state_dict)} tensors converted')
    for key, why in result.ignored.items():
        print(f'  ignored {key}: {why}')
    for key in result.unmatched:
        print(f'  WARNING: no conversion for {key}; not written')
    if result.unmatched and args.strict:
        print(f'{prog}: {len(result.unmatched)} key(s) could not be converted (--strict); '
              'nothing written', file=sys.stderr)
        return 1
    with atomic_path(args.dst) as tmp:  # no half-written DST on failure
        torch.save(ckpt, tmp)
    print(f'wrote {args.dst} ({args.to} layout)')
    return 0


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> ExitCode:
    """``mmseg-tao convert-checkpoint``; returns the exit status (2: SRC missing or not a
    recognised checkpoint)."""
    parser = build_parser(prog)
    return run_main(parser, lambda args: convert_checkpoint(args, parser.prog), argv)
