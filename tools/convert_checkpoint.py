#!/usr/bin/env python
"""Convert a SegFormer / FAN checkpoint to the mmseg-tao (TAO / NVlabs) layout.

    python tools/convert_checkpoint.py SRC DST [--layout LAYOUT] [--strict]

SRC may be a TAO / NVlabs checkpoint (whole model or ``mit_bX.pth``), an mmseg 1.x
MixVisionTransformer checkpoint, a Hugging Face Segformer (``pytorch_model.bin`` or
``model.safetensors``) or a TAO / NVlabs FAN checkpoint. DST is written as an mmseg-style
checkpoint (``{'state_dict': ..., 'meta': ...}``) that ``load_from``, ``tools/test.py`` and
``init_cfg=dict(type='Pretrained', ...)`` accept.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

import torch

import mmseg_tao  # noqa: F401  (safe checkpoint loading)
from mmseg_tao.models.utils import convert_state_dict, read_state_dict
from mmseg_tao.models.utils.ckpt_convert import LAYOUTS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--layout', choices=LAYOUTS, help='skip detection')
    parser.add_argument('--strict', action='store_true',
                        help='fail if any source key cannot be converted')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        print(f'convert_checkpoint: {args.src}: no such file', file=sys.stderr)
        return 2
    try:
        state = read_state_dict(args.src)
        result = convert_state_dict(state, layout=args.layout)
    except (ValueError, KeyError) as err:
        print(f'convert_checkpoint: {args.src}: {err}', file=sys.stderr)
        return 2
    print(f'{args.src}: recognised layout {result.layout!r}; '
          f'{len(result.state_dict)} tensors converted')
    for key, why in result.ignored.items():
        print(f'  ignored {key}: {why}')
    for key in result.unmatched:
        print(f'  WARNING: no conversion for {key}; not written')
    if result.unmatched and args.strict:
        print(f'convert_checkpoint: {len(result.unmatched)} key(s) could not be converted '
              '(--strict); nothing written', file=sys.stderr)
        return 1
    out_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(out_dir, exist_ok=True)
    # Write next to the target and rename: no half-written DST on failure.
    fd, tmp = tempfile.mkstemp(suffix='.tmp', dir=out_dir)
    os.close(fd)
    try:
        torch.save(dict(state_dict=result.state_dict,
                        meta=dict(converted_from=result.layout, source=osp.abspath(args.src))),
                   tmp)
        os.replace(tmp, args.dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print(f'wrote {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
