"""status.json in TAO's schema (TAO 5.5 for a TAO 5 spec, TAO 6/7 for a TAO 6/7 spec), the
saved spec and class mapping, after short real training runs; the status writer itself.

Expected keys and messages: ``tests/data/tao_status/keys.json`` (recorded from NVIDIA's
sources, listed in its README).
"""
import datetime
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import yaml
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

import mmseg_tao  # noqa: F401
from mmseg_tao.engine.status import (
    FAILURE,
    StatusLogger,
    active_logger,
    config_form,
    failure_message,
    tao5_time_per_iter,
    task_status,
)
from mmseg_tao.spec import load_spec, spec_to_config
from seg_data import write_isbi_spec

KEYS = json.load(open(osp.join(osp.dirname(__file__), '..', 'data', 'tao_status',
                               'keys.json')))
T5, T6 = KEYS['tao5']['train'], KEYS['tao6']['train']


def _spec(tmp_path, **train):
    return write_isbi_spec(tmp_path, dict(
        dict(max_iters=4, checkpoint_interval=4, logging_interval=2, validate=True,
             validation_interval=4, trainer=dict(lr_config=dict(warmup_iters=1))), **train),
        val='separate')


def _rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _timedelta(text: str) -> datetime.timedelta:
    h, m, s = text.split(':')
    return datetime.timedelta(hours=int(h), minutes=int(m), seconds=float(s))


def _check_line(r):
    assert set(KEYS['common']['line']) <= set(r)
    assert r['status'] in KEYS['common']['status_values'] and r['verbosity'] == 'INFO'
    hour, minute, second = map(int, r['time'].split(':'))
    assert r['time'] == f'{hour}:{minute}:{second}'  # TAO's unpadded H:M:S
    month, day, year = map(int, r['date'].split('/'))
    assert r['date'] == f'{month}/{day}/{year}'


# --------------------------------------------------------------------------- TAO 5 form
@pytest.mark.slow  # training runs
def test_tao5_status_lines_after_training(tmp_path):
    spec = load_spec(_spec(tmp_path), ['train.trainer.sf_optim.lr=0.001'], task='train')
    cfg = spec_to_config(spec)
    cfg['work_dir'] = str(tmp_path / 'work')
    runner = Runner.from_cfg(Config(cfg))
    runner.train()

    rows = _rows(tmp_path / 'work' / 'status.json')
    for r in rows:
        _check_line(r)
    assert [r.get('message') for r in rows[:2]] == T5['first_messages']
    assert [r['status'] for r in rows[:2]] == ['STARTED', 'STARTED']
    assert [r.get('message') for r in rows[-3:-1]] == T5['last_messages']
    assert (rows[-1]['status'], rows[-1]['message']) == ('SUCCESS', 'Train succeeded.')

    train_rows = [r for r in rows if r.get('mode') == T5['train_mode']]
    assert [r['cur_iter'] for r in train_rows] == [2, 4]
    for r in train_rows:
        assert list(r)[:len(T5['train_row'])] == T5['train_row']  # TAO's keys, in order
        assert 'message' not in r  # TAO's data lines have none
        assert 0 < r['loss'] < 10 and 0 <= r['train_accuracy'] <= 100
        assert 0 <= r['lr'] <= 0.001
        assert r['time_per_iter'].startswith('00:00:0')  # TAO's string, under a second
        assert r['eta'].count(':') == 2
        assert list(r['graphical']) == T5['graphical']
        assert r['graphical']['loss'] == r['loss']
    assert train_rows[0]['lr'] > train_rows[1]['lr']  # poly decay (reaches 0 at the end)
    assert train_rows[-1]['lr'] == runner.message_hub.get_scalar('train/lr').current()
    # The loss is mmengine's smoothed decode.loss_ce, as in TAO 5.5's parsed log line.
    assert train_rows[-1]['loss'] == pytest.approx(
        runner.message_hub.get_scalar('train/decode.loss_ce').mean(10))

    (val, ) = [r for r in rows if r.get('mode') == T5['val_mode']]
    assert list(val)[:len(T5['val_row'])] == T5['val_row']
    assert val['cur_iter'] == 4 and list(val['kpi']) == T5['val_kpi']
    assert 0 <= val['Mean IOU'] == val['kpi']['Mean IOU'] <= 100  # percent, as TAO 5.5
    # kpi persists on later lines, as on TAO's status logger.
    assert all(r['kpi'] == val['kpi'] for r in rows[rows.index(val):])

    # The resolved spec and the class mapping, beside the checkpoints.
    saved = yaml.safe_load(open(tmp_path / 'work' / 'experiment_spec.yaml'))
    assert saved['train']['trainer']['sf_optim']['lr'] == 0.001  # override applied
    assert saved['train']['exp_config']['manual_seed'] == 49  # default filled in
    mapping = json.load(open(tmp_path / 'work' / 'target_class_id_mapping.json'))
    assert mapping['classes'] == ['foreground', 'background']
    assert mapping['label_id_to_train_id'] == {'0': 0, '1': 1}


@pytest.mark.slow  # a training run
def test_failure_line(tmp_path):
    # One class while the masks hold two: the loss fails in the first iteration.
    cfg = spec_to_config(load_spec(_spec(tmp_path), task='train'))
    cfg['work_dir'] = str(tmp_path / 'work')
    cfg['model']['decode_head']['num_classes'] = 1
    runner = Runner.from_cfg(Config(cfg))
    with pytest.raises(Exception) as err:
        runner.train()
    rows = _rows(tmp_path / 'work' / 'status.json')
    assert [r['status'] for r in rows] == ['STARTED', 'STARTED', 'FAILURE']
    assert rows[-1]['message'] == str(err.value)  # TAO 5.5: str(error)
    assert rows[-1]['verbosity'] == 'INFO'  # as TAO writes failures


# --------------------------------------------------------------------------- TAO 6 form
def _tao6_runner(tmp_path, epoch_loop: bool = False, **train) -> Runner:
    """A TAO 6 spec over 6 training / 2 validation 32x32 pairs, batch 4: 2 iterations
    per epoch (the last batch short)."""
    root = tmp_path / 'data'
    for split, n in (('train', 6), ('val', 2)):
        os.makedirs(root / 'images' / split)
        os.makedirs(root / 'masks' / split)
        for i in range(n):
            mask = np.zeros((32, 32), np.uint8)
            mask[:, 16:] = 255
            Image.fromarray(np.stack([mask // 2 + 20 * i] * 3, -1)).save(
                root / 'images' / split / f'{i:03d}.png')
            Image.fromarray(mask).save(root / 'masks' / split / f'{i:03d}.png')
    spec = dict(model=dict(backbone=dict(type='mit_b0'),
                           decode_head=dict(decoder_params=dict(embed_dim=32))),
                dataset=dict(segment=dict(root_dir=str(root), batch_size=4, img_size=32,
                                          workers=0)),
                train=dict(dict(num_epochs=3, validation_interval=2, checkpoint_interval=3),
                           **train))
    (tmp_path / 'spec.yaml').write_text(yaml.safe_dump(spec))
    cfg = spec_to_config(load_spec(str(tmp_path / 'spec.yaml'), task='train'))
    cfg['work_dir'] = str(tmp_path / 'work')
    if epoch_loop:
        cfg['train_cfg'] = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=1)
        cfg['train_dataloader']['sampler'] = dict(type='DefaultSampler', shuffle=True)
    return Runner.from_cfg(Config(cfg))


def _check_tao6(rows, epochs, val_epochs, max_epoch, ipe):
    for r in rows:
        _check_line(r)
    assert [r['message'] for r in rows[:2]] == T6['first_messages']
    assert [r['message'] for r in rows[-3:-1]] == T6['last_messages']
    assert (rows[-1]['status'], rows[-1]['message']) == ('SUCCESS', 'Train succeeded.')
    epoch_rows = [r for r in rows if r.get('message') == T6['epoch_message']]
    assert [r['epoch'] for r in epoch_rows] == list(range(epochs))
    for r in epoch_rows:
        assert list(r)[:len(T6['epoch_row'])] == T6['epoch_row']
        assert r['step'] == (r['epoch'] + 1) * ipe and r['max_epoch'] == max_epoch
        assert r['max_step'] == (max_epoch + 1) * ipe
        # time_per_step is the mean over all steps so far (TAO's running mean): only the
        # first epoch's wall time must cover it (later epochs may be faster than the
        # mean of a slow start).
        if r['epoch'] == 0:
            assert _timedelta(r['time_per_epoch']) > _timedelta(r['time_per_step'])
        assert _timedelta(r['eta']) >= datetime.timedelta(0)
        i = rows.index(r)
        # TAO's order: the epoch's validation (when there is one), the epoch line, then
        # the training kpi.
        train = rows[i + 1]
        assert train['message'] == T6['train_message']
        assert list(train['kpi']) == T6['train_kpi']
        assert r['kpi']['train_loss'] == train['kpi']['train_loss'] > 0
        val = rows[i - 1]
        if r['epoch'] in val_epochs:
            assert val['message'] == T6['val_message']
            assert list(val['kpi']) == T6['val_kpi']
            assert all(0 <= v <= 1 for k, v in val['kpi'].items() if k != 'val_loss')
            assert 0 < val['kpi']['val_loss'] < 10
            assert r['kpi'] == {**train['kpi'], **val['kpi']}
        else:
            assert val['message'] != T6['val_message']
            assert list(r['kpi']) == T6['train_kpi']
    # kpi persists on later lines, as on TAO's status logger (the last: train_loss).
    assert rows[-2]['kpi'] == {'train_loss': epoch_rows[-1]['kpi']['train_loss']}


@pytest.mark.slow  # a training run
def test_tao6_status_lines_after_training(tmp_path):
    runner = _tao6_runner(tmp_path)
    runner.train()
    rows = _rows(tmp_path / 'work' / 'status.json')
    # validation every 2 epochs (epoch index 1) and at the end (mmengine validates there)
    _check_tao6(rows, epochs=3, val_epochs={1}, max_epoch=2, ipe=2)
    # val_acc: all pixels; val_miou: over classes (TAO 6's MeanIoUMeter), fractions
    metric = runner.val_evaluator.metrics[0]
    last_val = [r for r in rows if r.get('message') == T6['val_message']][-1]
    assert last_val['kpi']['val_miou'] == pytest.approx(metric.tao_scores['miou'])
    assert last_val['kpi']['val_acc'] == pytest.approx(metric.tao_scores['acc'])


@pytest.mark.slow  # a training run
def test_tao6_status_lines_epoch_based_loop(tmp_path):
    """The same lines from mmengine's EpochBasedTrainLoop (after_train_epoch)."""
    _tao6_runner(tmp_path, epoch_loop=True).train()
    rows = _rows(tmp_path / 'work' / 'status.json')
    _check_tao6(rows, epochs=2, val_epochs={0, 1}, max_epoch=1, ipe=2)


# --------------------------------------------------------------------------- the writer
def test_writer_line_format_and_persistent_kpi(tmp_path):
    log = StatusLogger(str(tmp_path / 'a' / 'status.json'), enabled=True)
    log.write(dict(epoch=0), message='one')
    log.kpi = {'val_miou': 0.5, 'val_loss': float('nan')}
    log.graphical = {'loss': 1.0}
    log.write(message='two')
    log.write(kpi={'x': 1})
    rows = _rows(tmp_path / 'a' / 'status.json')
    assert list(rows[0]) == ['epoch', 'date', 'time', 'status', 'verbosity', 'message']
    assert list(rows[1])[-2:] == ['graphical', 'kpi']  # TAO's order
    assert rows[1]['kpi'] == {'val_miou': 0.5, 'val_loss': None}  # NaN: null, valid JSON
    assert 'message' not in rows[2] and rows[2]['kpi'] == {'x': 1}
    assert rows[2]['graphical'] == {'loss': 1.0}
    for r in rows:
        _check_line(r)


def test_task_status_lines_and_failures(tmp_path):
    with task_status(str(tmp_path / 'ok'), 'inference', 6, enabled=True) as log:
        assert active_logger() is log
    assert active_logger() is None
    rows = _rows(tmp_path / 'ok' / 'status.json')
    assert [(r['status'], r['message']) for r in rows] == [
        ('STARTED', 'Starting SegFormer inference.'),
        ('RUNNING', 'Inference finished successfully.'),
        ('SUCCESS', 'Inference succeeded.')]
    with pytest.raises(ValueError):
        with task_status(str(tmp_path / 'bad'), 'export', 6, enabled=True):
            raise ValueError('bad input')
    rows = _rows(tmp_path / 'bad' / 'status.json')
    assert [r['status'] for r in rows] == ['STARTED', FAILURE]
    assert rows[-1]['message'] == 'Parameter validation error: bad input'
    prefixes = KEYS['tao6']['failure_prefixes']
    for error in (KeyboardInterrupt(), NotImplementedError('x'), TypeError('x'),
                  OSError('x')):
        want = prefixes[type(error).__name__].format(Mode='Train')
        assert failure_message(error, 'train', 6).startswith(want)
    assert failure_message(RuntimeError('oom'), 'train', 6) == 'RuntimeError: oom'
    assert failure_message(RuntimeError('oom'), 'train', 5) == 'oom'
    assert failure_message(KeyboardInterrupt(), 'train', 5) == 'Train was interrupted'


def test_form_of_config_and_tao5_time_string(tmp_path):
    assert config_form({'tao_spec': {'dataset': {'segment': {}}}}) == 6
    (tmp_path / 'spec6.yaml').write_text(yaml.safe_dump({'train': {'num_epochs': 3}}))
    assert config_form({'tao_spec': str(tmp_path / 'spec6.yaml')}) == 6  # spec2cfg's form
    assert config_form({'tao_spec': {'train': {'num_epochs': 3}}}) == 6
    assert config_form({'tao_spec': {'train': {'max_iters': 3}}}) == 5
    assert config_form({'tao_version': 7}) == 6 and config_form({}) == 5
    # TAO 5.5: f"00:00:0{time}" below a second (time as logged, 4 decimals), else H:M:S
    assert tao5_time_per_iter(0.74991) == '00:00:00.7499'
    assert tao5_time_per_iter(0.1) == '00:00:00.1'
    assert tao5_time_per_iter(75.2) == '00:01:15'
    assert math.isclose(_timedelta('0:00:01.500000').total_seconds(), 1.5)
