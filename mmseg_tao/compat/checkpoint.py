"""Load checkpoints under torch >= 2.6 without turning ``weights_only`` off.

mmengine 0.10.7 calls ``torch.load(filename, map_location)``; since torch 2.6 that means
``weights_only=True``, and the checkpoints mmengine itself writes (message hub with
``HistoryBuffer``, numpy scalars and arrays in the runtime info) no longer load. Instead of
disabling the safety, the local-file loader of :class:`mmengine.runner.CheckpointLoader` is
replaced (patch ``mmengine-weights-only-load``) by one that keeps ``weights_only=True`` and
allows a small list of globals that are plain data. Anything else is refused with an error
that names the file, the global and how to trust that one file.

Every file this loader cannot use ends in one of the :class:`CheckpointReadError`
subclasses (unsafe, unreadable, encrypted), each naming the file and the cause, which the
``mmseg-tao`` commands report as user errors. TAO 6/7 (PyTorch Lightning) checkpoints are
decrypted here when TAO encrypted them (:mod:`mmseg_tao.models.utils.tao_encryption`) and
get the ``meta`` entry mmseg's ``init_model`` reads, so that every loading path (``load_from``,
``init_model``, ``tools/test.py``, mmdeploy) takes them; their keys are converted by the
model (``TAOEncoderDecoder``'s load hook, checkpoint layout ``tao6``).
"""
import os
import os.path as osp
import pickle
from typing import Callable, Iterable, List, Optional, Set, Tuple, Union

import numpy as np
import torch

from .registry import Patch, register

TRUST_ENV = 'MMSEG_TAO_TRUSTED_CHECKPOINTS'

_trusted: Set[str] = set()


class CheckpointReadError(Exception):
    """A checkpoint file that cannot be used as it is; the message names the file and
    the cause (a user error, reported without a traceback by the ``mmseg-tao`` commands)."""


class UnsafeCheckpointError(CheckpointReadError, pickle.UnpicklingError):
    """A checkpoint needs globals outside the allowlist and was not trusted."""


class UnreadableCheckpointError(CheckpointReadError, ValueError):
    """Not a PyTorch checkpoint, or a truncated / corrupted one."""


class EncryptedCheckpointError(CheckpointReadError, ValueError):
    """A checkpoint encrypted by TAO that cannot be decrypted here (no codec or no key)."""


def _numpy_globals() -> List[Callable]:
    """numpy objects that pickles of arrays, dtypes and scalars reference."""
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in np.sctypeDict.values()]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dict.fromkeys(dtype_classes)]


def _history_buffer_getattr(obj: object, name: str) -> Callable:
    """Stands in for ``builtins.getattr`` while unpickling.

    A HistoryBuffer pickles its statistics table as ``getattr(HistoryBuffer, 'min')``
    etc. A general ``getattr`` would let a pickle reach any attribute (and from there,
    code), so only lookups of registered HistoryBuffer statistics are answered.
    """
    from mmengine.logging import HistoryBuffer

    # The built-in statistics are registered on the first HistoryBuffer() only, which a
    # fresh process loading a checkpoint may not have made yet.
    statistics = {'min', 'max', 'mean', 'current', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in statistics:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__qualname__", type(obj).__name__)}, {name!r}) is not '
        'allowed: only HistoryBuffer statistics may be looked up')


def safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The allowlist: data-only classes found in mmengine / mmseg checkpoints."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
            *_numpy_globals()]


def trust_checkpoint(path: str) -> None:
    """Allow full unpickling (``weights_only=False``) for this one file.

    Only for files whose origin you trust: unpickling can run arbitrary code.
    The environment variable ``MMSEG_TAO_TRUSTED_CHECKPOINTS`` (paths separated by
    ``os.pathsep``) does the same from the command line.
    """
    _trusted.add(osp.realpath(osp.expanduser(path)))


def _is_trusted(path: str) -> bool:
    from_env = [p for p in os.environ.get(TRUST_ENV, '').split(os.pathsep) if p]
    real = osp.realpath(path)
    return real in _trusted or any(
        real == osp.realpath(osp.expanduser(p)) for p in from_env)


def _unsafe_globals(path: str, allowed: Iterable) -> List[str]:
    names = {g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
             for g in allowed}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - only used to improve the message
        return []
    return [g for g in found if g not in names]


def load_checkpoint_file(filename: str,
                         map_location: Optional[object] = None) -> object:
    """``torch.load`` a local checkpoint with ``weights_only=True`` and the allowlist.

    Args:
        filename (str): Path of the checkpoint file.
        map_location: Passed to :func:`torch.load`.

    Raises:
        FileNotFoundError: The file does not exist.
        UnsafeCheckpointError: The file needs a global outside the allowlist and was not
            trusted with :func:`trust_checkpoint`.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    _check_format(filename)
    return _tao_lightning_checkpoint(_load(filename, map_location), filename)


def _load(filename: str, map_location: Optional[object]) -> object:
    allowed = safe_globals()
    try:
        if _is_trusted(filename):
            return torch.load(filename, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(allowed):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        _refuse(filename, err, allowed)
    except (RuntimeError, EOFError) as err:
        # torch's zip reader (central directory missing) or a pickle stream that ends early.
        detail = str(err).split('. ')[0] or type(err).__name__
        raise UnreadableCheckpointError(
            f'checkpoint {filename!r} cannot be read: the file is truncated or corrupted '
            f'({detail})') from None


# The first bytes of what torch.save writes: a zip archive, or (before torch 1.6) a pickle.
_TORCH_MAGIC = (b'PK\x03\x04', b'\x80')


def _check_format(filename: str) -> None:
    """Refuse a file that is no torch checkpoint at all (JSON, an image, random bytes...)
    before unpickling it, with what it starts with."""
    if filename.endswith('.safetensors'):
        return
    with open(filename, 'rb') as f:
        head = f.read(16)
    if not head:
        raise UnreadableCheckpointError(f'checkpoint {filename!r} is an empty file')
    if not head.startswith(_TORCH_MAGIC):
        raise UnreadableCheckpointError(
            f'{filename!r} is not a PyTorch checkpoint (torch.save writes a zip archive or a '
            f'pickle; this file starts with {head!r})')


def _refuse(filename: str, err: pickle.UnpicklingError, allowed: Iterable) -> None:
    """Raise :class:`UnsafeCheckpointError` naming the globals the pickle needs."""
    unsafe = _unsafe_globals(filename, allowed)
    if unsafe:
        what = (f'it needs {", ".join(unsafe)}, which is not on the list of data-only '
                'globals mmseg_tao allows')
    else:
        lines = [line for line in str(err).splitlines() if line.strip()]
        detail = lines[-2] if len(lines) > 1 else lines[0]
        what = f'unpickling with weights_only=True failed ({detail})'
    raise UnsafeCheckpointError(
        f'Refusing to load checkpoint {filename!r}: {what}. Loading it fully would '
        'let the file run code. If you trust this file, allow it alone: set '
        f'{TRUST_ENV}={filename} or call '
        f'mmseg_tao.compat.trust_checkpoint({filename!r}).') from None


# Lightning writes its version into every checkpoint; TAO marks an encrypted state dict.
_TAO6_MARKS = {'pytorch-lightning_version', 'state_dict_encrypted'}


def _tao_lightning_checkpoint(ckpt: object, filename: str) -> object:
    """A TAO 6/7 (Lightning) checkpoint decrypted and given the ``meta`` entry that
    mmseg's ``init_model`` reads; anything else as it is."""
    if not isinstance(ckpt, dict) or not _TAO6_MARKS & ckpt.keys():
        return ckpt
    if ckpt.get('state_dict_encrypted') or isinstance(ckpt.get('state_dict'), bytes):
        from ..models.utils.tao_encryption import decrypt_checkpoint
        ckpt = decrypt_checkpoint(ckpt, filename)
    ckpt.setdefault('meta', dict(converted_from='tao6', epoch=ckpt.get('epoch'),
                                 global_step=ckpt.get('global_step')))
    return ckpt


def _weights_only_local_loader(original: Callable) -> Callable:
    """mmengine's loader for local paths (scheme ``''``), replaced by one that keeps
    ``weights_only=True`` with the allowlist."""

    def load_from_local(filename: str, map_location: Optional[object] = None) -> object:
        return load_checkpoint_file(filename, map_location)

    return load_from_local


register(Patch(
    name='mmengine-weights-only-load',
    target="mmengine.runner.checkpoint.CheckpointLoader._schemes['']",
    reason='torch >= 2.6 loads with weights_only=True, which refuses the checkpoints '
           'mmengine itself writes (HistoryBuffer, numpy scalars); loading them with an '
           'allowlist of data-only globals instead of turning weights_only off',
    versions='mmengine >=0.10,<0.11 on torch >= 2.6',
    wrap=_weights_only_local_loader))
