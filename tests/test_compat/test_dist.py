"""Two training processes on CPU (gloo) through torchrun and mmengine's Runner."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

import mmseg_tao  # noqa: F401

SCRIPT = osp.join(osp.dirname(__file__), '..', 'data', 'scripts', 'dist_toy_train.py')


@pytest.mark.slow  # two training processes
def test_two_process_cpu_training(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone',
         '--nproc_per_node=2', SCRIPT, str(tmp_path / 'work'), str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [json.loads((out / f'rank{r}.json').read_text()) for r in (0, 1)]
    for info in ranks:
        assert info['world_size'] == 2
        assert info['backend'] == 'gloo'
        assert info['wrapper'] == 'MMDistributedDataParallel'
        assert info['device_ids'] is None
        assert info['iter'] == 4
    # DDP kept the replicas in sync ...
    assert ranks[0]['weight'] == ranks[1]['weight']
    # ... rank 0 wrote checkpoints that load with weights_only on, and the 4th
    # iteration changed the weights.
    ckpt = _load_checkpoint(str(tmp_path / 'work' / 'iter_3.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 3
    w3 = ckpt['state_dict']['linear.weight'].flatten()
    assert not torch.allclose(w3, torch.tensor(ranks[0]['weight']))
    assert osp.isfile(tmp_path / 'work' / 'iter_4.pth')


_SLURM_INIT = (
    'import mmseg_tao, torch.distributed as d; from mmengine.dist import init_dist; '
    "init_dist('slurm'); print(d.get_backend(), d.get_world_size(), d.get_rank())")


@pytest.mark.parametrize('patched', [True, False])
def test_slurm_launcher_without_gpu(patched):
    # One SLURM task on a machine without a GPU: mmengine's slurm launcher calls
    # torch.cuda.set_device and asks for NCCL; patched, the task joins a gloo group with
    # SLURM's rank and size (MASTER_ADDR set, so no scontrol is needed).
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', SLURM_PROCID='0', SLURM_NTASKS='1',
               SLURM_LOCALID='0', SLURM_NODELIST='localhost', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(port))
    if not patched:
        env['MMSEG_TAO_NO_PATCHES'] = 'mmengine-dist-slurm-gloo-on-cpu'
    proc = subprocess.run([sys.executable, '-c', _SLURM_INIT], env=env, capture_output=True,
                          text=True, timeout=120)
    if patched:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split()[-3:] == ['gloo', '1', '0']
    else:  # the stock launcher fails where there is no GPU
        assert proc.returncode != 0
