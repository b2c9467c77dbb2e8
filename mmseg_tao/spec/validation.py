"""Check a YAML tree against dataclass schemas and collect every problem at once.

Schemas are plain dataclasses whose field types say what is accepted (``int``, ``float``,
``bool``, ``str``, ``Optional[...]``, ``List[...]``, ``Union[...]`` and nested dataclasses)
and whose ``metadata`` can bound values: ``choices``, ``ge``, ``gt``, ``le``, ``length``.
:func:`build` returns the dataclass instance or raises :class:`SpecError` listing every
problem with its key path (``dataset.train_dataset.img_dir``), the value and what was
expected, and for unknown keys the closest valid key.
"""
import dataclasses
import difflib
import re
import typing
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar, Union  # noqa: F401

T = TypeVar('T')
_FLOAT = re.compile(r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?')


class SpecError(ValueError):
    """A spec with problems; ``problems`` holds one message per problem."""

    def __init__(self, problems: List[str], source: Optional[str] = None):
        self.problems = list(problems)
        self.source = source
        head = f'{source}: ' if source else ''
        n = len(self.problems)
        super().__init__(f'{head}{n} problem{"s" if n != 1 else ""} in the spec:\n' +
                         '\n'.join(f'  - {p}' for p in self.problems))


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        name = ' or '.join(_type_name(a) for a in args)
        return name + ' or null' if type(None) in typing.get_args(tp) else name
    if origin in (list, List):
        return f'a list of {_type_name(typing.get_args(tp)[0])}'
    if origin in (dict, typing.Dict):
        return 'a mapping'
    if dataclasses.is_dataclass(tp):
        return 'a mapping'
    return {int: 'an integer', float: 'a number', bool: 'true/false', str: 'a string',
            Any: 'any value'}.get(tp, getattr(tp, '__name__', str(tp)))


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def _check_bounds(value, meta, path: str, problems: List[str]) -> None:
    if 'choices' in meta and value not in meta['choices']:
        close = difflib.get_close_matches(str(value), [str(c) for c in meta['choices']], 1)
        hint = f' (did you mean {close[0]!r}?)' if close else ''
        problems.append(f'{path}: {_show(value)} is not one of '
                        f'{", ".join(map(str, meta["choices"]))}{hint}')
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        for key, ok, word in (('ge', lambda a, b: a >= b, '>='), ('gt', lambda a, b: a > b, '>'),
                              ('le', lambda a, b: a <= b, '<=')):
            if key in meta and not ok(item, meta[key]):
                problems.append(f'{path}: {_show(value)} must be {word} {meta[key]}')
                return
    if 'length' in meta and isinstance(value, list) and len(value) != meta['length']:
        problems.append(f'{path}: {_show(value)} must have {meta["length"]} entries')


def convert(value, tp, path: str, problems: List[str]) -> Tuple[bool, Any]:
    """Check ``value`` against type ``tp``; returns (ok, converted value)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True, value
    if origin is Union:
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return True, None
            problems.append(f'{path}: null is not allowed; expected {_type_name(tp)}')
            return False, None
        sections = [a for a in args if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and len(sections) == 1:
            # An optional section given as a mapping: its own problems, path by path.
            return convert(value, sections[0], path, problems)
        for arg in args:
            if arg is type(None):
                continue
            trial: List[str] = []
            ok, out = convert(value, arg, path, trial)
            if ok and not trial:
                return True, out
        problems.append(f'{path}: {_show(value)} is not {_type_name(tp)}')
        return False, None
    if origin in (list, List):
        if not isinstance(value, list):
            problems.append(f'{path}: {_show(value)} is not {_type_name(tp)}')
            return False, None
        (item_tp, ) = typing.get_args(tp)
        out, all_ok = [], True
        for i, item in enumerate(value):
            ok, conv = convert(item, item_tp, f'{path}[{i}]', problems)
            all_ok &= ok
            out.append(conv)
        return all_ok, out
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            problems.append(f'{path}: {_show(value)} is not a mapping')
            return False, None
        key_tp, value_tp = typing.get_args(tp)
        out, all_ok = {}, True
        for key, item in value.items():
            ok, conv = convert(item, value_tp, f'{path}.{key}', problems)
            all_ok &= ok
            out[key] = conv
        return all_ok, out
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f'{path}: {_show(value)} is not a mapping of '
                            f'{", ".join(f.name for f in dataclasses.fields(tp))}')
            return False, None
        return True, build(tp, value, path, problems)
    if value is None:
        problems.append(f'{path}: null is not allowed; expected {_type_name(tp)}')
        return False, None
    if tp is bool:
        if isinstance(value, bool):
            return True, value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            # YAML 1.1 reads 5e-4 (no dot) as a string; TAO specs write numbers that way.
            return True, float(value)
    elif tp is str:
        if isinstance(value, str):
            return True, value
    problems.append(f'{path}: {_show(value)} is not {_type_name(tp)}')
    return False, None


def build(cls: Type[T], data: Optional[dict], path: str = '',
          problems: Optional[List[str]] = None) -> T:
    """Instantiate dataclass ``cls`` from ``data``, collecting problems.

    With ``problems`` given, problems are appended and a best-effort instance returned;
    without, :class:`SpecError` is raised if there is any.
    """
    own = problems is None
    problems = [] if own else problems
    data = data or {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        sub = f'{path}.{key}' if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = (f'did you mean {(path + "." if path else "") + close[0]!r}?' if close
                    else f'valid keys: {", ".join(fields)}')
            problems.append(f'{sub}: unknown key; {hint}')
            continue
        ok, conv = convert(value, hints[key], sub, problems)
        if ok:
            _check_bounds(conv, fields[key].metadata, sub, problems)
            kwargs[key] = conv
    instance = cls(**kwargs)
    if own and problems:
        raise SpecError(problems)
    return instance


def get_path(obj, path: str):
    """``obj.a.b.c`` for ``path='a.b.c'``."""
    for part in path.split('.'):
        obj = getattr(obj, part)
    return obj


def set_path(obj, path: str, value) -> None:
    """``obj.a.b.c = value`` for ``path='a.b.c'``."""
    parent, _, name = path.rpartition('.')
    setattr(get_path(obj, parent) if parent else obj, name, value)
