"""The TAO-style command.

    mmseg-tao {train,evaluate,inference,export} -e spec.yaml [results_dir=DIR] [key=value ...]

``key=value`` overrides use the spec's dotted paths (``train.max_iters=100``,
``evaluate.checkpoint=model.pth``). ``<task>.num_gpus`` / ``<task>.gpu_ids`` are
reconciled as TAO does; training on several GPUs relaunches under torchrun, one process
per GPU with NCCL (gloo processes on a machine without a GPU).
"""
import argparse
import sys
from typing import List, Optional

TASKS = ('train', 'evaluate', 'inference', 'export')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='mmseg-tao', description='Run a TAO SegFormer experiment spec with '
        'mmsegmentation.', epilog='Example: mmseg-tao train -e spec.yaml '
        'results_dir=/results train.max_iters=1000')
    parser.add_argument('task', choices=TASKS, help='what to run')
    parser.add_argument('-e', '--experiment_spec', '--experiment_spec_file', required=True,
                        dest='spec', help='TAO experiment spec (YAML)')
    parser.add_argument('overrides', nargs='*', metavar='key=value',
                        help='spec overrides, e.g. train.max_iters=100')
    parser.add_argument('--tao-version', type=int, choices=(5, 6), default=None,
                        help="the spec's schema: 5 (TAO 5.x) or 6 (TAO 6.x / 7.x); default: "
                        'told apart by its keys (dataset.segment, train.num_epochs)')
    parser.add_argument('--launcher', default='none', choices=('none', 'pytorch'),
                        help=argparse.SUPPRESS)  # set by the torchrun relaunch
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    import mmseg_tao  # noqa: F401  (registration, compat)
    from mmseg_tao import apis
    from mmseg_tao.datasets import DatasetError
    from mmseg_tao.models.utils import CheckpointMismatchError
    from mmseg_tao.spec import SpecError
    try:
        result = getattr(apis, args.task)(args.spec, args.overrides, launcher=args.launcher,
                                          tao_version=args.tao_version)
    except (SpecError, DatasetError, CheckpointMismatchError, FileNotFoundError) as err:
        print(f'mmseg-tao {args.task}: {err}', file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == '__main__':
    sys.exit(main())
