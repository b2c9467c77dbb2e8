"""TrainingCurvesHook: curves.png from hand-written scalars (the drawn data are the
inputs), its warnings, and a real training run that also writes TensorBoard events."""
import glob
import json
import logging
import os
import os.path as osp
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from PIL import Image

import mmseg_tao  # noqa: F401
from mmseg_tao.engine.hooks import TrainingCurvesHook, curves_hook
from mmseg_tao.engine.hooks.curves_hook import draw_curves, read_scalars, series
from mmseg_tao.spec import load_spec, spec_to_config
from seg_data import write_isbi_spec

RUN = '20240102_030405'
TRAIN = [dict(loss=0.9, lr=0.01, step=1), dict(loss=0.7, lr=0.008, step=2),
         dict(loss=0.6, lr=0.006, step=3), dict(loss=0.4, lr=0.004, step=4)]
VAL = [dict(mIoU=41.5, mAcc=50.0, aAcc=80.0, step=2), dict(mIoU=55.25, mAcc=60.0,
                                                          aAcc=85.0, step=4)]


def write_rows(work_dir, rows, run=RUN, tail=''):
    path = osp.join(str(work_dir), run, 'vis_data', 'scalars.json')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(json.dumps(r) + '\n' for r in rows) + tail)
    return path


def fake_runner(work_dir, run=RUN, iteration=4, hub_name=None):
    """What the hook reads of a Runner."""
    logger = logging.getLogger('test_curves_hook')
    logger.propagate = True  # caplog listens at the root
    return SimpleNamespace(
        work_dir=str(work_dir), log_dir=osp.join(str(work_dir), run), iter=iteration,
        logger=logger, message_hub=MessageHub.get_instance(hub_name or f'curves_{run}'))


def ordered_train_val():
    """The rows in the order LoggerHook writes them: a validation after its iteration."""
    return [TRAIN[0], TRAIN[1], VAL[0], TRAIN[2], TRAIN[3], VAL[1]]


def drawn(monkeypatch):
    """Record the figures the hook draws."""
    figures = []

    def recording(*args, **kwargs):
        figures.append(draw_curves(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(curves_hook, 'draw_curves', recording)
    return figures


def lines(fig):
    """Each panel's title and its one line's data."""
    out = []
    for ax in fig.axes:
        (line, ) = ax.lines
        out.append((ax.get_title(), list(line.get_xdata()), list(line.get_ydata())))
    return out


def test_registered_with_defaults():
    hook = HOOKS.build(dict(type='TrainingCurvesHook'))
    assert isinstance(hook, TrainingCurvesHook)
    assert (hook.filename, hook.keys) == ('curves.png', ('loss', 'lr', 'mIoU'))


def test_panels_hold_the_logged_values(tmp_path, monkeypatch):
    write_rows(tmp_path, ordered_train_val())
    figures = drawn(monkeypatch)
    runner = fake_runner(tmp_path)
    TrainingCurvesHook().after_train(runner)

    (fig, ) = figures
    (loss, lr, miou) = lines(fig)
    assert loss == ('loss (last 0.4)', [1, 2, 3, 4], [0.9, 0.7, 0.6, 0.4])
    assert lr == ('lr (last 0.004)', [1, 2, 3, 4], [0.01, 0.008, 0.006, 0.004])
    assert miou == ('mIoU (best 55.25 at iteration 4)', [2, 4], [41.5, 55.25])
    for ax, key in zip(fig.axes, ('loss', 'lr', 'mIoU')):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ('iteration', key)
    # The image beside status.json: 8 x 2.6 inches per panel at 100 dpi, no temporary left.
    with Image.open(tmp_path / 'curves.png') as img:
        img.load()
        assert (img.format, img.size) == ('PNG', (800, 780))
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN, 'curves.png']


def test_no_validation_no_miou_panel(tmp_path, monkeypatch):
    write_rows(tmp_path, TRAIN)
    figures = drawn(monkeypatch)
    TrainingCurvesHook().after_train(fake_runner(tmp_path))
    assert [t for t, _, _ in lines(figures[0])] == ['loss (last 0.4)', 'lr (last 0.004)']
    with Image.open(tmp_path / 'curves.png') as img:
        assert img.size == (800, 520)


def test_chosen_keys_and_filename(tmp_path, monkeypatch):
    write_rows(tmp_path, ordered_train_val())
    figures = drawn(monkeypatch)
    out = tmp_path / 'plots' / 'miou.png'
    hook = TrainingCurvesHook(filename=str(out), keys=('mAcc', 'mIoU'))
    hook.after_train(fake_runner(tmp_path))
    assert [(x, y) for _, x, y in lines(figures[0])] == [([2, 4], [50.0, 60.0]),
                                                          ([2, 4], [41.5, 55.25])]
    assert out.is_file() and not (tmp_path / 'curves.png').exists()


def test_resumed_run_continues_the_earlier_curves(tmp_path, monkeypatch):
    # The first run logged iterations 1-3 and died; the second resumed from the checkpoint
    # of iteration 2 and repeats iteration 3. A later run's directory is not read.
    write_rows(tmp_path, TRAIN[:2] + [VAL[0], dict(loss=5.0, lr=1.0, step=3)],
               run='20240101_000000', tail='{"loss": 0.1, "st')  # a killed run's half line
    write_rows(tmp_path, TRAIN[2:] + [VAL[1]])
    write_rows(tmp_path, [dict(loss=9.0, lr=9.0, step=1)], run='20990101_000000')
    figures = drawn(monkeypatch)
    TrainingCurvesHook().after_train(fake_runner(tmp_path))
    (loss, lr, miou) = lines(figures[0])
    assert loss[1:] == ([1, 2, 3, 4], [0.9, 0.7, 0.6, 0.4])
    assert miou[1:] == ([2, 4], [41.5, 55.25])


def test_read_scalars_restarts_with_a_run_from_scratch(tmp_path):
    old = write_rows(tmp_path, TRAIN, run='20240101_000000')
    # A validation outside training (step 0) is no part of the curves.
    new = write_rows(tmp_path, [dict(mIoU=1.0, step=0), dict(loss=2.0, step=1)])
    assert read_scalars([old, new]) == [dict(loss=2.0, step=1)]
    assert series(read_scalars([old]), 'lr') == ([1, 2, 3, 4], [0.01, 0.008, 0.006, 0.004])


def test_read_scalars_resumed_within_one_file(tmp_path):
    # Two runners started in the same second share a log directory: the resumed run's rows
    # (from the checkpoint of iteration 2 on) follow the first run's in the same file.
    path = write_rows(tmp_path, ordered_train_val() + [dict(loss=0.5, lr=0.006, step=3),
                                                        dict(loss=0.3, lr=0.004, step=4)])
    rows = read_scalars([path])
    assert series(rows, 'loss') == ([1, 2, 3, 4], [0.9, 0.7, 0.5, 0.3])
    assert series(rows, 'mIoU') == ([2], [41.5])  # the validation at 4 was not repeated


def test_message_hub_without_scalars_file(tmp_path, monkeypatch):
    runner = fake_runner(tmp_path, iteration=3, hub_name='curves_hub_only')
    for loss, lr in ((0.5, 0.1), (0.25, 0.05), (0.125, 0.0)):
        runner.message_hub.update_scalar('train/loss', loss)
        runner.message_hub.update_scalar('train/lr', lr)
    figures = drawn(monkeypatch)
    hook = TrainingCurvesHook(draw_after_val=False)
    hook.before_train(runner)
    runner.iter = 2
    hook.after_val_epoch(runner, dict(mIoU=np.float64(33.0), aAcc=90.0))
    runner.iter = 3
    hook.after_train(runner)
    assert [(x, y) for _, x, y in lines(figures[0])] == [
        ([1, 2, 3], [0.5, 0.25, 0.125]), ([1, 2, 3], [0.1, 0.05, 0.0]), ([2], [33.0])]
    assert (tmp_path / 'curves.png').is_file()


def test_redraw_after_validation_only_while_training(tmp_path):
    write_rows(tmp_path, ordered_train_val())
    hook, runner = TrainingCurvesHook(), fake_runner(tmp_path)
    hook.after_val_epoch(runner, dict(mIoU=1.0))  # runner.val() outside training
    assert not (tmp_path / 'curves.png').exists()
    hook.before_train(runner)
    hook.after_val_epoch(runner, dict(mIoU=55.25))
    assert (tmp_path / 'curves.png').is_file()


def test_missing_scalars_warn(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert TrainingCurvesHook().draw(fake_runner(tmp_path, hub_name='curves_empty')) is None
    (record, ) = [r for r in caplog.records if 'TrainingCurvesHook' in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert 'no values of loss, lr, mIoU in the message hub' in record.getMessage()
    assert not (tmp_path / 'curves.png').exists()


def test_scalars_without_the_keys_warn(tmp_path, caplog):
    path = write_rows(tmp_path, [dict(acc=1.0, step=1)])
    with caplog.at_level(logging.WARNING):
        TrainingCurvesHook().after_train(fake_runner(tmp_path))
    assert f'no values of loss, lr, mIoU in {path}' in caplog.text
    assert not (tmp_path / 'curves.png').exists()


def test_missing_matplotlib_warns(tmp_path, monkeypatch, caplog):
    write_rows(tmp_path, TRAIN)
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # import matplotlib -> ImportError
    with caplog.at_level(logging.WARNING):
        TrainingCurvesHook().after_train(fake_runner(tmp_path))
    assert 'matplotlib is not installed' in caplog.text
    assert not (tmp_path / 'curves.png').exists()


def test_drawing_error_warns_and_leaves_no_file(tmp_path, monkeypatch, caplog):
    write_rows(tmp_path, TRAIN)

    def broken(curves, path=None, **kwargs):
        with curves_hook.atomic_path(path) as tmp, open(tmp, 'wb') as f:
            f.write(b'half')
            raise RuntimeError('disk full')

    monkeypatch.setattr(curves_hook, 'draw_curves', broken)
    with caplog.at_level(logging.WARNING):
        TrainingCurvesHook().after_train(fake_runner(tmp_path))
    assert 'drawing the curves failed (RuntimeError: disk full)' in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN]


def test_not_main_process_draws_nothing(tmp_path, monkeypatch):
    write_rows(tmp_path, TRAIN)
    monkeypatch.setattr(curves_hook, 'is_main_process', lambda: False)
    TrainingCurvesHook().after_train(fake_runner(tmp_path))
    assert not (tmp_path / 'curves.png').exists()


def train_tiny(root, max_iters=4, val_interval=2, backends=('LocalVisBackend', )) -> Runner:
    """A TAO spec's config (mit_b0, 64x64, 4 training images) trained on the CPU, with
    the curves hook and the given visualizer backends; logs every iteration."""
    spec = load_spec(write_isbi_spec(root, dict(
        max_iters=max_iters, checkpoint_interval=max_iters, logging_interval=1,
        validate=True, validation_interval=val_interval,
        trainer=dict(lr_config=dict(warmup_iters=1))), val='separate'),
        ['train.trainer.sf_optim.lr=0.001'], task='train')
    cfg = spec_to_config(spec)
    cfg['work_dir'] = osp.join(str(root), 'work')
    if not any(h.get('type') == 'TrainingCurvesHook' for h in cfg['custom_hooks']):
        cfg['custom_hooks'].append(dict(type='TrainingCurvesHook'))
    # A visualizer is a process-wide instance by name; another test's would be reused.
    cfg['visualizer'].update(name=f'curves_{osp.basename(str(root))}',
                             vis_backends=[dict(type=b) for b in backends])
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    return runner


@pytest.mark.slow  # a training run
def test_training_writes_curves_and_tensorboard_events(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    runner = train_tiny(tmp_path, backends=('LocalVisBackend', 'TensorboardVisBackend'))
    work = tmp_path / 'work'
    (scalars, ) = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    rows = read_scalars([scalars])
    assert series(rows, 'loss')[0] == [1, 2, 3, 4] and series(rows, 'mIoU')[0] == [2, 4]

    with Image.open(work / 'curves.png') as img:
        img.load()
        assert (img.format, img.size) == ('PNG', (800, 780))  # loss, lr and mIoU
    assert (work / 'status.json').is_file()  # beside it

    (events, ) = glob.glob(osp.join(runner.log_dir, 'vis_data', 'events.out.tfevents.*'))
    acc = EventAccumulator(events)
    acc.Reload()
    assert {'loss', 'lr', 'mIoU'} <= set(acc.Tags()['scalars'])
    for key in ('loss', 'lr', 'mIoU'):
        steps, values = series(rows, key)
        logged = acc.Scalars(key)
        assert [e.step for e in logged] == steps
        # TensorBoard keeps float32.
        np.testing.assert_allclose([e.value for e in logged], values, rtol=1e-6, atol=1e-12)
