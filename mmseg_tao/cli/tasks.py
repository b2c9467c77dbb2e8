"""The TAO tasks: ``mmseg-tao {train,evaluate,inference,export,quantize} -e SPEC
[key=value ...]``.

Runs a TAO SegFormer experiment spec with mmsegmentation. ``key=value`` overrides use the
spec's dotted paths (``train.max_iters=100``, ``evaluate.checkpoint=model.pth``).
``<task>.num_gpus`` / ``<task>.gpu_ids`` are reconciled as TAO does; training on several
GPUs relaunches under torchrun, one process per GPU with NCCL (gloo processes on a machine
without a GPU). SPEC may also name a shipped spec (``mmseg-tao configs`` lists them).
"""
import argparse
from typing import Optional, Sequence

from mmseg_tao.utils.configs import example_data_hint, resolve_config

from .command import ExitCode, make_parser, run_main

TASKS = ('train', 'evaluate', 'inference', 'export', 'quantize')
SUMMARIES = {
    'train': 'train a model from a TAO experiment spec',
    'evaluate': 'evaluate a checkpoint on the spec\'s test data (mIoU tables, results.json)',
    'inference': 'segment the spec\'s test images (masks and overlays)',
    'export': 'export a checkpoint to ONNX (checked against PyTorch with ONNX Runtime)',
    'quantize': 'quantise a checkpoint (torchao, ModelOpt) or an ONNX export (Q/DQ INT8), '
                'as TAO 7',
}


def build_parser(task: str, prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of one task.

    Args:
        task: One of :data:`TASKS`.
        prog: The command's name in messages (default ``mmseg-tao TASK``).
    """
    summary = SUMMARIES[task]
    parser = make_parser(prog or f'mmseg-tao {task}', f'{summary[0].upper()}{summary[1:]}.',
                         epilog=f'Example: mmseg-tao {task} -e spec.yaml '
                         f'results_dir=/results {task}.num_gpus=1')
    parser.add_argument('-e', '--experiment_spec', '--experiment_spec_file', required=True,
                        dest='spec', help='TAO experiment spec (YAML), or the name of a '
                        'shipped one')
    parser.add_argument('overrides', nargs='*', metavar='key=value',
                        help='spec overrides, e.g. train.max_iters=100')
    parser.add_argument('--tao-version', type=int, choices=(5, 6), default=None,
                        help="the spec's schema: 5 (TAO 5.x) or 6 (TAO 6.x / 7.x); default: "
                        'told apart by its keys (dataset.segment, train.num_epochs)')
    parser.add_argument('--launcher', default='none', choices=('none', 'pytorch'),
                        help=argparse.SUPPRESS)  # set by the torchrun relaunch
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None,
         task: str = 'train') -> ExitCode:
    """Run ``task`` on the spec named in ``argv``; returns the exit status.

    Args:
        argv: The arguments after the task's name.
        prog: The command's name in messages.
        task: One of :data:`TASKS`.
    """
    from mmseg_tao import apis
    from mmseg_tao.compat.checkpoint import CheckpointReadError
    from mmseg_tao.datasets import DatasetError
    from mmseg_tao.models.utils import CheckpointMismatchError
    from mmseg_tao.quantization.backends.onnxruntime_qdq import OnnxModelError
    from mmseg_tao.spec import SpecError

    def run(args: argparse.Namespace) -> ExitCode:
        spec = resolve_config(args.spec)
        try:
            result = getattr(apis, task)(spec, args.overrides, launcher=args.launcher,
                                         tao_version=args.tao_version)
        except DatasetError as err:  # the ISBI example says how to make its data
            hint = example_data_hint(spec, err.missing_dirs)
            if not hint:
                raise
            raise DatasetError(f'{err}{hint}', err.missing_dirs) from None
        return result if isinstance(result, int) else 0

    return run_main(build_parser(task, prog), run, argv, intermixed=True,
                    user_errors=(SpecError, DatasetError, CheckpointMismatchError,
                                 CheckpointReadError, FileNotFoundError, OnnxModelError))
