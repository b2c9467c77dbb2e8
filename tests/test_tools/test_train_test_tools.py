"""tools/train.py and tools/test.py with mmseg's arguments on a generated config."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmseg_tao.spec import load_spec, spec_to_config, write_config
from seg_data import write_isbi_spec

TOOLS = osp.join(osp.dirname(__file__), '..', '..', 'tools')


def run(*args):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.mark.slow  # training runs in subprocesses
def test_train_resume_and_test(tmp_path):
    spec = write_isbi_spec(tmp_path, dict(max_iters=2, checkpoint_interval=2,
                                          logging_interval=1,
                                          trainer=dict(lr_config=dict(warmup_iters=1))),
                           val='same')
    cfg = str(tmp_path / 'cfg.py')
    write_config(spec_to_config(load_spec(spec), resolve=False), cfg)
    work = str(tmp_path / 'work')

    run(osp.join(TOOLS, 'train.py'), cfg, '--work-dir', work)
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    # --resume without a path continues from the newest complete iter_N.pth.
    out = run(osp.join(TOOLS, 'train.py'), cfg, '--work-dir', work, '--resume',
              '--cfg-options', 'train_cfg.max_iters=4', 'param_scheduler.1.end=4')
    assert 'resumed epoch: 0, iter: 2' in out
    assert osp.isfile(osp.join(work, 'iter_4.pth'))

    show, masks = str(tmp_path / 'show'), str(tmp_path / 'masks')
    out = run(osp.join(TOOLS, 'test.py'), cfg, osp.join(work, 'iter_4.pth'), '--work-dir',
              str(tmp_path / 'test'), '--show-dir', show, '--out', masks)
    assert 'mIoU' in out
    # Every image drawn (mmseg's default draws every 50th) and every mask written.
    assert len(glob.glob(osp.join(show, '**', '*.png'), recursive=True)) == 4
    assert len(os.listdir(masks)) == 4
    # --tta: TAO's test-time augmentation is one scale without flip, so the same mIoU.
    tta = run(osp.join(TOOLS, 'test.py'), cfg, osp.join(work, 'iter_4.pth'), '--work-dir',
              str(tmp_path / 'tta'), '--tta')
    assert _miou(tta) == _miou(out)


def _miou(log: str) -> str:
    line = next(x for x in log.splitlines() if 'mIoU:' in x)
    return line.split('mIoU:')[1].split()[0]
