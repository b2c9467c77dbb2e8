"""Where tasks run: TAO's num_gpus / gpu_ids rule, devices, backends and SyncBN.

The GPU branches run here with ``torch.cuda`` faked (CI has no GPU); tests/test_gpu runs
them for real where a GPU is present.
"""
import os

import pytest
import torch
import torch.nn as nn

import mmseg_tao  # noqa: F401
from mmseg_tao.apis import experiment, launch
from mmseg_tao.apis.train import train
from mmseg_tao.spec import SpecError, load_spec, spec_to_config
from mmseg_tao.spec.loader import reconcile_gpus
from seg_data import write_isbi_spec


@pytest.fixture
def spec_path(tmp_path):
    return write_isbi_spec(tmp_path, dict(max_iters=2), results_dir=str(tmp_path / 'out'))


@pytest.fixture
def fake_gpus(monkeypatch):
    """A machine with 4 GPUs, as torch.cuda reports it."""
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 4)
    monkeypatch.setattr(torch.cuda, 'set_device', lambda i: calls.append(i))
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    return calls


# (num_gpus, gpu_ids) -> what TAO 5.x's entrypoint launches (its reconciliation code).
TAO_RULE = [
    ((1, [0]), (1, [0])),
    ((2, [0, 1]), (2, [0, 1])),
    ((2, [0]), (2, [0, 1])),  # the count wins
    ((1, [2, 3]), (2, [2, 3])),  # a longer list raises the count and is kept
    ((3, [1, 2]), (3, [0, 1, 2])),  # a list of the wrong length becomes range(count)
    ((1, [3]), (1, [3])),
]


@pytest.mark.parametrize('given,expected', TAO_RULE)
def test_reconcile_gpus_is_taos_rule(given, expected):
    assert reconcile_gpus(*given) == expected


def test_resolved_spec_shows_reconciled_gpus(spec_path):
    notes = []
    spec = load_spec(spec_path, ['train.num_gpus=2'], notes=notes)
    assert (spec.train.num_gpus, spec.train.gpu_ids) == (2, [0, 1])
    assert notes == ['train.num_gpus (2) and train.gpu_ids ([0]) disagree: using num_gpus '
                     "2, gpu_ids [0, 1] (TAO's rule)"]
    # The resolved spec is what experiment_spec.yaml is written from.
    assert spec_to_config(spec)['tao_spec']['train']['gpu_ids'] == [0, 1]
    # TAO < 5.5 spells a single GPU gpu_id.
    spec = load_spec(spec_path, ['evaluate.gpu_id=3', 'inference.gpu_id=2',
                                 'inference.gpu_ids=[1]'])
    assert spec.evaluate.gpu_ids == [3] and spec.inference.gpu_ids == [1]


def test_cpu_plan_is_gloo_without_sync_bn(spec_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    spec = load_spec(spec_path, ['train.num_gpus=2'])
    plan = launch.plan_launch(spec, 'train')
    assert (plan.device, plan.backend, plan.nproc, plan.sync_bn) == ('cpu', 'gloo', 2, False)
    assert 'CUDA_VISIBLE_DEVICES' not in plan.env({})
    assert plan.env({})['OMP_NUM_THREADS'] == str(max(1, (os.cpu_count() or 1) // 2))
    cfg = experiment.task_config(spec, 'train')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo' and cfg.sync_bn is None
    assert not cfg.train_dataloader.get('pin_memory')


def test_gpu_plan_is_nccl_one_process_per_gpu(spec_path, fake_gpus, monkeypatch):
    spec = load_spec(spec_path, ['train.num_gpus=2'])  # gpu_ids [0] -> [0, 1]
    plan = launch.plan_launch(spec, 'train')
    assert (plan.device, plan.backend, plan.nproc, plan.gpu_ids) == ('cuda', 'nccl', 2, [0, 1])
    assert plan.sync_bn and plan.env({})['CUDA_VISIBLE_DEVICES'] == '0,1'
    assert 'OMP_NUM_THREADS' not in plan.env({})
    cfg = experiment.task_config(spec, 'train', plan=plan)
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert cfg.train_dataloader.pin_memory
    assert cfg.sync_bn == 'torch'  # the spec's default norm is SyncBN
    # gpu_ids index the GPUs this process sees: an existing CUDA_VISIBLE_DEVICES is mapped.
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '4,5,6,7')
    spec = load_spec(spec_path, ['train.gpu_ids=[1, 3]', 'train.num_gpus=2'])
    assert launch.plan_launch(spec, 'train').visible_devices == '5,7'
    # A single GPU process: BN, the chosen GPU made current.
    spec = load_spec(spec_path, ['train.gpu_ids=[2]'])
    plan = launch.plan_launch(spec, 'train')
    assert not plan.sync_bn and launch.select_device(plan) == 'cuda:2'
    assert fake_gpus == [2]
    assert experiment.task_config(spec, 'train', plan=plan).sync_bn is None
    # Inside a torchrun child the GPUs are already narrowed to the run's.
    spec = load_spec(spec_path, ['train.gpu_ids=[2, 3]'])
    plan = launch.plan_launch(spec, 'train', launched=True)
    assert plan.gpu_ids == [0, 1] and plan.visible_devices is None


def test_gpu_ids_beyond_the_machine_are_refused(spec_path, fake_gpus):
    spec = load_spec(spec_path, ['train.gpu_ids=[0, 5]'])
    with pytest.raises(SpecError) as err:
        launch.plan_launch(spec, 'train')
    assert 'train.gpu_ids: [0, 5] but this machine shows 4 GPU(s)' in str(err.value)
    assert 'GPU(s) [5] do not exist' in str(err.value)
    spec = load_spec(spec_path, ['train.gpu_ids=[1, 1]'])
    with pytest.raises(SpecError, match='names a GPU twice'):
        launch.plan_launch(spec, 'train')


def test_train_relaunches_on_the_spec_gpus(spec_path, fake_gpus, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(experiment, 'run_passing_signals',
                        lambda cmd, env: calls.append((cmd, env)) or 0)
    assert train(spec_path, ['train.num_gpus=2']) == 0
    (cmd, env), = calls
    assert '--nproc_per_node=2' in cmd and cmd[-2:] == ['--launcher', 'pytorch']
    assert env['CUDA_VISIBLE_DEVICES'] == '0,1'
    out = capsys.readouterr()
    assert 'launching 2 processes on GPUs [0, 1] (CUDA_VISIBLE_DEVICES=0,1), nccl' in out.out
    assert "note: train.num_gpus (2) and train.gpu_ids ([0]) disagree" in out.err


def test_several_gpus_for_evaluate_are_reported(spec_path, fake_gpus, capsys):
    spec = load_spec(spec_path, ['evaluate.num_gpus=2'])
    plan = experiment.single_process(spec, 'evaluate')
    assert plan.nproc == 2 and fake_gpus == [0]
    assert 'evaluate.num_gpus is 2; evaluate runs in one process on GPU 0' in \
        capsys.readouterr().err


def test_sync_bn_on_cpu_keeps_batchnorm():
    """A config with sync_bn run by several CPU processes: mmengine would convert BN to
    SyncBN, which cannot run on CPU tensors; the compat layer keeps BN."""
    import mmengine.runner.runner as runner_module
    from mmengine.model import convert_sync_batchnorm as mmengine_convert
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    assert isinstance(mmengine_convert(model)[1], nn.SyncBatchNorm)  # what mmengine does
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    assert isinstance(runner_module.convert_sync_batchnorm(model, 'torch')[1], nn.BatchNorm2d)
