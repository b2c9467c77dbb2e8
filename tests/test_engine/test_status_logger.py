"""status.json, the saved spec and class mapping, after short real training runs."""
import datetime
import json
import os.path as osp
import subprocess
import sys

import pytest
import yaml
from mmengine.config import Config
from mmengine.runner import Runner

import mmseg_tao  # noqa: F401
from mmseg_tao.spec import load_spec, spec_to_config
from seg_data import write_isbi_spec

SCRIPT = osp.join(osp.dirname(__file__), '..', 'data', 'scripts', 'train_killable.py')


def _spec(tmp_path, **train):
    return write_isbi_spec(tmp_path, dict(
        dict(max_iters=4, checkpoint_interval=4, logging_interval=2, validate=True,
             validation_interval=4, trainer=dict(lr_config=dict(warmup_iters=1))), **train),
        val='separate')


def _rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow  # training runs
def test_status_lines_after_training(tmp_path):
    spec = load_spec(_spec(tmp_path), ['train.trainer.sf_optim.lr=0.001'], task='train')
    cfg = spec_to_config(spec)
    cfg['work_dir'] = str(tmp_path / 'work')
    runner = Runner.from_cfg(Config(cfg))
    runner.train()

    rows = _rows(tmp_path / 'work' / 'status.json')
    assert [r['status'] for r in rows] == ['STARTED', 'RUNNING', 'RUNNING', 'RUNNING',
                                           'SUCCESS']
    for r in rows:
        datetime.datetime.strptime(f'{r["date"]} {r["time"]}', '%m/%d/%Y %H:%M:%S')
        assert r['verbosity'] == 'INFO' and r['message']
    train_rows = [r for r in rows if 'loss' in r]
    assert [r['iteration'] for r in train_rows] == [2, 4]
    for r in train_rows:
        assert r['max_iters'] == 4 and 0 < r['loss'] < 10
        assert 0 <= r['lr'] <= 0.001 and r['time_per_iter'] > 0
        assert r['eta'].count(':') == 2
    assert train_rows[0]['lr'] > train_rows[1]['lr']  # poly decay (reaches 0 at the end)
    # The lr of the logged iteration, from the same message hub the log uses.
    assert train_rows[-1]['lr'] == runner.message_hub.get_scalar('train/lr').current()
    val = rows[3]
    assert val['iteration'] == 4 and set(val['kpi']) >= {'mIoU', 'mAcc', 'aAcc'}
    assert 0 <= val['kpi']['mIoU'] <= 100

    # The resolved spec and the class mapping, beside the checkpoints.
    saved = yaml.safe_load(open(tmp_path / 'work' / 'experiment_spec.yaml'))
    assert saved['train']['trainer']['sf_optim']['lr'] == 0.001  # override applied
    assert saved['train']['exp_config']['manual_seed'] == 49  # default filled in
    mapping = json.load(open(tmp_path / 'work' / 'target_class_id_mapping.json'))
    assert mapping['classes'] == ['foreground', 'background']
    assert mapping['label_id_to_train_id'] == {'0': 0, '1': 1}


@pytest.mark.slow  # training runs
def test_failure_line(tmp_path):
    # One class while the masks hold two: the loss fails in the first iteration.
    run = subprocess.run([sys.executable, SCRIPT, _spec(tmp_path), str(tmp_path / 'work'),
                          '--num-classes', '1'], capture_output=True, text=True, timeout=600)
    assert run.returncode != 0
    rows = _rows(tmp_path / 'work' / 'status.json')
    assert [r['status'] for r in rows] == ['STARTED', 'FAILURE']
    assert rows[-1]['verbosity'] == 'ERROR' and 'Error' in rows[-1]['message']
