"""Checkpoints under torch >= 2.6 with weights_only kept on."""
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

import mmseg_tao  # noqa: F401  (applies the compat fixes)
from mmseg_tao.compat import UnsafeCheckpointError, trust_checkpoint
from toy_runner import ToyModel, build_runner


class LrRecorder(Hook):

    def __init__(self):
        self.lrs = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs[runner.iter] = runner.optim_wrapper.get_lr()['lr'][0]


@pytest.fixture(scope='module')
def runner_ckpt(tmp_path_factory):
    """An uninterrupted 6-iteration run: its work dir, final weights and lr per iter."""
    work_dir = tmp_path_factory.mktemp('run')
    lrs = LrRecorder()
    runner = build_runner(work_dir, max_iters=6, custom_hooks=[lrs])
    runner.train()
    return work_dir, runner.model.state_dict(), lrs.lrs


def test_runner_checkpoint_needs_more_than_plain_weights(runner_ckpt):
    work_dir = runner_ckpt[0]
    path = osp.join(work_dir, 'iter_3.pth')
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    # What makes mmengine checkpoints fail under torch's weights_only default.
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    # ... and what mmengine's own loader (patched) reads with weights_only on.
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['meta']['iter'] == 3
    assert set(ckpt) >= {'meta', 'state_dict', 'optimizer', 'param_schedulers',
                         'message_hub'}


class StateRecorder(Hook):
    """Records what the runner holds when training (re)starts."""

    def before_train(self, runner):
        self.iter = runner.iter
        self.state_dict = {k: v.clone() for k, v in runner.model.state_dict().items()}
        self.opt_step = int(runner.optim_wrapper.optimizer.state_dict()['state'][0]['step'])
        self.lr = runner.optim_wrapper.get_lr()['lr'][0]


def test_resume_continues_from_saved_iteration(runner_ckpt, tmp_path):
    work_dir, final_state, lrs = runner_ckpt
    path = osp.join(work_dir, 'iter_3.pth')
    saved = torch.load(path, weights_only=False)  # trusted: written by this test
    recorder = StateRecorder()
    runner = build_runner(tmp_path, max_iters=6, resume=True, load_from=path,
                          custom_hooks=[recorder])
    runner.train()

    # Resumed state is the saved one ...
    assert recorder.iter == 3
    for k, v in saved['state_dict'].items():
        torch.testing.assert_close(recorder.state_dict[k], v)
    assert int(recorder.opt_step) == int(saved['optimizer']['state'][0]['step']) == 3
    # ... the poly schedule resumes where it was ...
    assert lrs[3] < lrs[2] < lrs[0]
    assert recorder.lr == pytest.approx(lrs[3], rel=1e-9)
    # ... and training continues to max_iters, ending where an uninterrupted run ends.
    assert runner.iter == 6
    assert osp.isfile(osp.join(tmp_path, 'iter_6.pth'))
    assert not osp.exists(osp.join(tmp_path, 'iter_3.pth'))
    for k, v in final_state.items():
        torch.testing.assert_close(runner.model.state_dict()[k], v)


@pytest.mark.slow  # a fresh interpreter
def test_runner_checkpoint_loads_in_a_fresh_process(runner_ckpt):
    """No HistoryBuffer exists yet there (its statistics are registered lazily)."""
    path = osp.join(runner_ckpt[0], 'iter_3.pth')
    code = ('import mmseg_tao; from mmengine.runner.checkpoint import _load_checkpoint; '
            f'print(_load_checkpoint({path!r})["meta"]["iter"])')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == '3'


def test_plain_weight_file_loads(tmp_path):
    src = ToyModel()
    path = str(tmp_path / 'weights.pth')
    torch.save(src.state_dict(), path)
    dst = ToyModel()
    load_checkpoint(dst, path, map_location='cpu', strict=True)
    torch.testing.assert_close(dst.linear.weight, src.linear.weight)


class _Payload:
    """Unpickling this would create a file (stand-in for any code execution)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_crafted_checkpoint_is_refused_and_payload_does_not_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _Payload(str(marker))}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        _load_checkpoint(path, map_location='cpu')
    msg = str(err.value)
    assert path in msg and 'io.open' in msg  # the global the pickle names
    assert 'MMSEG_TAO_TRUSTED_CHECKPOINTS' in msg
    assert not marker.exists()


class Extra:
    """A harmless class that is not on the allowlist."""

    def __init__(self, value=1):
        self.value = value


def test_trusted_file_opt_in(tmp_path, monkeypatch):
    path = str(tmp_path / 'custom.pth')
    other = str(tmp_path / 'other.pth')
    torch.save({'extra': Extra(7)}, path)
    torch.save({'extra': Extra(8)}, other)
    with pytest.raises(UnsafeCheckpointError, match='Extra'):
        _load_checkpoint(path, map_location='cpu')
    monkeypatch.setenv('MMSEG_TAO_TRUSTED_CHECKPOINTS', path)
    assert _load_checkpoint(path, map_location='cpu')['extra'].value == 7
    # Trust is per file.
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(other, map_location='cpu')
    monkeypatch.delenv('MMSEG_TAO_TRUSTED_CHECKPOINTS')
    trust_checkpoint(other)
    assert _load_checkpoint(other, map_location='cpu')['extra'].value == 8


def test_missing_file_message(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


@pytest.mark.parametrize('kind, message', [
    ('truncated', 'is truncated or corrupted'),
    ('json', "is not a PyTorch checkpoint (torch.save writes a zip archive or a pickle; this "
             "file starts with b'{\"state_dict\": {'"),
    ('random', 'is not a PyTorch checkpoint'),
    ('empty', 'is an empty file'),
])
def test_unreadable_files_are_named_as_such(kind, message, tmp_path):
    """Not refused as unsafe (which would suggest trusting them): said what they are."""
    from mmseg_tao.compat.checkpoint import CheckpointReadError, UnreadableCheckpointError
    path = tmp_path / f'{kind}.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, path)
    data = path.read_bytes()
    path.write_bytes({'truncated': data[:len(data) // 2], 'json': b'{"state_dict": {}}',
                      'random': bytes(range(7, 250)), 'empty': b''}[kind])
    with pytest.raises(UnreadableCheckpointError) as err:
        _load_checkpoint(str(path), map_location='cpu')
    assert str(path) in str(err.value) and message in str(err.value)
    assert isinstance(err.value, (CheckpointReadError, ValueError))
    assert 'MMSEG_TAO_TRUSTED_CHECKPOINTS' not in str(err.value)


def test_lightning_checkpoint_gets_meta(tmp_path):
    """TAO 6/7 (Lightning) files have no ``meta``, which mmseg's init_model reads."""
    path = str(tmp_path / 'segformer_model_latest.pth')
    torch.save({'epoch': 4, 'global_step': 10, 'pytorch-lightning_version': '2.6.1',
                'state_dict': {'model.backbone.w': torch.zeros(1)}}, path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['meta'] == dict(converted_from='tao6', epoch=4, global_step=10)
