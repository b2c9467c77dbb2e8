"""TAO 6/7 encrypted checkpoints: the key, NVIDIA's codec, and a safe read of the result.

When a spec sets ``encryption_key`` (NVIDIA's example specs do), TAO 6/7 saves the
Lightning checkpoint with ``state_dict`` replaced by the encrypted bytes of the pickled
state dict and ``state_dict_encrypted`` naming the cipher. TAO decrypts with
``eff.codec.decrypt_stream`` (NVIDIA's ``nvidia-eff`` package) and the key, then unpickles
the result. :func:`decrypt_checkpoint` makes the same calls, but unpickles with an
allowlist (tensors and ordered dicts; no code runs); without the codec or the key it
raises :class:`EncryptedCheckpointError` naming what is missing.

The key comes from the spec's top-level ``encryption_key`` (the ``mmseg-tao`` tasks call
:func:`set_encryption_key`) or the environment variable ``MMSEG_TAO_ENCRYPTION_KEY`` (for
``tools/test.py``, ``init_model`` and mmdeploy). It is never written into configs or logs.
"""
import io
import os
import pickle
import sys
from collections import OrderedDict
from typing import Callable, Dict, Mapping, Optional, Tuple

import torch

from ...compat.checkpoint import EncryptedCheckpointError, UnsafeCheckpointError

ENCRYPTION_KEY_ENV = 'MMSEG_TAO_ENCRYPTION_KEY'
EFF_HINT = ("NVIDIA's nvidia-eff package (module eff.codec: pip install nvidia-eff "
            'nvidia-eff-tao-encryption; NVIDIA publishes wheels for some Python versions '
            'only, e.g. 3.8 and 3.10)')

_key: Dict[str, Optional[str]] = {'value': None}


def set_encryption_key(key: Optional[str]) -> None:
    """Use ``key`` to decrypt TAO checkpoints in this process (None: forget it)."""
    _key['value'] = key or None


def get_encryption_key() -> Optional[str]:
    """The key set by :func:`set_encryption_key`, else ``$MMSEG_TAO_ENCRYPTION_KEY``."""
    return _key['value'] or os.environ.get(ENCRYPTION_KEY_ENV) or None


def is_encrypted(ckpt: Mapping) -> bool:
    """Whether ``ckpt`` holds a TAO-encrypted state dict (after decryption TAO sets
    ``state_dict_encrypted`` to False)."""
    return bool(ckpt.get('state_dict_encrypted')) or isinstance(ckpt.get('state_dict'),
                                                                 (bytes, bytearray))


def _storage_from_bytes(data: bytes) -> object:
    """Stands in for ``torch.storage._load_from_bytes`` (which loads with
    ``weights_only=False``): the storage bytes inside a pickled tensor, read safely."""
    return torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)


# What ``pickle.dumps(state_dict)`` of tensors references, and nothing else.
_PAYLOAD_GLOBALS: Dict[Tuple[str, str], Callable] = {
    ('collections', 'OrderedDict'): OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
    ('torch.storage', '_load_from_bytes'): _storage_from_bytes,
}


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles tensors and dicts; any other global is refused."""

    def __init__(self, data: bytes, filename: str):
        super().__init__(io.BytesIO(data))
        self.filename = filename

    def find_class(self, module: str, name: str) -> Callable:
        found = _PAYLOAD_GLOBALS.get((module, name))
        if found is None:
            raise UnsafeCheckpointError(
                f'Refusing to load the decrypted state dict of {self.filename!r}: it needs '
                f'{module}.{name}; a state dict holds tensors only, and unpickling other '
                'globals would let the file run code.')
        return found


def load_pickled_state_dict(data: bytes, filename: str) -> dict:
    """A state dict from ``pickle.dumps(state_dict)`` bytes, without running code.

    Raises:
        UnsafeCheckpointError: The pickle needs a global other than tensors' and dicts'.
        pickle.UnpicklingError: The bytes are no pickle (e.g. decrypted with a wrong key).
    """
    try:
        state = _StateDictUnpickler(data, filename).load()
    except UnsafeCheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure means "not a pickle"
        raise pickle.UnpicklingError(f'{type(err).__name__}: {err}') from None
    if not isinstance(state, Mapping):
        raise pickle.UnpicklingError(f'a {type(state).__name__}, not a state dict')
    return state


def decrypt_checkpoint(ckpt: Mapping, filename: str,
                       key: Optional[str] = None) -> dict:
    """``ckpt`` with its state dict decrypted as TAO does (``eff.codec.decrypt_stream``
    with the cipher named by ``state_dict_encrypted``), read without running code.

    Args:
        ckpt: The checkpoint dict as ``torch.load`` returned it.
        filename: The file it came from, for messages.
        key: The passphrase; default :func:`get_encryption_key`.

    Raises:
        EncryptedCheckpointError: No codec, no key, or the key does not decrypt it.
    """
    cipher = ckpt.get('state_dict_encrypted')
    what = f'checkpoint {filename!r} is encrypted by TAO (state_dict_encrypted={cipher!r})'
    key = key or get_encryption_key()
    try:
        from eff.codec import decrypt_stream
    except ImportError:
        raise EncryptedCheckpointError(
            f'{what}; decrypting needs {EFF_HINT} (not importable in Python '
            f'{sys.version_info.major}.{sys.version_info.minor} here) and the key it was '
            "saved with (the spec's top-level encryption_key, or "
            f'{ENCRYPTION_KEY_ENV}). Or decrypt it where TAO runs.') from None
    if not key:
        raise EncryptedCheckpointError(
            f"{what}; decrypting needs the key it was saved with: set the spec's top-level "
            f"encryption_key (NVIDIA's example specs use 'tlt_encode') or "
            f'{ENCRYPTION_KEY_ENV}')
    if not isinstance(ckpt.get('state_dict'), (bytes, bytearray)) or not cipher:
        raise EncryptedCheckpointError(f'{what}, but its state_dict is a '
                                       f'{type(ckpt.get("state_dict")).__name__} and the '
                                       'cipher is not named: the file is damaged')
    plain = io.BytesIO()
    try:
        decrypt_stream(input_stream=io.BytesIO(ckpt['state_dict']), output_stream=plain,
                       passphrase=key, encryption=cipher)
        state = load_pickled_state_dict(plain.getvalue(), filename)
    except UnsafeCheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - the codec's errors are not documented
        raise EncryptedCheckpointError(
            f'{what}; it does not decrypt with the given encryption_key (a wrong key?): '
            f'{type(err).__name__}: {err}') from None
    return dict(ckpt, state_dict=state, state_dict_encrypted=False)
