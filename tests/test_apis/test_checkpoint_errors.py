"""A checkpoint the user got wrong ends ``mmseg-tao evaluate | inference | export | train``
with exit status 2 and one message naming the file and the cause, never a traceback:
an unsafe pickle (whose code must not run), a truncated file, files that are no
checkpoint, another model's state dict, a TAO-encrypted file without NVIDIA's codec, and
another backbone's checkpoint (as the task's checkpoint, ``train.pretrained_model_path``
or ``model.backbone.pretrained_backbone_path``)."""
import os
import pickle
import sys

import pytest
import torch
from test_tao6_checkpoints import make_tao6_data, tao6_spec

from mmseg_tao.cli import main
from test_models.test_utils.test_tao6_layout import lightning_checkpoint

pytestmark = pytest.mark.slow  # 33 task runs (each stops at the checkpoint, in seconds)


class RunsCode:
    """Unpickling this runs a shell command (what a malicious checkpoint would do)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command, ))


def _write(kind: str, path, marker) -> None:
    if kind == 'unsafe':
        torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': RunsCode(f'touch {marker}')},
                   path)
    elif kind == 'truncated':
        torch.save(lightning_checkpoint('mit_b0'), path)
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 3])
    elif kind == 'json':
        path.write_text('{"state_dict": {"backbone.patch_embed1.proj.weight": [0.5]}}')
    elif kind == 'random':
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == 'unrelated':  # a classification network's weights
        torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7), 'fc.weight': torch.zeros(10, 64),
                    'fc.bias': torch.zeros(10)}, path)
    elif kind == 'encrypted':  # what TAO 6/7 writes with an encryption_key
        torch.save({'epoch': 0, 'global_step': 2, 'pytorch-lightning_version': '2.6.1',
                    'state_dict': os.urandom(4096), 'state_dict_encrypted': 'aes-ctr'}, path)
    elif kind == 'other_backbone':  # TAO 7's fan_tiny file for a mit_b0 spec
        torch.save(lightning_checkpoint('fan_tiny_8_p4_hybrid'), path)
    elif kind == 'not_tensors':
        torch.save({'state_dict': {'backbone.patch_embed1.proj.weight': 'text'}}, path)


MESSAGES = {
    'unsafe': 'Refusing to load checkpoint',
    'truncated': 'is truncated or corrupted',
    'json': 'is not a PyTorch checkpoint',
    'random': 'is not a PyTorch checkpoint',
    'unrelated': 'unrecognised checkpoint layout',
    'encrypted': "is encrypted by TAO (state_dict_encrypted='aes-ctr'); decrypting needs "
                 "NVIDIA's nvidia-eff package",
    'other_backbone': 'likely cause: the backbone differs from model.backbone.type (the '
                      'checkpoint looks like a FAN hybrid',
    'not_tensors': "not a state dict: entry 'backbone.patch_embed1.proj.weight' is a str",
}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_tao6_data(tmp_path_factory.mktemp('errors') / 'data', n_train=2, n_val=2)


@pytest.fixture(autouse=True)
def no_eff(monkeypatch):
    monkeypatch.setitem(sys.modules, 'eff', None)  # NVIDIA's codec is not installed


@pytest.fixture(autouse=True)
def fresh_loggers():
    """Each command as in its own process: no logger of an earlier run in this process
    writing to that test's (closed) captured stderr."""
    from mmengine.logging import MMLogger
    MMLogger._instance_dict.clear()
    yield
    MMLogger._instance_dict.clear()


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize('kind', sorted(MESSAGES))
@pytest.mark.parametrize('task', ['evaluate', 'inference', 'export', 'train'])
def test_bad_checkpoint_exits_2_with_one_message(task, kind, data, tmp_path, capsys):
    ckpt = tmp_path / f'{kind}.pth'
    marker = tmp_path / 'code_ran'
    _write(kind, ckpt, marker)
    extra = dict(pretrained_model_path=str(ckpt)) if task == 'train' else {}
    spec = tao6_spec(tmp_path / 'spec.yaml', data, str(ckpt), **extra)
    code, err = _run([task, '-e', spec], capsys)
    assert code == 2, err[-3000:]
    assert 'Traceback' not in err
    lines = [line for line in err.splitlines() if line.startswith(f'mmseg-tao {task}: ')]
    assert len(lines) == 1, err[-3000:]
    assert MESSAGES[kind] in err and str(ckpt) in err
    assert not marker.exists()  # the pickle's command never ran


def test_pretrained_backbone_of_another_backbone(data, tmp_path, capsys):
    """``pretrained_backbone_path`` loads strictly: fan_tiny weights for a mit_b0 spec."""
    ckpt = tmp_path / 'fan.pth'
    torch.save(lightning_checkpoint('fan_tiny_8_p4_hybrid'), ckpt)
    spec = tao6_spec(tmp_path / 'spec.yaml', data, str(ckpt))
    code, err = _run(['train', '-e', spec,
                      f'model.backbone.pretrained_backbone_path={ckpt}'], capsys)
    assert code == 2 and "Traceback" not in err, err[-3000:]
    assert f'{ckpt} (tao6 layout) does not fit MixTransformer' in err
    assert 'likely cause: the checkpoint is of another backbone' in err


def test_unsafe_pickle_payload_is_a_real_threat(tmp_path):
    """The unsafe file really would run its command if unpickled fully (so the test above
    shows it was not)."""
    marker = tmp_path / 'code_ran'
    data = pickle.dumps(RunsCode(f'touch {marker}'))
    pickle.loads(data)  # what torch.load(weights_only=False) would do
    assert marker.exists()
