"""``key=value`` overrides of a raw spec, typed by the spec's schema."""
import dataclasses
import typing
from typing import Iterable, Tuple

import yaml

from .schema import ExperimentSpec
from .validation import SpecError


def field_type(path: str, root=ExperimentSpec):
    """Schema type of a dotted spec path, or None if the path is unknown.

    Args:
        path: A dotted key path (``train.max_iters``).
        root: The schema (TAO 5's :class:`ExperimentSpec` or TAO 6's ``Tao6Spec``).
    """
    tp = root
    for part in path.split('.'):
        while typing.get_origin(tp) is typing.Union:
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if not dataclasses.is_dataclass(tp):
            return None
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return None
        tp = hints[part]
    return tp


def _is_str_type(tp) -> bool:
    if tp is str:
        return True
    return typing.get_origin(tp) is typing.Union and str in typing.get_args(tp) and not any(
        typing.get_origin(a) in (list, typing.List) for a in typing.get_args(tp))


def parse_override(text: str, root=ExperimentSpec) -> Tuple[str, object]:
    """``'a.b.c=value'`` -> (``'a.b.c'``, typed value).

    The value is YAML (numbers, true/false, null, ``[1, 2]``) except for string fields,
    which take the text as it is (``results_dir=123`` is the directory ``'123'``).

    Args:
        text: The override.
        root: The schema that types the value.

    Raises:
        SpecError: ``text`` is not ``key=value`` with a dotted key.
    """
    if '=' not in text:
        raise SpecError([f'override {text!r}: expected key=value, e.g. train.max_iters=100'])
    key, raw = text.split('=', 1)
    key = key.strip()
    if not key or any(not p for p in key.split('.')):
        raise SpecError([f'override {text!r}: {key!r} is not a dotted key path'])
    if _is_str_type(field_type(key, root)) and raw.strip().lower() not in ('null', 'none', '~'):
        return key, raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else ''
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(data: dict, overrides: Iterable[str], root=ExperimentSpec) -> dict:
    """Set each ``key=value`` into the raw spec (validated with the rest).

    Args:
        data: The raw spec, changed in place (and returned).
        overrides: ``key=value`` strings.
        root: The schema that types the values (TAO 5's or TAO 6's).

    Raises:
        SpecError: Listing every override that cannot be applied.
    """
    problems = []
    for text in overrides:
        try:
            key, value = parse_override(text, root)
        except SpecError as err:
            problems += err.problems
            continue
        node = data
        parts = key.split('.')
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f'override {text!r}: {".".join(parts[:i + 1])} is '
                                f'{child!r}, not a section')
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise SpecError(problems)
    return data
