"""TAO experiment specs: schema, loading with overrides, translation to mmengine configs."""
from .compose import compose_config
from .loader import TASKS, apply_overrides, check_for_task, load_spec, parse_override
from .schema import ExperimentSpec
from .translate import MAPPING, mapping_table, num_processes, spec_to_config
from .validation import SpecError
from .writer import config_text, write_config

__all__ = ['TASKS', 'ExperimentSpec', 'SpecError', 'MAPPING', 'apply_overrides',
           'check_for_task', 'compose_config', 'config_text', 'load_spec', 'mapping_table',
           'num_processes', 'parse_override', 'spec_to_config', 'write_config']
