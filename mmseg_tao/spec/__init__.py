"""TAO experiment specs: schema, loading with overrides, translation to mmengine configs.

The package's names are imported on first use (PEP 562), so that importing one light
module (``mmseg_tao.spec.schema``, the dataclasses of a spec) does not import the
translator and, through it, the datasets and models.
"""
import importlib
from typing import TYPE_CHECKING, List

# Public name -> the module of this package that defines it.
_EXPORTS = {
    'TASKS': 'task_checks',
    'ExperimentSpec': 'schema',
    'SpecError': 'validation',
    'MAPPING': 'tao5_mapping',
    'apply_overrides': 'overrides',
    'check_for_task': 'task_checks',
    'compose_config': 'compose',
    'config_text': 'writer',
    'load_spec': 'loader',
    'mapping_table': 'tao5_mapping',
    'num_processes': 'gpus',
    'parse_override': 'overrides',
    'spec_to_config': 'translate',
    'write_config': 'writer',
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports
    from .compose import compose_config  # noqa: F401
    from .gpus import num_processes  # noqa: F401
    from .loader import load_spec  # noqa: F401
    from .overrides import apply_overrides, parse_override  # noqa: F401
    from .schema import ExperimentSpec  # noqa: F401
    from .tao5_mapping import MAPPING, mapping_table  # noqa: F401
    from .task_checks import TASKS, check_for_task  # noqa: F401
    from .translate import spec_to_config  # noqa: F401
    from .validation import SpecError  # noqa: F401
    from .writer import config_text, write_config  # noqa: F401


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)
    globals()[name] = value  # once
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_EXPORTS))
