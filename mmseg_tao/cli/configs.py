"""List the example configs and TAO specs shipped with mmseg-tao, or print where one is.

    mmseg-tao configs              (every shipped config and spec, and their folder)
    mmseg-tao configs NAME         (the path of one, e.g. tao_specs/segformer_isbi.yaml)

Every command that takes a spec or config (train, evaluate, inference, export, spec2cfg,
convert-spec, check-dataset) also accepts such a name where no file of that name exists.
"""
import argparse
from typing import Optional, Sequence

from mmseg_tao.utils.configs import config_dir, config_path, list_configs

from .command import ExitCode, make_parser, run_main


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The arguments of ``mmseg-tao configs``."""
    parser = make_parser(prog, __doc__)
    parser.add_argument('name', nargs='?', help='a shipped config or spec: print its path')
    return parser


def show_configs(args: argparse.Namespace) -> ExitCode:
    """Print one shipped config's path, or the folder and every name."""
    if args.name:
        print(config_path(args.name))
        return 0
    print(f'shipped configs in {config_dir()}:')
    for name in list_configs():
        print(f'  {name}')
    return 0


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> ExitCode:
    """``mmseg-tao configs``; returns the exit status (2: no shipped config of that name)."""
    return run_main(build_parser(prog), show_configs, argv, user_errors=(FileNotFoundError,))
