"""Write a config dict as a readable plain-Python mmengine config that runs nothing.

Every value is written as a literal (strings, numbers, booleans, None, tuples, lists,
``dict(...)``) or as the name of an earlier top-level variable of the file (a
:class:`Ref`, e.g. ``pipeline=train_pipeline``), so loading the
file evaluates data only, whatever the spec's strings hold.
Braces in strings are written as ``\\x7b`` / ``\\x7d``: mmengine substitutes
``{{ fileDirname }}``, ``{{$ENV:...}}`` and ``{{_base_.x}}`` in a config's text before
running it, and a spec string must not be able to trigger that.
"""
import copy
import keyword
import math
import os.path as osp
from typing import Any, Dict, Iterable, List, NamedTuple, Optional

from ..utils import atomic_write

WIDTH = 92
# Written first, in this order (the rest keep the given order).
FIRST = ('_base_', 'custom_imports', 'default_scope')


class BesideConfig(NamedTuple):
    """The path of a file next to the config: written as mmengine's
    ``'{{ fileDirname }}/name'`` (the one substitution this writer emits itself, for a
    name it checked)."""
    name: str


class Ref(NamedTuple):
    """A reference to a top-level config entry: written as that variable's name, or
    replaced by a copy of it when a config is used directly (an object, so no string
    from a spec can pose as one)."""
    name: str


def resolve_refs(value: Any, cfg: Dict[str, Any]) -> Any:
    """``value`` with every :class:`Ref` replaced by a copy of the entry of ``cfg`` it
    names (recursively)."""
    if isinstance(value, Ref):
        return resolve_refs(copy.deepcopy(cfg[value.name]), cfg)
    if isinstance(value, dict):
        return {k: resolve_refs(v, cfg) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not isinstance(value, BesideConfig):
        return type(value)(resolve_refs(v, cfg) for v in value)
    return value


def str_literal(text: str) -> str:
    """A Python string literal for ``text`` with no brace characters in it."""
    return repr(text).replace('{', '\\x7b').replace('}', '\\x7d')


def _is_kwarg(key) -> bool:
    return isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)


def format_value(value: Any, indent: int = 0) -> str:
    """Python source of ``value`` (literals only)."""
    pad = ' ' * (indent + 4)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f'cannot write the non-finite number {value!r} into a config')
        return repr(value)
    if isinstance(value, str):
        return str_literal(value)
    if isinstance(value, BesideConfig):
        if osp.basename(value.name) != value.name or not all(
                c.isalnum() or c in '._-' for c in value.name):
            raise ValueError(f'{value.name!r} is not a plain file name')
        return f"'{{{{ fileDirname }}}}/{value.name}'"
    if isinstance(value, Ref):
        if not _is_kwarg(value.name):
            raise ValueError(f'reference {value.name!r} is not a Python name')
        return value.name  # an earlier top-level variable of the same file
    if isinstance(value, (list, tuple)):
        items = [format_value(v, indent + 4) for v in value]
        open_, close = ('[', ']') if isinstance(value, list) else ('(', ')')
        trail = ',' if isinstance(value, tuple) and len(items) == 1 else ''
        flat = open_ + ', '.join(items) + trail + close
        if len(flat) + indent <= WIDTH and '\n' not in flat:
            return flat
        return open_ + '\n' + ''.join(f'{pad}{i},\n' for i in items) + ' ' * indent + close
    if isinstance(value, dict):
        if all(_is_kwarg(k) for k in value):
            parts = [f'{k}={format_value(v, indent + 4)}' for k, v in value.items()]
            flat = 'dict(' + ', '.join(parts) + ')'
            if len(flat) + indent <= WIDTH and '\n' not in flat:
                return flat
            return 'dict(\n' + ''.join(f'{pad}{p},\n' for p in parts) + ' ' * indent + ')'
        parts = [f'{format_value(k)}: {format_value(v, indent + 4)}' for k, v in value.items()]
        return '{\n' + ''.join(f'{pad}{p},\n' for p in parts) + ' ' * indent + '}'
    raise TypeError(f'cannot write a {type(value).__name__} into a config')


def ordered_keys(cfg: Dict[str, Any], first: Iterable[str] = FIRST) -> List[str]:
    """The top-level keys in the order they are written: ``first``, then the rest."""
    first = tuple(first)
    return [k for k in first if k in cfg] + [k for k in cfg if k not in first]


def config_text(cfg: Dict[str, Any], header: Iterable[str] = (),
                first: Iterable[str] = FIRST) -> str:
    """The config file's text: ``name = literal`` per top-level key."""
    lines = [f'# {line}' for line in header]
    for key in ordered_keys(cfg, first):
        if not _is_kwarg(key):
            raise ValueError(f'config key {key!r} is not a Python name')
        lines.append(f'{key} = {format_value(cfg[key])}')
    return '\n'.join(lines) + '\n'


def write_config(cfg: Dict[str, Any], path: str, header: Iterable[str] = (),
                 source: Optional[str] = None) -> str:
    """Write the config atomically (a half-written file never appears at ``path``).

    Args:
        cfg: The config, with :class:`Ref` entries for sections written by name (compose
            it first with :func:`~mmseg_tao.spec.compose.compose_config`).
        path: The file to write.
        header: Comment lines for the top of the file.
        source: The spec it was made from, recorded in the header.
    """
    header = list(header)
    if source is not None:
        header.append(f'source: {str_literal(source)}')
    text = config_text(cfg, header)
    atomic_write(path, text)
    return text
