"""Convert a SegFormer experiment spec between TAO 5.x's and TAO 6.x / 7.x's forms.

    mmseg-tao convert-spec SPEC --to 5|6 [-o OUT.yaml] [key=value ...]

Only settings that differ from the target form's defaults are written. Every setting
without a counterpart in the target form is listed (on stderr and at the top of the
written file). A TAO 6 spec's epochs become iterations from its training images (and the
reverse), so the dataset should be where the spec says. SPEC may name a shipped spec; its
conversion then goes to the current directory unless ``-o`` says where.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

import yaml

from mmseg_tao.spec import SpecError, load_spec
from mmseg_tao.spec.convert import to_tao5, to_tao6
from mmseg_tao.spec.loader import read_yaml
from mmseg_tao.spec.tao6 import detect_version
from mmseg_tao.utils import atomic_write
from mmseg_tao.utils.configs import resolve_config

from .command import ExitCode, UserError, make_parser, run_main


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The arguments of ``mmseg-tao convert-spec`` (and ``tools/convert_spec.py``)."""
    parser = make_parser(prog, __doc__)
    parser.add_argument('spec', help='TAO experiment spec (YAML), or the name of a shipped one')
    parser.add_argument('overrides', nargs='*', metavar='key=value')
    parser.add_argument('--to', type=int, choices=(5, 6), required=True,
                        help='target form: 5 (TAO 5.x) or 6 (TAO 6.x / 7.x)')
    parser.add_argument('-o', '--out', help='output spec (default: <spec>_tao<N>.yaml)')
    return parser


def convert_spec(args: argparse.Namespace, prog: str) -> ExitCode:
    """Write the converted spec for parsed arguments."""
    spec_path = resolve_config(args.spec)
    source = detect_version(read_yaml(spec_path))
    if source == args.to:
        raise UserError(f'{args.spec} is already a TAO {args.to} spec')
    spec = load_spec(spec_path, args.overrides)
    data, lost = to_tao5(spec) if args.to == 5 else to_tao6(spec)
    stem = osp.splitext(args.spec if spec_path == args.spec else osp.basename(spec_path))[0]
    out = args.out or f'{stem}_tao{args.to}.yaml'
    header = [f'Converted from {osp.basename(args.spec)} (TAO {source}) by mmseg-tao '
              f'tools/convert_spec.py.']
    if lost:
        header.append(f'Without a TAO {args.to} counterpart:')
        header += [f'  - {line}' for line in lost]
    atomic_write(out, ''.join(f'# {line}\n' for line in header) +
                 yaml.safe_dump(data, sort_keys=False))
    for line in lost:
        print(f'{prog}: no TAO {args.to} counterpart: {line}', file=sys.stderr)
    print(f'wrote {out}')
    return 0


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> ExitCode:
    """``mmseg-tao convert-spec``; returns the exit status (2: a bad or same-form spec)."""
    parser = build_parser(prog)
    return run_main(parser, lambda args: convert_spec(args, parser.prog), argv,
                    user_errors=(SpecError,), intermixed=True)
