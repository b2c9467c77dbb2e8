"""Compose a generated config the way mmseg writes its own.

What a stock base file already holds is inherited through ``_base_`` instead of repeated
(mmseg's ``_base_/default_runtime.py``: scope, environment, visualiser, log processor,
``load_from`` / ``resume``, the TTA model), and a top-level section equal to an earlier one
is written as that name (``test_dataloader = val_dataloader``). The composed file loads to
exactly the entries of the flat one; a base is only used when that holds: every entry it
defines is one the config has, and an entry that differs from the base's gets
``_delete_=True`` where mmengine's merge would otherwise mix the two. (mmengine marks what
comes from a package's base with that package's scope, ``_scope_='mmseg'``: the scope such
a config has anyway, so builds are the same; :func:`unscoped` removes the mark.)
"""
import functools
import os.path as osp
import tempfile
from typing import Any, Dict, Optional, Sequence

from .writer import Ref, ordered_keys, resolve_refs

MMSEG_RUNTIME = 'mmseg::_base_/default_runtime.py'


@functools.lru_cache(maxsize=None)
def _base_entries(base: str) -> Optional[Dict[str, Any]]:
    """The entries of the base config ``base`` as mmengine reads them through ``_base_``,
    or None when it cannot be read here (cached: read, never change them)."""
    from mmengine.config import Config
    with tempfile.TemporaryDirectory() as tmp:
        probe = osp.join(tmp, 'probe.py')
        with open(probe, 'w', encoding='utf-8') as f:
            f.write(f'_base_ = [{base!r}]\n')
        try:
            return Config.fromfile(probe).to_dict()
        except Exception:  # e.g. mmseg installed without its configs: write flat
            return None


def unscoped(value: Any, scope: Optional[str]) -> Any:
    """``value`` without the ``_scope_`` marks equal to ``scope`` (recursively)."""
    if isinstance(value, dict):
        return {k: unscoped(v, scope) for k, v in value.items()
                if not (k == '_scope_' and v == scope)}
    if isinstance(value, (list, tuple)):
        return type(value)(unscoped(v, scope) for v in value)
    return value


def _merges_to(base: Any, ours: Any) -> bool:
    """Whether mmengine's merge of ``ours`` into ``base`` gives ``ours`` (dicts merge key by
    key; anything else replaces)."""
    if not (isinstance(base, dict) and isinstance(ours, dict)) or ours.get('_delete_'):
        return True
    return set(base) <= set(ours) and all(_merges_to(base[k], ours[k]) for k in base)


def compose_config(cfg: Dict[str, Any],
                   bases: Sequence[str] = (MMSEG_RUNTIME, )) -> Dict[str, Any]:
    """``cfg`` (with :class:`~mmseg_tao.spec.writer.Ref` entries) as a composed config.

    Args:
        cfg: A config as :func:`~mmseg_tao.spec.translate.spec_to_config` returns it with
            ``resolve=False``.
        bases: Base configs to inherit from where they fit (mmengine's ``pkg::path`` or file
            paths); one that cannot be read here, or that defines an entry ``cfg`` lacks,
            is not used.

    Returns:
        dict: The entries to write, ``_base_`` first when a base is used.
    """
    resolved = resolve_refs(cfg, cfg)
    used, inherited, replaced = [], set(), set()
    for base in bases:
        entries = _base_entries(base)
        if not entries or not set(entries) <= set(resolved):
            continue
        entries = unscoped(entries, resolved.get('default_scope'))  # a copy
        used.append(base)
        for key, value in entries.items():
            if resolved[key] == value:
                inherited.add(key)
            elif not _merges_to(value, resolved[key]):
                replaced.add(key)
    out: Dict[str, Any] = {'_base_': used} if used else {}
    written = []
    for key in ordered_keys(cfg):
        if key in inherited:
            continue
        value = cfg[key]
        if key in replaced:
            value = {'_delete_': True, **(resolved[key] if isinstance(value, Ref) else value)}
        elif isinstance(value, (dict, list)) and value and not isinstance(value, Ref):
            same = next((k for k in written
                         if k not in replaced and resolved[k] == resolved[key]), None)
            value = Ref(same) if same else value
        out[key] = value
        written.append(key)
    return out
