"""``mmseg-tao COMMAND ...``: the TAO tasks and every tool, one command.

The console entry point (``mmseg-tao = mmseg_tao.cli:main``, also ``python -m
mmseg_tao.cli``). Each command lives in its own module of :mod:`mmseg_tao.cli`, imported
only when it runs; ``tools/*.py`` are the same commands as scripts.
"""
import difflib
import importlib
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmseg_tao.version import __version__

from .command import ExitCode
from .tasks import SUMMARIES as TASK_SUMMARIES
from .tasks import TASKS


class Command(NamedTuple):
    """A subcommand: the module of :mod:`mmseg_tao.cli` whose ``main(argv, prog)`` runs it,
    its one-line summary, and for the TAO tasks (one module) the task."""
    module: str
    summary: str
    task: Optional[str] = None


COMMANDS: Dict[str, Command] = {
    **{task: Command('tasks', TASK_SUMMARIES[task], task) for task in TASKS},
    'spec2cfg': Command('spec2cfg', 'translate a TAO spec into an mmengine config'),
    'convert-spec': Command('convert_spec', 'convert a spec between the TAO 5 and TAO 6/7 '
                            'forms'),
    'check-dataset': Command('check_dataset', 'check the images and masks of a spec or '
                             'config before training'),
    'convert-checkpoint': Command('convert_checkpoint', 'convert a TAO / NVlabs / mmseg / '
                                  'Hugging Face checkpoint to this layout'),
    'prepare-isbi': Command('prepare_isbi', "put ISBI 2012's TIFF stacks (or synthetic EM "
                            "images) in TAO's folders"),
    'demo-data': Command('demo_data', 'generate synthetic demo datasets with ready specs'),
    'configs': Command('configs', 'list the shipped example configs and specs, or print one\'s '
                       'path'),
}
GROUPS = (('TAO tasks (-e SPEC [key=value ...])', TASKS),
          ('tools', tuple(name for name in COMMANDS if name not in TASKS)))


def usage() -> str:
    """The text of ``mmseg-tao --help``."""
    lines = ['usage: mmseg-tao COMMAND [ARGS ...]', '',
             "NVIDIA TAO's SegFormer workflow on mmsegmentation, mmengine and mmdeploy.", '']
    width = max(map(len, COMMANDS)) + 2
    for title, names in GROUPS:
        lines.append(f'{title}:')
        lines += [f'  {name:<{width}}{COMMANDS[name].summary}' for name in names]
        lines.append('')
    lines += ["'mmseg-tao COMMAND --help' shows a command's arguments.",
              'Example: mmseg-tao train -e spec.yaml results_dir=/results train.max_iters=1000']
    return '\n'.join(lines)


def fail(message: str) -> ExitCode:
    """One line on stderr (after the usage line), exit status 2."""
    print(f'usage: mmseg-tao COMMAND [ARGS ...]\nmmseg-tao: error: {message}', file=sys.stderr)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> ExitCode:
    """Run ``mmseg-tao COMMAND ARGS...``; returns the command's exit status.

    Args:
        argv: The command and its arguments (default: ``sys.argv[1:]``).
    """
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return fail(f'a command is required: {", ".join(COMMANDS)}')
    name, rest = args[0], args[1:]
    if name in ('-h', '--help', 'help'):
        print(usage())
        return 0
    if name == '--version':
        print(f'mmseg-tao {__version__}')
        return 0
    if name not in COMMANDS:
        close = difflib.get_close_matches(name.replace('_', '-'), COMMANDS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ''
        return fail(f"unknown command '{name}' ({hint}commands: {', '.join(COMMANDS)})")
    command = COMMANDS[name]
    module = importlib.import_module(f'{__package__}.{command.module}')
    kwargs = {'task': command.task} if command.task else {}
    return module.main(rest, prog=f'mmseg-tao {name}', **kwargs)
