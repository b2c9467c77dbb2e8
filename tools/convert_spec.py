#!/usr/bin/env python
"""Convert a SegFormer experiment spec between TAO 5.x's and TAO 6.x / 7.x's forms.

    python tools/convert_spec.py SPEC --to 5|6 [-o OUT.yaml] [key=value ...]

Only settings that differ from the target form's defaults are written. Every setting
without a counterpart in the target form is listed (on stderr and at the top of the
written file). A TAO 6 spec's epochs become iterations from its training images (and the
reverse), so the dataset should be where the spec says.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

import yaml

from mmseg_tao.spec import SpecError, load_spec
from mmseg_tao.spec.convert import to_tao5, to_tao6
from mmseg_tao.spec.loader import read_yaml
from mmseg_tao.spec.tao6 import detect_version


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('spec', help='TAO experiment spec (YAML)')
    parser.add_argument('overrides', nargs='*', metavar='key=value')
    parser.add_argument('--to', type=int, choices=(5, 6), required=True,
                        help='target form: 5 (TAO 5.x) or 6 (TAO 6.x / 7.x)')
    parser.add_argument('-o', '--out', help='output spec (default: <spec>_tao<N>.yaml)')
    args = parser.parse_intermixed_args(argv)
    try:
        source = detect_version(read_yaml(args.spec))
        if source == args.to:
            print(f'convert_spec: {args.spec} is already a TAO {args.to} spec', file=sys.stderr)
            return 2
        spec = load_spec(args.spec, args.overrides)
    except SpecError as err:
        print(f'convert_spec: {err}', file=sys.stderr)
        return 2
    data, lost = to_tao5(spec) if args.to == 5 else to_tao6(spec)
    out = args.out or f'{osp.splitext(args.spec)[0]}_tao{args.to}.yaml'
    header = [f'Converted from {osp.basename(args.spec)} (TAO {source}) by mmseg-tao '
              f'tools/convert_spec.py.']
    if lost:
        header.append(f'Without a TAO {args.to} counterpart:')
        header += [f'  - {line}' for line in lost]
    text = ''.join(f'# {line}\n' for line in header) + yaml.safe_dump(data, sort_keys=False)
    # Written whole or not at all.
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(out)), suffix='.partial')
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, out)
    for line in lost:
        print(f'convert_spec: no TAO {args.to} counterpart: {line}', file=sys.stderr)
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
