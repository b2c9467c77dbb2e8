"""The TAO-style command: ``mmseg-tao {train,evaluate,inference,export} -e spec.yaml``."""
import argparse
import sys
from typing import List, Optional

TASKS = ('train', 'evaluate', 'inference', 'export')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='mmseg-tao',
        description='Run a TAO SegFormer experiment spec with mmsegmentation.')
    parser.add_argument('task', choices=TASKS, help='what to run')
    parser.add_argument('-e', '--experiment_spec', required=True,
                        help='TAO experiment spec (YAML)')
    parser.add_argument('overrides', nargs='*', metavar='key=value',
                        help='spec overrides, e.g. train.max_iters=100')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    print(f'mmseg-tao: the {args.task!r} task is not available in this version '
          '(the spec translator and task runners are still to come).',
          file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
