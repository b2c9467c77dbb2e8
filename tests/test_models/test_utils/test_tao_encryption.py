"""TAO 6/7 encrypted checkpoints (``state_dict_encrypted``).

NVIDIA's ``eff`` codec has no wheel for this Python, so a stand-in ``eff.codec`` with the
same calls (a keyed XOR stream) plays it: what is tested is that the loader makes TAO's
calls (``decrypt_stream(input_stream=, output_stream=, passphrase=, encryption=)``), reads
the result without running code, and says what is missing when it cannot decrypt.
"""
import hashlib
import pickle
import sys
import types

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

from mmseg_tao.compat.checkpoint import EncryptedCheckpointError, UnsafeCheckpointError
from mmseg_tao.models.utils import (
    check_checkpoint_fits,
    read_state_dict,
    set_encryption_key,
)
from mmseg_tao.models.utils.tao_encryption import ENCRYPTION_KEY_ENV
from model_utils import tiny_segmentor

CIPHER = 'stand-in-aes'


def _xor(data: bytes, passphrase: str) -> bytes:
    stream = hashlib.sha256(passphrase.encode()).digest()
    return bytes(b ^ stream[i % len(stream)] for i, b in enumerate(data))


def _codec_module(calls: list) -> types.ModuleType:
    codec = types.ModuleType('eff.codec')

    def decrypt_stream(*, input_stream, output_stream, passphrase, encryption):
        calls.append(encryption)
        assert encryption == CIPHER
        output_stream.write(_xor(input_stream.read(), passphrase))

    def encrypt_stream(*, input_stream, output_stream, passphrase, encryption):
        output_stream.write(_xor(input_stream.read(), passphrase))

    codec.decrypt_stream = decrypt_stream
    codec.encrypt_stream = encrypt_stream
    codec.get_random_encryption = lambda: CIPHER
    return codec


@pytest.fixture
def eff(monkeypatch):
    """The stand-in codec importable as ``eff.codec``; yields the ciphers it was asked for."""
    calls = []
    package = types.ModuleType('eff')
    package.codec = _codec_module(calls)
    monkeypatch.setitem(sys.modules, 'eff', package)
    monkeypatch.setitem(sys.modules, 'eff.codec', package.codec)
    yield calls
    set_encryption_key(None)


@pytest.fixture
def no_eff(monkeypatch):
    monkeypatch.setitem(sys.modules, 'eff', None)  # import eff -> ImportError
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)
    yield
    set_encryption_key(None)


def save_encrypted(path, state_dict: dict, key: str, payload: bytes = None) -> None:
    """What TAO 6/7 writes with an encryption key (checkpoint_encryption.py's steps)."""
    data = payload if payload is not None else pickle.dumps(state_dict)
    torch.save({'epoch': 0, 'global_step': 2, 'pytorch-lightning_version': '2.6.1',
                'state_dict': _xor(data, key), 'state_dict_encrypted': CIPHER}, path)


def _tao6_state(model) -> dict:
    from mmseg_tao.models.utils.checkpoint_layout import to_tao6_state_dict
    return to_tao6_state_dict(model.state_dict())


def test_decrypted_with_the_spec_key(eff, tmp_path, monkeypatch):
    src = tiny_segmentor()
    path = str(tmp_path / 'model_epoch_000_step_00002.pth')
    save_encrypted(path, _tao6_state(src), 'tlt_encode')
    set_encryption_key('tlt_encode')
    dst = tiny_segmentor(perturbed=False)
    check_checkpoint_fits(dst, path)
    load_checkpoint(dst, path, map_location='cpu', strict=True)
    assert eff == [CIPHER, CIPHER]
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    # The key may come from the environment instead (tools/test.py, init_model).
    set_encryption_key(None)
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, 'tlt_encode')
    assert len(read_state_dict(path)) == len(_tao6_state(src))


def test_without_codec_the_cause_is_named(no_eff, tmp_path):
    path = str(tmp_path / 'enc.pth')
    save_encrypted(path, {'w': torch.zeros(1)}, 'tlt_encode')
    set_encryption_key('tlt_encode')
    with pytest.raises(EncryptedCheckpointError) as err:
        _load_checkpoint(path, map_location='cpu')
    msg = str(err.value)
    assert f"checkpoint '{path}' is encrypted by TAO (state_dict_encrypted='{CIPHER}')" in msg
    assert 'nvidia-eff' in msg and 'encryption_key' in msg
    with pytest.raises(EncryptedCheckpointError):
        check_checkpoint_fits(tiny_segmentor(perturbed=False), path)


def test_without_key_or_with_a_wrong_one(eff, tmp_path, monkeypatch):
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)
    path = str(tmp_path / 'enc.pth')
    save_encrypted(path, {'w': torch.zeros(1)}, 'tlt_encode')
    with pytest.raises(EncryptedCheckpointError, match="top-level encryption_key"):
        _load_checkpoint(path, map_location='cpu')
    set_encryption_key('not-the-key')
    with pytest.raises(EncryptedCheckpointError, match='does not decrypt with the given'):
        _load_checkpoint(path, map_location='cpu')


class _Payload:
    """Unpickling this would create a file (stand-in for any code execution)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_decrypted_payload_cannot_run_code(eff, tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'enc.pth')
    evil = pickle.dumps({'w': torch.zeros(1), 'x': _Payload(str(marker))})
    save_encrypted(path, None, 'tlt_encode', payload=evil)
    set_encryption_key('tlt_encode')
    with pytest.raises(UnsafeCheckpointError, match=r'needs (io|builtins)\.open'):
        _load_checkpoint(path, map_location='cpu')
    assert not marker.exists()
    # A state dict pickled as TAO does (tensors, storages) reads without torch.load's
    # weights_only=False, which torch's own storage unpickling would use.
    good = {'a': torch.randn(2, 3), 'b': torch.arange(4)[1:], 'c': torch.ones(2).half()}
    save_encrypted(path, good, 'tlt_encode')
    out = _load_checkpoint(path, map_location='cpu')
    assert out['state_dict_encrypted'] is False and out['meta']['converted_from'] == 'tao6'
    for k, v in good.items():
        assert torch.equal(out['state_dict'][k], v) and out['state_dict'][k].dtype == v.dtype

