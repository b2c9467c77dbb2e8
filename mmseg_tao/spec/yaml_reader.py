"""Read a spec file as YAML data (never as code)."""
import os.path as osp

import yaml

from .validation import SpecError


def read_yaml(path: str) -> dict:
    """Parse a spec file with ``yaml.safe_load`` (no tags, no code).

    Args:
        path: The YAML file.

    Returns:
        dict: The top-level mapping ({} for an empty file).

    Raises:
        SpecError: The file is missing, not UTF-8, not YAML, or not a mapping.
    """
    if not osp.isfile(path):
        raise SpecError([f'{path}: no such file'])
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' (line {mark.line + 1}, column {mark.column + 1})' if mark else ''
        problem = getattr(err, 'problem', None) or str(err)
        raise SpecError([f'not valid YAML{where}: {problem}'], source=path) from None
    except UnicodeDecodeError as err:
        raise SpecError([f'not UTF-8 text: {err}'], source=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError([f'the top level is {type(data).__name__}, expected a mapping of '
                         'sections (model, dataset, train, ...)'], source=path)
    return data
