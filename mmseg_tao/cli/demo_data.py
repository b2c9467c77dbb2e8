"""Generate small, realistic synthetic segmentation datasets with ready TAO specs.

    mmseg-tao demo-data OUT_DIR [--kind membranes|shapes|both]
        [--num-train 200] [--num-val 50] [--size 256] [--seed 0]

Writes ``OUT_DIR/<kind>/images/{train,val}``, ``OUT_DIR/<kind>/masks/{train,val}`` and
``OUT_DIR/<kind>/spec.yaml`` (written last). ``membranes``: EM-like grayscale cells and
membranes in ISBI's conventions (2 classes); ``shapes``: textured ellipses, boxes and
triangles on RGB backgrounds (4 classes). The same arguments give byte-identical files.
Then, for example: ``mmseg-tao check-dataset OUT_DIR/shapes/spec.yaml`` and
``mmseg-tao train -e OUT_DIR/shapes/spec.yaml``.
"""
import argparse
import time
from typing import List, Optional, Sequence

from mmseg_tao.datasets.demo import KINDS, make_kind

from .command import ExitCode, make_parser, run_main


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The arguments of ``mmseg-tao demo-data`` (and ``tools/make_demo_dataset.py``)."""
    parser = make_parser(prog, __doc__)
    parser.add_argument('out_dir', help='output directory (one sub-directory per kind)')
    parser.add_argument('--kind', choices=KINDS + ('both', ), default='both')
    parser.add_argument('--num-train', type=int, default=200, help='training images per kind')
    parser.add_argument('--num-val', type=int, default=50, help='validation images per kind')
    parser.add_argument('--size', type=int, default=256, help='image width and height')
    parser.add_argument('--seed', type=int, default=0)
    return parser


def demo_data(args: argparse.Namespace) -> ExitCode:
    """Generate the kinds asked for; returns the exit status."""
    kinds: List[str] = list(KINDS) if args.kind == 'both' else [args.kind]
    num = {'train': args.num_train, 'val': args.num_val}
    start = time.perf_counter()
    for kind in kinds:
        make_kind(args.out_dir, kind, num, args.size, args.seed)
    print(f'done: {len(kinds)} kind(s), {sum(num.values()) * len(kinds)} images in '
          f'{time.perf_counter() - start:.1f} s')
    return 0


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> ExitCode:
    """``mmseg-tao demo-data``; returns the exit status (2: bad arguments)."""
    parser = build_parser(prog)

    def run(args: argparse.Namespace) -> ExitCode:
        for bad, message in ((args.num_train < 1 or args.num_val < 1,
                              '--num-train and --num-val must be at least 1'),
                             (args.size < 32, '--size must be at least 32'),
                             (args.seed < 0, '--seed must be non-negative')):
            if bad:
                parser.error(message)
        return demo_data(args)

    return run_main(parser, run, argv)
