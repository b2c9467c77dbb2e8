"""The list of third-party objects mmseg-tao replaces, and the one way it replaces them.

Each fix is declared once as a :class:`Patch`: the object's path (where the stock code
looks it up), why, the versions it is for, and a ``wrap`` that builds the replacement
from the original. :func:`apply_patches` installs them by wrap-mark-replace: the
replacement is marked with the patch's name and keeps the original as ``__wrapped__``,
so a second apply finds the mark and changes nothing, and the original stays reachable
(:func:`original`). :func:`patches` lists every patch, its reason and whether it is in
place.

``MMSEG_TAO_NO_PATCHES=1`` (or ``all`` / ``true``) turns them all off; a comma-separated
list of names turns off those (``MMSEG_TAO_NO_PATCHES=mmseg-draw-contiguous,...``).
"""
import ast
import importlib
import inspect
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

#: Environment variable that turns patches off: ``1`` / ``all`` / ``true``, or names.
DISABLE_ENV = 'MMSEG_TAO_NO_PATCHES'
_MARK = '__mmseg_tao_patch__'


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Patch:
    """One replaced third-party object.

    Attributes:
        name: Short name (``patches()``, ``MMSEG_TAO_NO_PATCHES``).
        target: Where the stock code looks the object up: ``module.attr``,
            ``module.Class.attr`` or ``module.Class.mapping['key']``; for
            ``via='mmdeploy-rewriter'`` the path of the function mmdeploy rewrites.
        reason: What breaks without it.
        versions: The versions it is for (the requirement ranges it was checked on).
        wrap: Builds the replacement from the original object.
        needed: Whether this process needs it (default: always).
        aliases: Other places that may hold the same original (``from x import f`` made
            before mmseg_tao was imported); each is replaced where it still holds it.
        via: ``'setattr'`` (replace the binding) or ``'mmdeploy-rewriter'`` (register the
            replacement with mmdeploy's FUNCTION_REWRITER, which swaps it in only inside
            its export context).
    """
    name: str
    target: str
    reason: str
    versions: str
    wrap: Callable[[Any], Any]
    needed: Callable[[], bool] = _always
    aliases: Tuple[str, ...] = ()
    via: str = 'setattr'


class PatchStatus(NamedTuple):
    """An entry of :func:`patches`."""
    name: str
    target: str
    reason: str
    versions: str
    applied: bool


_PATCHES: Dict[str, Patch] = {}
_ORIGINALS: Dict[str, Any] = {}


def register(patch: Patch) -> Patch:
    """Declare ``patch`` (applied by the next :func:`apply_patches`).

    Raises:
        ValueError: Another patch has this name.
    """
    if patch.name in _PATCHES and _PATCHES[patch.name] is not patch:
        raise ValueError(f'a compat patch named {patch.name!r} is already registered')
    _PATCHES[patch.name] = patch
    return patch


# ---------------------------------------------------------------- bindings
class _Binding:
    """A place that holds an object: an attribute of a module or class, or a mapping item."""

    def __init__(self, owner: Any, key: str, item: bool = False):
        self.owner, self.key, self.item = owner, key, item

    def get(self) -> Any:
        if self.item:
            return self.owner[self.key]
        value = inspect.getattr_static(self.owner, self.key)
        return value.__func__ if isinstance(value, staticmethod) else value

    def set(self, value: Any) -> None:
        if self.item:
            self.owner[self.key] = value
            return
        if isinstance(inspect.getattr_static(self.owner, self.key), staticmethod):
            value = staticmethod(value)
        setattr(self.owner, self.key, value)


class _RewriterBinding:
    """mmdeploy's FUNCTION_REWRITER entry for the function at ``path``."""

    def __init__(self, path: str):
        from mmdeploy.core import FUNCTION_REWRITER
        self.path, self.rewriter = path, FUNCTION_REWRITER

    def get(self) -> Any:
        records = getattr(self.rewriter._registry, '_rewrite_records', {}).get(self.path, [])
        marked = [r['_object'] for r in records if hasattr(r.get('_object'), _MARK)]
        return marked[0] if marked else _resolve(self.path).get()

    def set(self, value: Any) -> None:
        self.rewriter.register_rewriter(func_name=self.path)(value)


def _resolve(path: str) -> _Binding:
    """The binding at ``path`` (the longest importable module prefix, then attributes).

    Raises:
        AttributeError, ImportError: Nothing is there.
    """
    item = re.fullmatch(r'(.+)\[(.+)\]', path)
    dotted = item.group(1) if item else path
    parts = dotted.split('.')
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:-1]:
            obj = getattr(obj, name)
        if item:
            return _Binding(getattr(obj, parts[-1]), ast.literal_eval(item.group(2)), item=True)
        inspect.getattr_static(obj, parts[-1])  # raises AttributeError if absent
        return _Binding(obj, parts[-1])
    raise ImportError(f'no module in {path!r}')


def _binding(patch: Patch):
    return _RewriterBinding(patch.target) if patch.via == 'mmdeploy-rewriter' \
        else _resolve(patch.target)


def _is_mark_of(obj: Any, name: str) -> bool:
    return getattr(obj, _MARK, None) == name


# ---------------------------------------------------------------- apply, list
def disabled_names() -> Optional[List[str]]:
    """Names ``MMSEG_TAO_NO_PATCHES`` turns off; None when it turns off all."""
    value = os.environ.get(DISABLE_ENV, '').strip()
    if value.lower() in ('1', 'all', 'true', 'yes'):
        return None
    return [n.strip() for n in value.split(',') if n.strip() and n.strip() != '0']


def apply_patch(name: str) -> bool:
    """Install one patch unless it is in place (idempotent), and replace the original at its
    aliases. Returns whether it is in place afterwards (False: not needed in this process,
    e.g. another torch default)."""
    patch = _PATCHES[name]
    if not patch.needed():
        return False
    binding = _binding(patch)
    replacement = binding.get()
    if _is_mark_of(replacement, name):
        stock = replacement.__wrapped__
    else:
        stock, replacement = replacement, patch.wrap(replacement)
        setattr(replacement, _MARK, name)
        replacement.__wrapped__ = stock
        binding.set(replacement)
    _ORIGINALS.setdefault(name, stock)
    for alias in patch.aliases:
        try:
            place = _resolve(alias)
        except (AttributeError, ImportError):
            continue
        if place.get() is stock:
            place.set(replacement)
    return True


def apply_patches(names: Optional[Sequence[str]] = None) -> List[str]:
    """Install the patches ``names`` (default: all) except those ``MMSEG_TAO_NO_PATCHES``
    turns off. Returns the names now in place."""
    off = disabled_names()
    if off is None:
        return []
    unknown = [n for n in off if n not in _PATCHES]
    if unknown:
        warnings.warn(f'{DISABLE_ENV}: no compat patch named {", ".join(unknown)}; known: '
                      f'{", ".join(_PATCHES)}', stacklevel=2)
    return [n for n in (names or list(_PATCHES)) if n not in off and apply_patch(n)]


def is_applied(name: str) -> bool:
    """Whether the patch ``name`` is in place now (its marked replacement is bound)."""
    patch = _PATCHES[name]
    if name not in _ORIGINALS:
        return False
    try:
        return _is_mark_of(_binding(patch).get(), name)
    except (AttributeError, ImportError, KeyError):
        return False


def original(name: str) -> Any:
    """The object the patch ``name`` replaced (the stock behaviour).

    Raises:
        KeyError: The patch has not been applied in this process.
    """
    if name not in _ORIGINALS:
        raise KeyError(f'compat patch {name!r} is not applied')
    return _ORIGINALS[name]


def patches() -> List[PatchStatus]:
    """Every declared patch: name, target, reason, versions and whether it is applied."""
    return [PatchStatus(p.name, p.target, p.reason, p.versions, is_applied(p.name))
            for p in _PATCHES.values()]
