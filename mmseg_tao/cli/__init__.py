"""The ``mmseg-tao`` command: TAO's tasks (train, evaluate, inference, export) and the tools
(spec2cfg, convert-spec, check-dataset, convert-checkpoint, prepare-isbi, demo-data,
configs), one module each; :func:`main` dispatches."""
from .main import COMMANDS, main

__all__ = ['COMMANDS', 'main']
