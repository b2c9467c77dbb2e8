"""Shared fixtures and the suite's device policy.

CPU tests never touch a GPU: the GPUs are hidden from this process and every subprocess
it starts (``CUDA_VISIBLE_DEVICES=''``, set before torch initialises CUDA; mmengine's
Runner would otherwise put every model on ``cuda``). Tests marked ``cuda`` do their GPU
work in a subprocess that sees the machine's GPUs (:func:`run_on_gpu`) and are skipped
where there is none. Under pytest-xdist each worker gets its share of the cores, so that
N workers do not each start a thread per core.
"""
import functools
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

MACHINE_VISIBLE_DEVICES = os.environ.get('CUDA_VISIBLE_DEVICES')
os.environ['CUDA_VISIBLE_DEVICES'] = ''
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
if _WORKERS > 1:
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import torch  # noqa: E402  (after the environment above)

if _WORKERS > 1:
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))

DATA_DIR = osp.join(osp.dirname(__file__), 'data')
CUDA_SCRIPT = osp.join(DATA_DIR, 'scripts', 'cuda_checks.py')


def gpu_env() -> dict:
    """This process's environment with the machine's GPUs visible again."""
    env = dict(os.environ)
    if MACHINE_VISIBLE_DEVICES is None:
        env.pop('CUDA_VISIBLE_DEVICES', None)
    else:
        env['CUDA_VISIBLE_DEVICES'] = MACHINE_VISIBLE_DEVICES
    return env


@functools.lru_cache(maxsize=None)
def machine_gpu_count() -> int:
    """GPUs the machine shows, asked in a subprocess (this one must not see them)."""
    if MACHINE_VISIBLE_DEVICES is not None and not MACHINE_VISIBLE_DEVICES.strip():
        return 0
    if not (shutil.which('nvidia-smi') or glob.glob('/dev/nvidia[0-9]*')):
        return 0
    out = subprocess.run(
        [sys.executable, '-c', 'import torch; print(torch.cuda.device_count() '
         'if torch.cuda.is_available() else 0)'], env=gpu_env(), capture_output=True,
        text=True, timeout=300)
    return int(out.stdout.strip() or 0) if out.returncode == 0 else 0


def pytest_collection_modifyitems(config, items):
    cuda_items = [item for item in items if item.get_closest_marker('cuda')]
    if not cuda_items:
        return
    count = machine_gpu_count()
    for item in cuda_items:
        need = item.get_closest_marker('cuda').kwargs.get('gpus', 1)
        if count < need:
            item.add_marker(pytest.mark.skip(
                reason=f'needs {need} CUDA GPU(s), this machine shows {count}'))


def run_cuda_check(check: str, *args: str, timeout: int = 900) -> dict:
    """Run ``tests/data/scripts/cuda_checks.py CHECK ARGS`` where the GPUs are visible;
    return the JSON it prints last."""
    run = subprocess.run([sys.executable, CUDA_SCRIPT, check, *args], env=gpu_env(),
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='session')
def data_dir() -> str:
    return DATA_DIR


@pytest.fixture(scope='session')
def tiny_segformer_cfg_path() -> str:
    return osp.join(DATA_DIR, 'configs', 'tiny_segformer.py')


@pytest.fixture(autouse=True)
def mmseg_default_scope():
    """Build from mmseg's registries even after a test ran an mmengine Runner (which
    leaves its own default scope current)."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')


@pytest.fixture(autouse=True)
def torch_determinism_as_it_was():
    """A test whose training run ends in an exception (a simulated kill, a refused
    checkpoint) never reaches TAODeterminismHook.after_run: the process-wide switches it
    set (deterministic algorithms, the SDP kernels that CPU attention uses too) are put
    back here, so no later test inherits them."""
    from mmseg_tao.engine.hooks.determinism_hook import determinism_state, restore_determinism
    state = determinism_state()
    yield
    restore_determinism(state)


# A small trained SegFormer for tests/test_quantization. It lives here: a conftest.py in that
# folder would be imported as a second module named 'conftest', shadowing this one.
QUANT_TRAIN_ITERS = 80


@pytest.fixture(scope='session')
def trained(tmp_path_factory) -> dict:
    """The shapes demo data (64x64, 4 classes) and mit_b0 with a 64-wide head trained from
    scratch on the CPU, once per session: ``spec`` (the demo spec), ``root`` (its folder),
    ``checkpoint``, ``calib`` (the validation images, as calibration folder) and
    ``overrides`` (the head width, for every task)."""
    from mmseg_tao.apis import train
    from mmseg_tao.datasets.demo import make_kind
    root = tmp_path_factory.mktemp('quant')
    spec = make_kind(str(root), 'shapes', dict(train=24, val=8), 64, 0)
    overrides = ['model.decode_head.decoder_params.embed_dim=64']
    train(spec, [f'train.max_iters={QUANT_TRAIN_ITERS}',
                 f'train.checkpoint_interval={QUANT_TRAIN_ITERS}', 'train.validate=false',
                 'dataset.batch_size=4', *overrides])
    folder = osp.dirname(spec)
    return dict(spec=spec, root=folder, calib=osp.join(folder, 'images', 'val'),
                checkpoint=osp.join(folder, 'results', 'train', f'iter_{QUANT_TRAIN_ITERS}.pth'),
                overrides=overrides)
