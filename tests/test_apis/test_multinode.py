"""Several machines, preemption and restarts, on one machine over the loopback interface.

The demo spec (``mmseg-tao demo-data``, shapes; mit_b0 with a 32-wide head on 32x32 images,
6 iterations, a checkpoint every 2) is trained by ``mmseg-tao train`` in subprocesses, CPU
processes with gloo. The reference is one "node" of two processes (``train.num_gpus=2``);
against its final weights:

- two "nodes" of one process each (two commands, ``NODE_RANK`` 0 and 1, ``train.num_nodes=2``)
  reach the same weights (same global batch, same seed, same global ranks);
- a run sent SIGTERM at a random iteration stops there with a checkpoint of that iteration,
  exit status 75 and a ``preempted`` status line; started again it resumes and reaches the
  same weights;
- a run one of whose processes is killed (SIGKILL) under torchrun's ``--max-restarts 1``
  (``PET_MAX_RESTARTS``) is brought back by torchrun from the newest complete checkpoint and
  reaches the same weights.

Every address is 127.0.0.1 and every port a free one chosen here.
"""
import json
import os
import os.path as osp
import random
import re
import signal
import subprocess
import sys
import time

import pytest
from mmengine.runner.checkpoint import CheckpointLoader

import mmseg_tao  # noqa: F401  (checkpoints load with the compat allowlist)
from mmseg_tao.apis.nodes import free_port
from mmseg_tao.engine import is_complete_checkpoint
from mmseg_tao.engine.hooks import PREEMPTED_EXIT_CODE

pytestmark = pytest.mark.slow  # training runs in subprocesses

MAX_ITERS = 6
TOLERANCE = 1e-5  # float32 weights after 6 AdamW steps; the runs agree far closer (below)
# Variables of an outer distributed launch that must not leak into the runs.
_LAUNCH_VARS = ('MASTER_ADDR', 'MASTER_PORT', 'NODE_RANK', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK',
                'NUM_GPU_PER_NODE', 'TORCHELASTIC_RUN_ID', 'PET_NODE_RANK', 'PET_MASTER_ADDR',
                'PET_MASTER_PORT', 'PET_RDZV_ENDPOINT', 'PET_MAX_RESTARTS')


def _overrides(results: str, *extra: str):
    return [f'train.max_iters={MAX_ITERS}', 'train.checkpoint_interval=2',
            'train.logging_interval=1', 'train.validate=false', 'dataset.batch_size=2',
            'dataset.workers_per_gpu=0', 'model.decode_head.decoder_params.embed_dim=32',
            f'results_dir={results}', *extra]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in _LAUNCH_VARS and not k.startswith('SLURM_')}
    env.update(OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='', **extra)
    return env


def _start(spec: str, results: str, log: str, *extra: str, **env) -> subprocess.Popen:
    cmd = [sys.executable, '-m', 'mmseg_tao.cli', 'train', '-e', spec,
           *_overrides(results, *extra)]
    with open(log, 'w') as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(**env))


def _finish(proc: subprocess.Popen, log: str, timeout: float = 300) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f'no end in {timeout} s:\n{_tail(log)}') from None


def _tail(log: str, n: int = 4000) -> str:
    with open(log) as f:
        return f.read()[-n:]


def _status(results: str) -> list:
    path = osp.join(results, 'train', 'status.json')
    if not osp.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith('\n')]


def _weights(results: str) -> dict:
    path = osp.join(results, 'train', f'iter_{MAX_ITERS}.pth')
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')['state_dict']


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a
               if a[k].is_floating_point())


def _wait_until(condition, what: str, log: str, timeout: float = 240) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f'{what} never happened:\n{_tail(log)}')


def _assert_success(results: str, log: str) -> None:
    lines = _status(results)
    assert lines and lines[-1]['status'] == 'SUCCESS', _tail(log)


def _workers(spec: str) -> dict:
    """torchrun's worker processes of ``spec``: {LOCAL_RANK: pid}."""
    found = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().split(b'\0')
            with open(f'/proc/{pid}/environ', 'rb') as f:
                env = dict(v.split(b'=', 1) for v in f.read().split(b'\0') if b'=' in v)
        except OSError:
            continue
        if spec.encode() in cmd and b'pytorch' in cmd and b'TORCHELASTIC_RUN_ID' in env:
            found[int(env[b'LOCAL_RANK'])] = int(pid)
    return found


@pytest.fixture(scope='module')
def demo_spec(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('demo')
    subprocess.run([sys.executable, '-m', 'mmseg_tao.cli', 'demo-data', str(root), '--kind',
                    'shapes', '--size', '32', '--num-train', '8', '--num-val', '2'],
                   check=True, capture_output=True)
    return str(root / 'shapes' / 'spec.yaml')


@pytest.fixture(scope='module')
def reference(demo_spec, tmp_path_factory) -> dict:
    """One node of two processes, uninterrupted: its final weights."""
    results = str(tmp_path_factory.mktemp('reference'))
    log = osp.join(results, 'out.log')
    start = time.time()
    proc = _start(demo_spec, results, log, 'train.num_gpus=2')
    assert _finish(proc, log) == 0, _tail(log)
    print(f'reference (1 node x 2 processes): {time.time() - start:.1f} s')
    _assert_success(results, log)
    assert '2 training process(es) (1 node(s) x 2 per node, cpu, gloo); batch 2 per ' \
        'process, global batch 4' in _tail(log, 10**6)
    return _weights(results)


def test_two_nodes_equal_one_node_of_two_processes(demo_spec, reference, tmp_path):
    results, port = str(tmp_path / 'results'), str(free_port())
    logs = [str(tmp_path / f'node{r}.log') for r in (0, 1)]
    start = time.time()
    nodes = [_start(demo_spec, results, logs[r], 'train.num_nodes=2', MASTER_ADDR='127.0.0.1',
                    MASTER_PORT=port, NODE_RANK=str(r)) for r in (1, 0)][::-1]
    assert [_finish(p, log) for p, log in zip(nodes, logs)] == [0, 0], \
        _tail(logs[0]) + _tail(logs[1])
    print(f'two nodes: {time.time() - start:.1f} s')
    _assert_success(results, logs[0])
    node0 = _tail(logs[0], 10**6)
    assert '--nnodes=2 --nproc_per_node=1 --node_rank=0 --master_addr=127.0.0.1 ' \
        f'--master_port={port}' in node0
    assert '2 training process(es) (2 node(s) x 1 per node, cpu, gloo); batch 2 per ' \
        'process, global batch 4' in node0
    # Global rank 0 alone writes: one STARTED line, one SUCCESS line.
    assert [s['status'] for s in _status(results)].count('SUCCESS') == 1
    diff = _max_diff(_weights(results), reference)
    print(f'two nodes vs one node of two processes: max abs weight difference {diff:.3g}')
    assert diff <= TOLERANCE


def test_preempted_run_resumes_to_the_same_weights(demo_spec, reference, tmp_path):
    results, log = str(tmp_path / 'results'), str(tmp_path / 'run1.log')
    at = random.Random(os.getpid()).randint(1, 3)
    print(f'SIGTERM after iteration {at} is logged')
    start = time.time()
    proc = _start(demo_spec, results, log, 'train.num_gpus=2')
    _wait_until(lambda: any(s.get('cur_iter') == at and s.get('mode') == 'train'
                            for s in _status(results)), f'iteration {at}', log)
    proc.send_signal(signal.SIGTERM)
    assert _finish(proc, log) == PREEMPTED_EXIT_CODE, _tail(log)
    last = _status(results)[-1]
    assert last['status'] == 'FAILURE' and last['preempted'] is True, last
    stopped = last['cur_iter']
    assert at <= stopped < MAX_ITERS and last['signal'] in ('SIGTERM', None)
    checkpoint = osp.join(results, 'train', f'iter_{stopped}.pth')
    assert last['checkpoint'] == checkpoint and is_complete_checkpoint(checkpoint)
    assert 'Train was interrupted: preempted by' in last['message']
    assert not [n for n in os.listdir(osp.join(results, 'train')) if n.endswith('.partial')]

    log2 = str(tmp_path / 'run2.log')
    proc = _start(demo_spec, results, log2, 'train.num_gpus=2')
    assert _finish(proc, log2) == 0, _tail(log2)
    print(f'preempted after iteration {stopped}, resumed: {time.time() - start:.1f} s')
    assert f'resuming from {checkpoint}' in _tail(log2, 10**6)
    _assert_success(results, log2)
    diff = _max_diff(_weights(results), reference)
    print(f'preempted and resumed vs uninterrupted: max abs weight difference {diff:.3g}')
    assert diff <= TOLERANCE


def test_killed_process_is_restarted_from_the_newest_checkpoint(demo_spec, reference,
                                                                 tmp_path):
    results, log = str(tmp_path / 'results'), str(tmp_path / 'run.log')
    start = time.time()
    proc = _start(demo_spec, results, log, 'train.num_gpus=2', PET_MAX_RESTARTS='1')
    _wait_until(lambda: any(s.get('cur_iter') == 3 for s in _status(results)),
                'iteration 3', log)
    workers = _workers(demo_spec)
    assert sorted(workers) == [0, 1], workers
    os.kill(workers[1], signal.SIGKILL)
    assert _finish(proc, log) == 0, _tail(log)
    print(f'rank 1 killed after iteration 3, restarted by torchrun: '
          f'{time.time() - start:.1f} s')
    out = _tail(log, 10**6)
    resumed = re.findall(r'resuming from (\S+)', out)
    assert resumed and resumed[0] in (osp.join(results, 'train', f'iter_{i}.pth')
                                      for i in (2, 4)), out[-3000:]
    statuses = [s['status'] for s in _status(results)]
    assert statuses.count('STARTED') >= 2 and statuses[-1] == 'SUCCESS'
    diff = _max_diff(_weights(results), reference)
    print(f'killed and restarted vs uninterrupted: max abs weight difference {diff:.3g}')
    assert diff <= TOLERANCE
