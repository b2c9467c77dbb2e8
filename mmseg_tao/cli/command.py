"""What every ``mmseg-tao`` subcommand shares: how it parses, and how a user's mistake ends.

A subcommand module has ``build_parser(prog)`` and ``main(argv=None, prog=None) -> int``;
``main`` hands both to :func:`run_main`. A mistake in the user's input (a bad spec, a
missing file, data that cannot be read) ends the command with one line on stderr, prefixed
by the command's name, and exit status 2, never a traceback; argparse's own usage errors
exit 2 as well. Anything else is a bug and keeps its traceback.
"""
import argparse
import sys
from typing import Callable, Optional, Sequence, Tuple, Type

ExitCode = int


class UserError(Exception):
    """A problem with what the user gave the command; reported in one line, exit 2."""


def make_parser(prog: Optional[str], doc: Optional[str],
                epilog: Optional[str] = None) -> argparse.ArgumentParser:
    """An argument parser described by ``doc`` without its usage lines (argparse prints
    its own): the paragraphs that are not indented.

    Args:
        prog: The name in usage lines and messages (``'mmseg-tao spec2cfg'``); ``None`` for
            argparse's default, the script's file name (``tools/*.py``).
        doc: The command module's docstring.
        epilog: Text after the arguments in ``--help``.
    """
    paragraphs = [p for p in (doc or '').strip().split('\n\n')
                  if not all(line.startswith(' ') for line in p.splitlines())]
    description = '\n\n'.join(paragraphs) or None
    return argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def run_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], ExitCode],
             argv: Optional[Sequence[str]] = None,
             user_errors: Tuple[Type[BaseException], ...] = (),
             intermixed: bool = False) -> ExitCode:
    """Parse ``argv`` and run the command, turning user errors into exit status 2.

    Args:
        parser: The command's parser.
        run: The command, given the parsed arguments; returns the exit status.
        argv: Arguments after the command's name (default: ``sys.argv[1:]``).
        user_errors: Exception types that mean a mistake in the user's input (besides
            :class:`UserError`), e.g. ``SpecError``.
        intermixed: Allow options between positional arguments
            (``spec.yaml key=value -o out.py key2=value``).
    """
    args = (parser.parse_intermixed_args(argv) if intermixed
            else parser.parse_args(argv))
    try:
        return run(args)
    except (UserError, *user_errors) as err:
        print(f'{parser.prog}: {err}', file=sys.stderr)
        return 2
