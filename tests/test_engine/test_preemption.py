"""PreemptionHook in one process: a SIGTERM stops training after the iteration with its
checkpoint (a second SIGTERM during the save changes nothing), and the resumed run reaches
the weights of an uninterrupted one, because the torch generator (dropout) is restored."""
import os
import os.path as osp
import signal

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel

import mmseg_tao  # noqa: F401
from mmseg_tao.engine import is_complete_checkpoint
from mmseg_tao.engine.hooks import Preempted, PreemptionHook
from toy_runner import ToyDataset, build_runner

MAX_ITERS = 9


class DropoutToy(BaseModel):
    """A regression model with dropout: its result depends on the torch generator."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 1))

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.net(torch.stack(inputs) if isinstance(inputs, list) else inputs)
        if mode == 'loss':
            targets = torch.stack(targets) if isinstance(targets, list) else targets
            return dict(loss=((out - targets)**2).mean())
        return out


class SignalAt(Hook):
    """Send ``signum`` to this process after iteration ``at`` (1-based)."""
    priority = 'NORMAL'  # before PreemptionHook looks at the flag in the same iteration

    def __init__(self, at: int, signum=signal.SIGTERM):
        self.at, self.signum, self.sent = at, signum, False

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), self.signum)
            self.sent = True


def _runner(work_dir, *hooks, **kwargs):
    torch.manual_seed(0)
    return build_runner(
        work_dir, MAX_ITERS, model=DropoutToy(),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', interval=3,
                                           by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[*hooks], **kwargs)


def _weights(runner) -> dict:
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    runner = _runner(tmp_path_factory.mktemp('reference'), PreemptionHook())
    runner.train()
    return _weights(runner)


@pytest.mark.parametrize('at', [4, 6])  # between checkpoints, and on one
def test_sigterm_stops_with_a_checkpoint_and_resumes_to_the_same_weights(tmp_path, reference,
                                                                         at, monkeypatch):
    work = tmp_path / 'work'
    before = signal.getsignal(signal.SIGTERM)
    first = SignalAt(at)
    runner = _runner(work, PreemptionHook(), first)
    # A second SIGTERM arrives in the middle of writing the preemption's checkpoint.
    save = torch.save
    seen = []

    def save_signalled(obj, f, *args, **kwargs):
        if first.sent:
            seen.append(obj['meta']['iter'])
            os.kill(os.getpid(), signal.SIGTERM)
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', save_signalled)
    with pytest.raises(Preempted) as stop:
        runner.train()
    monkeypatch.setattr(torch, 'save', save)
    checkpoint = str(work / f'iter_{at}.pth')
    assert (stop.value.signame, stop.value.iteration, stop.value.checkpoint) == \
        ('SIGTERM', at, checkpoint)
    assert stop.value.status_fields() == dict(preempted=True, signal='SIGTERM', cur_iter=at,
                                              checkpoint=checkpoint)
    # A SystemExit of EX_TEMPFAIL (sysexits.h: 75): a script that does not catch it (mmseg's
    # tools/train.py) exits with the status a requeue script tests for, not 1.
    assert isinstance(stop.value, SystemExit) and stop.value.code == 75
    assert is_complete_checkpoint(checkpoint) and seen == [at]  # one save, signalled
    assert not [n for n in os.listdir(work) if n.endswith('.partial')]
    assert signal.getsignal(signal.SIGTERM) is before  # handlers put back
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == at and len(ckpt['rng_states']) == 1

    resumed = _runner(work, PreemptionHook(), load_from=checkpoint, resume=True)
    resumed.train()
    assert resumed.iter == MAX_ITERS
    assert _max_diff(_weights(resumed), reference) == 0
    # Without the generator restored, dropout draws other masks: the check can fail.
    other = _runner(tmp_path / 'other', PreemptionHook(restore_rng=False),
                    load_from=checkpoint, resume=True)
    other.train()
    assert _max_diff(_weights(other), reference) > 1e-4


def test_a_signal_at_the_last_iteration_lets_the_run_finish(tmp_path, reference):
    runner = _runner(tmp_path, PreemptionHook(), SignalAt(MAX_ITERS, signal.SIGUSR1))
    runner.train()
    assert runner.iter == MAX_ITERS and osp.exists(tmp_path / f'iter_{MAX_ITERS}.pth')
    assert _max_diff(_weights(runner), reference) == 0


def test_sigusr1_stops_too_and_dataset_is_untouched(tmp_path):
    runner = _runner(tmp_path, PreemptionHook(), SignalAt(2, signal.SIGUSR1))
    with pytest.raises(Preempted, match=r'preempted by SIGUSR1 after iteration 2; '
                       r'checkpoint .*iter_2\.pth written'):
        runner.train()
    assert len(ToyDataset()) == 32
