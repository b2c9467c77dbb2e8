"""Convert a SegFormer / FAN checkpoint to the mmseg-tao (TAO / NVlabs) layout.

    mmseg-tao convert-checkpoint SRC DST [--layout LAYOUT] [--strict]

SRC may be a TAO / NVlabs checkpoint (whole model or ``mit_bX.pth``), an mmseg 1.x
MixVisionTransformer checkpoint, a Hugging Face Segformer (``pytorch_model.bin`` or
``model.safetensors``) or a TAO / NVlabs FAN checkpoint. DST is written as an mmseg-style
checkpoint (``{'state_dict': ..., 'meta': ...}``) that ``load_from``, ``tools/test.py`` and
``init_cfg=dict(type='Pretrained', ...)`` accept.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

import torch

from mmseg_tao.models.utils import convert_state_dict, read_state_dict
from mmseg_tao.models.utils.ckpt_convert import LAYOUTS
from mmseg_tao.utils import atomic_path

from .command import ExitCode, UserError, make_parser, run_main


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The arguments of ``mmseg-tao convert-checkpoint`` (and
    ``tools/convert_checkpoint.py``)."""
    parser = make_parser(prog, __doc__)
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument('dst', help='output .pth')
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
        state = read_state_dict(args.src)
        result = convert_state_dict(state, layout=args.layout)
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
        torch.save(dict(state_dict=result.state_dict,
                        meta=dict(converted_from=result.layout, source=osp.abspath(args.src))),
                   tmp)
    print(f'wrote {args.dst}')
    return 0


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> ExitCode:
    """``mmseg-tao convert-checkpoint``; returns the exit status (2: SRC missing or not a
    recognised checkpoint)."""
    parser = build_parser(prog)
    return run_main(parser, lambda args: convert_checkpoint(args, parser.prog), argv)
