"""The example configs and TAO specs that ship with the package.

A wheel carries the repository's ``configs/`` folder as ``mmseg_tao/.mim/configs`` (copied
by ``setup.py`` at build time, as mmsegmentation ships ``mmseg/.mim/configs``); a source
checkout (or an editable install) reads the repository's ``configs/`` itself. Names are
paths relative to that folder, e.g. ``'segformer_isbi.py'``,
``'tao_specs/segformer_isbi.yaml'``, ``'deploy/segmentation_onnxruntime_dynamic.py'``.

    >>> from mmseg_tao.utils.configs import config_path
    >>> config_path('tao_specs/segformer_isbi.yaml')
    '/.../site-packages/mmseg_tao/.mim/configs/tao_specs/segformer_isbi.yaml'

From a shell: ``mmseg-tao configs`` lists them, ``mmseg-tao configs NAME`` prints one path.
"""
import os
import os.path as osp
from typing import List, Optional

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Only what a user runs or reads: configs, specs, not editor or cache leftovers.
SUFFIXES = ('.py', '.yaml', '.yml')


def config_dir() -> str:
    """The folder of the shipped configs: the wheel's ``mmseg_tao/.mim/configs``, else the
    ``configs/`` folder of the checkout this package is imported from.

    Raises:
        FileNotFoundError: Neither exists (a package built without its configs).
    """
    for candidate in (osp.join(PACKAGE_DIR, '.mim', 'configs'),
                      osp.join(osp.dirname(PACKAGE_DIR), 'configs')):
        if osp.isdir(candidate):
            return candidate
    raise FileNotFoundError(f'no shipped configs: neither {PACKAGE_DIR}/.mim/configs nor '
                            'a checkout\'s configs/ folder exists')


def list_configs() -> List[str]:
    """Names (relative paths, ``/``-separated, sorted) of every shipped config and spec."""
    root = config_dir()
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(('.', '__')))
        for name in filenames:
            if name.endswith(SUFFIXES) and not name.startswith('.'):
                names.append(osp.relpath(osp.join(dirpath, name), root).replace(os.sep, '/'))
    return sorted(names)


def config_path(name: str) -> str:
    """The absolute path of a shipped config or spec.

    Args:
        name: Its path relative to the configs folder (``'tao_specs/segformer_isbi.yaml'``,
            also spelt ``'configs/tao_specs/segformer_isbi.yaml'`` as in the repository),
            or its file name when only one shipped file has it (``'segformer_isbi_tao6.yaml'``).

    Raises:
        FileNotFoundError: No shipped file has that name (the message lists them), or
            several do.
    """
    names = list_configs()
    wanted = name.replace(os.sep, '/')
    # './x' and the repository's spelling 'configs/x' (the README's commands) name 'x'
    for prefix in ('./', 'configs/'):
        wanted = wanted[len(prefix):] if wanted.startswith(prefix) else wanted
    if wanted in names:
        return osp.join(config_dir(), *wanted.split('/'))
    matches = [n for n in names if n.rsplit('/', 1)[-1] == wanted]
    if len(matches) == 1:
        return osp.join(config_dir(), *matches[0].split('/'))
    if matches:
        raise FileNotFoundError(f'{name}: several shipped configs have that name: '
                                f'{", ".join(matches)}')
    raise FileNotFoundError(f'{name}: no such file, nor a shipped config (those are: '
                            f'{", ".join(names)})')


def resolve_config(path: str) -> str:
    """``path`` itself when it exists, else the shipped config of that name when there is
    one (see :func:`config_path`), else ``path`` unchanged (for the caller's own error)."""
    found = find_shipped(path) if not osp.exists(path) else None
    return found or path


def find_shipped(name: str) -> Optional[str]:
    """The path of the shipped config ``name``, or ``None`` when there is none."""
    try:
        return config_path(name)
    except FileNotFoundError:
        return None


# The shipped examples that read ISBI-layout data, which `mmseg-tao prepare-isbi` makes.
ISBI_EXAMPLES = ('segformer_isbi.py', 'segformer_mit-b0_isbi.py',
                 'segformer_fan-tiny-hybrid_isbi.py', 'tao_specs/segformer_isbi.yaml',
                 'tao_specs/segformer_isbi_tao6.yaml')


def is_isbi_example(path: str) -> bool:
    """Whether ``path`` is one of the shipped ISBI example configs or specs."""
    real = osp.realpath(path)
    return any(real == osp.realpath(p) for p in map(find_shipped, ISBI_EXAMPLES) if p)


def example_data_hint(path: str, missing_dirs: List[str]) -> str:
    """For a shipped ISBI example whose ``<root>/images/<split>`` folders are missing, the
    command that makes them there; ``''`` for any other config or spec (a user's own data
    is not ours to guess)."""
    if not missing_dirs or not is_isbi_example(path):
        return ''
    roots = []
    for d in missing_dirs:
        parts = osp.normpath(d).split(os.sep)
        if len(parts) >= 2 and parts[-2] in ('images', 'masks'):
            root = os.sep.join(parts[:-2]) or '.'
            roots += [root] if root not in roots else []
    if not roots:
        return ''
    return ('\nThe ISBI example reads ISBI-layout data (images/<split>, masks/<split>); make '
            f'it with: mmseg-tao prepare-isbi {roots[0]} (synthetic EM images; add --volume '
            'train-volume.tif --labels train-labels.tif for the ISBI 2012 data)')
