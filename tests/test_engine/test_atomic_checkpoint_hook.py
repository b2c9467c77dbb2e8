"""AtomicCheckpointHook's max_keep_ckpts: the newest N complete checkpoints stay on disk
(also across a resume, and when N is lowered on resume), the one ``last_checkpoint`` names
is never deleted, nothing is deleted before a new checkpoint exists, and leftover
``.partial`` files go. TAO 6/7's names (Lightning's rule, written out) and layout (plain
data that TAO loads with ``weights_only``), saved at interval multiples, pruned and
resumed from."""
import os
import re
from types import SimpleNamespace

import pytest
import torch

import mmseg_tao  # noqa: F401  (registers the hook)
from mmseg_tao.engine.hooks import AtomicCheckpointHook
from toy_runner import ToyDataset, build_runner


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


# --------------------------------------------------------------------------- TAO 6/7 names
TAO_TEMPLATE = 'model_epoch_{epoch:03d}_step_{step:05d}.pth'


def lightning_name(filename: str, metrics: dict, equals: str = '_', ext: str = '.pth') -> str:
    """Lightning 2.6.1's ``ModelCheckpoint._format_checkpoint_name`` with
    ``auto_insert_metric_name=True`` (src/lightning/pytorch/callbacks/model_checkpoint.py),
    written out: each ``{name...}`` becomes ``name<CHECKPOINT_EQUALS_CHAR>{name...}``, then
    ``str.format`` with the metrics; ``FILE_EXTENSION`` appended. TAO 6/7 sets
    ``CHECKPOINT_EQUALS_CHAR='_'`` and ``FILE_EXTENSION='.pth'``."""
    groups = sorted(re.findall(r'(\{.*?)[:\}]', filename), key=len, reverse=True)
    for group in groups:
        name = group[1:]
        filename = filename.replace(group, name + equals + '{' + name)
        filename = filename.replace(group, f'{{0[{name}]')
    return filename.format(metrics) + ext


def test_tao_names_are_lightnings():
    """TAO's ``filename='model_{epoch:03d}_{step:05d}'``: the save after the 2nd epoch of 3
    iterations is Lightning's ``current_epoch`` 1 (0-based, the epoch just finished: saved
    in on_train_epoch_end before the epoch counter advances) and ``global_step`` 6 (optimizer
    steps) -> ``model_epoch_001_step_00006.pth``; mmengine records that save as
    meta epoch 2 (epochs done), iter 6. A save every 4 steps during the 2nd epoch: Lightning
    epoch 1, step 4; mmengine meta epoch 1 (in progress), iter 4."""
    from mmseg_tao.engine.checkpoint_files import checkpoint_name
    assert lightning_name('model_{epoch:03d}_{step:05d}', dict(epoch=1, step=6)) == \
        'model_epoch_001_step_00006.pth'
    assert checkpoint_name(TAO_TEMPLATE, 2, dict(epoch=2, iter=6), by_epoch=True) == \
        'model_epoch_001_step_00006.pth'
    assert checkpoint_name(TAO_TEMPLATE, 4, dict(epoch=1, iter=4), by_epoch=False) == \
        lightning_name('model_{epoch:03d}_{step:05d}', dict(epoch=1, step=4)) == \
        'model_epoch_001_step_00004.pth'
    assert checkpoint_name('iter_{}.pth', 7, dict(epoch=0, iter=7), by_epoch=False) == \
        'iter_7.pth'


def _tao_names(work):
    return sorted(n for n in os.listdir(work) if n.startswith('model_epoch_'))


def _train_epochs(work, max_epochs, max_keep_ckpts=-1, resume_from=None, **hook):
    """The toy model by epochs of 8 iterations (32 samples, batch 4), checkpoints named as
    TAO's every 2 epochs."""
    torch.manual_seed(0)
    kwargs = dict(load_from=str(resume_from), resume=True) if resume_from else {}
    runner = build_runner(
        work, max_iters=8 * max_epochs, experiment_name=f'epochs_{max_epochs}',
        train_cfg=dict(type='TAOEpochBasedTrainLoop', max_epochs=max_epochs),
        train_dataloader=dict(dataset=ToyDataset(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True, seed=0)),
        default_hooks=dict(checkpoint=dict(
            type='AtomicCheckpointHook', by_epoch=True, interval=2, save_last=False,
            max_keep_ckpts=max_keep_ckpts, filename_tmpl=TAO_TEMPLATE,
            latest_name='segformer_model_latest.pth', **hook)), **kwargs)
    runner.train()
    return runner


def test_tao_names_saved_at_multiples_and_pruned(tmp_path):
    """5 epochs, every 2: after epochs 2 and 4 only (no save at the end, save_last false);
    max_keep_ckpts 1 prunes by the steps in the names; latest is the newest."""
    _train_epochs(tmp_path, 5, max_keep_ckpts=1)
    assert _tao_names(tmp_path) == ['model_epoch_003_step_00032.pth']
    assert _last(tmp_path) == str(tmp_path / 'model_epoch_003_step_00032.pth')
    assert os.path.samefile(tmp_path / 'segformer_model_latest.pth',
                            tmp_path / 'model_epoch_003_step_00032.pth')


def test_tao_names_resume(tmp_path):
    """Auto-resume's choice (the newest TAO name) continues at its epoch."""
    from mmseg_tao.engine import find_resume_checkpoint
    _train_epochs(tmp_path, 2)
    latest = find_resume_checkpoint(str(tmp_path))
    assert latest == str(tmp_path / 'model_epoch_001_step_00016.pth')
    runner = _train_epochs(tmp_path, 4, resume_from=latest)
    assert (runner.epoch, runner.iter) == (4, 32)
    assert _tao_names(tmp_path) == ['model_epoch_001_step_00016.pth',
                                    'model_epoch_003_step_00032.pth']


def test_tao6_layout_needs_a_model_tao_names(tmp_path):
    """layout='tao6' with a model TAO 6/7 has no names for fails before training, not at
    the first save."""
    with pytest.raises(ValueError, match='have no TAO 6/7 name'):
        _train_epochs(tmp_path, 2, layout='tao6')
    assert _tao_names(tmp_path) == []


def test_find_resume_checkpoint_reads_both_names(tmp_path):
    from mmseg_tao.engine import find_resume_checkpoint
    for name in ('iter_10.pth', 'model_epoch_003_step_00012.pth',
                 'model_epoch_004_step_00015.pth', 'segformer_model_latest.pth'):
        _fake_ckpt(tmp_path / name)
    (tmp_path / 'model_epoch_005_step_00018.pth').write_bytes(b'truncated')
    assert find_resume_checkpoint(str(tmp_path)) == str(
        tmp_path / 'model_epoch_004_step_00015.pth')
    _fake_ckpt(tmp_path / 'iter_16.pth')
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_16.pth')


def test_tao6_layout_is_plain_data(tmp_path):
    """A checkpoint in TAO 6/7's layout: Lightning's entries and TAO's model.* keys, which
    TAO 7 (torch >= 2.6) loads with weights_only=True, here in a process without mmengine;
    mmengine's resume state (logged scalars included) comes back when it is loaded."""
    import subprocess
    import sys

    import numpy as np
    from mmengine.logging import HistoryBuffer

    from mmseg_tao.engine.checkpoint_files import restore_plain_state, to_tao6_layout
    from model_utils import tiny_segmentor
    model = tiny_segmentor('mit_b0', perturbed=False)
    buffer = HistoryBuffer([0.5, 0.25], [1, 1])
    ckpt = dict(meta=dict(epoch=2, iter=6, seed=np.int64(3)),
                state_dict=model.state_dict(), optimizer={'state': {}, 'param_groups': []},
                message_hub=dict(log_scalars={'train/loss': buffer},
                                 runtime_info={'iter': np.int64(6)}, resumed_keys={}))
    to_tao6_layout(ckpt, by_epoch=True)
    assert (ckpt['epoch'], ckpt['global_step']) == (1, 6)
    assert all(k.startswith('model.') for k in ckpt['state_dict'])
    path = tmp_path / 'model_epoch_001_step_00006.pth'
    torch.save(ckpt, path)
    code = ('import sys, torch; c = torch.load(sys.argv[1], weights_only=True); '
            "assert 'mmengine' not in sys.modules; print(sorted(c))")
    run = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["['epoch',", "'global_step',", "'message_hub',", "'meta',",
                                  "'optimizer',", "'pytorch-lightning_version',",
                                  "'state_dict']"]
    loaded = restore_plain_state(torch.load(path, weights_only=True))
    restored = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(restored, HistoryBuffer)
    assert [x.tolist() for x in restored.data] == [[0.5, 0.25], [1, 1]]
    assert loaded['meta'] == dict(epoch=2, iter=6, seed=3)
