"""A training process killed with SIGKILL (mid-run and during a checkpoint save) resumes
from the newest complete checkpoint and reaches max_iters; no corrupt checkpoint remains."""
import os
import os.path as osp
import re
import signal
import subprocess
import sys

import pytest

from mmseg_tao.engine import find_resume_checkpoint, is_complete_checkpoint
from seg_data import write_isbi_spec

SCRIPT = osp.join(osp.dirname(__file__), '..', 'data', 'scripts', 'train_killable.py')


def _spec(tmp_path, max_iters=6):
    return write_isbi_spec(tmp_path, dict(max_iters=max_iters, checkpoint_interval=2,
                                          logging_interval=1,
                                          trainer=dict(lr_config=dict(warmup_iters=1))))


def _start(spec, work, *extra):
    return subprocess.Popen([sys.executable, SCRIPT, spec, str(work), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(proc, pattern, timeout_lines=10000):
    seen = []
    for _ in range(timeout_lines):
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f'{pattern!r} never printed:\n' + ''.join(seen[-40:]))


def _iters(work):
    return sorted(int(m.group(1)) for m in (re.fullmatch(r'iter_(\d+)\.pth', n)
                                            for n in os.listdir(work)) if m)


@pytest.mark.slow  # training runs killed and resumed
def test_sigkill_during_save_and_mid_run(tmp_path):
    spec, work = _spec(tmp_path), tmp_path / 'work'

    # 1. Killed halfway through writing iter_4.pth.
    proc = _start(spec, work, '--slow-save', '4')
    _wait_for(proc, r'RESUME None')
    saving = _wait_for(proc, r'^SAVING ')
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = saving.split(' ', 1)[1].strip()
    assert osp.basename(partial) == '.iter_4.pth.partial' and osp.exists(partial)
    assert _iters(work) == [2]  # the half-written file never became iter_4.pth
    assert find_resume_checkpoint(str(work)) == str(work / 'iter_2.pth')

    # 2. Resumed from iter_2, then killed mid-run (after iteration 5 is logged).
    proc = _start(spec, work)
    assert _wait_for(proc, r'^RESUME ').strip() == f'RESUME {work / "iter_2.pth"}'
    _wait_for(proc, r'Iter\(train\) \[5/6\]')
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _iters(work) == [2, 4]

    # 3. Resumed from iter_4 to the end.
    proc = _start(spec, work)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out[-3000:]
    assert f'RESUME {work / "iter_4.pth"}' in out and 'DONE 6' in out
    assert _iters(work) == [2, 4, 6]
    assert all(is_complete_checkpoint(str(work / f'iter_{i}.pth')) for i in (2, 4, 6))
    # The next save of iteration 4 replaced the stale partial file.
    assert not any(n.endswith('.partial') for n in os.listdir(work))
    with open(work / 'last_checkpoint') as f:
        assert f.read() == str(work / 'iter_6.pth')


def test_resume_ignores_other_names_and_broken_files(tmp_path):
    (tmp_path / 'best_mIoU_iter_9.pth').write_bytes(b'x')
    (tmp_path / 'pretrained.pth').write_bytes(b'x')
    (tmp_path / 'iter_8.pth').write_bytes(b'truncated')  # not a zip
    assert find_resume_checkpoint(str(tmp_path)) is None
    import torch
    torch.save({'a': torch.zeros(1)}, tmp_path / 'iter_3.pth')
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_3.pth')
    assert find_resume_checkpoint(str(tmp_path / 'missing')) is None
