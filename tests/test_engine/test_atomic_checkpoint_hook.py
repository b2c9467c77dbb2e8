"""AtomicCheckpointHook's max_keep_ckpts: the newest N complete checkpoints stay on disk
(also across a resume, and when N is lowered on resume), the one ``last_checkpoint`` names
is never deleted, nothing is deleted before a new checkpoint exists, and leftover
``.partial`` files go."""
import os
import re
from types import SimpleNamespace

import torch

import mmseg_tao  # noqa: F401  (registers the hook)
from mmseg_tao.engine.hooks import AtomicCheckpointHook
from toy_runner import build_runner


def _iters(work):
    return sorted(int(m.group(1)) for m in (re.fullmatch(r'iter_(\d+)\.pth', n)
                                            for n in os.listdir(work)) if m)


def _last(work):
    with open(work / 'last_checkpoint') as f:
        return f.read()


def _train(work, max_iters, max_keep_ckpts, name, resume_from=None):
    torch.manual_seed(0)  # the toy model is built before the runner seeds
    kwargs = dict(load_from=str(resume_from), resume=True) if resume_from else {}
    runner = build_runner(work, max_iters=max_iters, experiment_name=name, default_hooks=dict(
        checkpoint=dict(type='AtomicCheckpointHook', interval=10, by_epoch=False,
                        max_keep_ckpts=max_keep_ckpts)), **kwargs)
    runner.train()
    return runner


def test_keep_one(tmp_path):
    _train(tmp_path, 40, 1, 'keep_one')
    assert _iters(tmp_path) == [40]
    assert _last(tmp_path) == str(tmp_path / 'iter_40.pth')


def test_keep_two(tmp_path):
    _train(tmp_path, 40, 2, 'keep_two')
    assert _iters(tmp_path) == [30, 40]
    assert _last(tmp_path) == str(tmp_path / 'iter_40.pth')


def test_keep_all_by_default(tmp_path):
    _train(tmp_path, 40, -1, 'keep_all')
    assert _iters(tmp_path) == [10, 20, 30, 40]


def test_checkpoints_from_before_a_resume_are_pruned(tmp_path):
    _train(tmp_path, 20, 2, 'resume_a')
    assert _iters(tmp_path) == [10, 20]
    runner = _train(tmp_path, 40, 2, 'resume_b', resume_from=tmp_path / 'iter_20.pth')
    assert runner.iter == 40
    assert _iters(tmp_path) == [30, 40]
    assert _last(tmp_path) == str(tmp_path / 'iter_40.pth')


def test_lowered_on_resume_deletes_only_after_the_next_save(tmp_path):
    _train(tmp_path, 30, 3, 'lower_a')
    assert _iters(tmp_path) == [10, 20, 30]
    # Resumed with nothing left to train: no new checkpoint, so nothing is deleted.
    _train(tmp_path, 30, 1, 'lower_b', resume_from=tmp_path / 'iter_30.pth')
    assert _iters(tmp_path) == [10, 20, 30]
    _train(tmp_path, 40, 1, 'lower_c', resume_from=tmp_path / 'iter_30.pth')
    assert _iters(tmp_path) == [40]


def test_resumed_from_an_older_checkpoint_keeps_last_checkpoint(tmp_path):
    _train(tmp_path, 40, -1, 'older_a')
    # Back to iteration 20 with max_keep_ckpts=1: the stale iter_40 is the newest, and the
    # new iter_30 (named by last_checkpoint) stays too.
    _train(tmp_path, 30, 1, 'older_b', resume_from=tmp_path / 'iter_20.pth')
    assert _last(tmp_path) == str(tmp_path / 'iter_30.pth')
    assert _iters(tmp_path) == [30, 40]


def _fake_ckpt(path):
    torch.save({'meta': {}}, path)


def test_never_deletes_what_last_checkpoint_names(tmp_path):
    for i in (10, 20, 30, 40):
        _fake_ckpt(tmp_path / f'iter_{i}.pth')
    (tmp_path / 'iter_50.pth').write_bytes(b'truncated by an older, non-atomic writer')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_10.pth'))
    hook = AtomicCheckpointHook(interval=10, by_epoch=False, max_keep_ckpts=1)
    hook.out_dir = str(tmp_path)
    hook._prune(SimpleNamespace(work_dir=str(tmp_path)))
    # The newest complete checkpoint and the one last_checkpoint names.
    assert _iters(tmp_path) == [10, 40]


def test_leftover_partial_files_are_removed(tmp_path):
    (tmp_path / '.iter_5.pth.partial').write_bytes(b'half a checkpoint')
    (tmp_path / '.notes.partial').write_bytes(b'not ours')
    _train(tmp_path, 10, -1, 'partial')
    assert _iters(tmp_path) == [10]
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.partial')) == [
        '.notes.partial']
