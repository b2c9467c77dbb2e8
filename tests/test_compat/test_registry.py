"""mmseg_tao.compat.registry: every patch declared once, applied by one wrap-mark-replace,
listed by patches(), turned off by MMSEG_TAO_NO_PATCHES; and each patch's fix against the
stock object it replaced."""
import logging
import os
import pickle
import socket
import subprocess
import sys
import types

import pytest
import torch
import torch.distributed as torch_dist

import mmseg_tao  # noqa: F401  (applies the compat fixes)
from mmseg_tao import compat
from mmseg_tao.compat import onnx_export, registry

NAMES = ['mmengine-weights-only-load', 'mmengine-dist-gloo-on-cpu',
         'mmengine-dist-slurm-gloo-on-cpu', 'mmengine-ddp-cpu-device-ids',
         'mmengine-sync-bn-on-cpu',
         'mmengine-complexity-inputs', 'mmseg-draw-contiguous', 'mmseg-instance-metainfo',
         'mmseg-benchmark-size-check', 'mmdeploy-onnx-torchscript']


def test_patches_lists_every_patch_with_its_reason():
    listed = {p.name: p for p in compat.patches()}
    assert list(listed) == NAMES
    for p in listed.values():
        assert p.target and p.reason and p.versions
    # Applied on import, except the one for mmseg's benchmark.py (this is pytest) and the
    # ONNX one where torch does not default to the dynamo exporter.
    expected = ['mmseg-benchmark-size-check'] + (
        [] if onnx_export._needed() else ['mmdeploy-onnx-torchscript'])
    assert [n for n, p in listed.items() if not p.applied] == expected


# --- the mechanism, on objects of this test ----------------------------------------------

class Stock:
    table = {'': 'stock entry'}

    def method(self, x):
        return x

    @staticmethod
    def helper(x):
        return x


def _plus_one(original):
    def replacement(*args):
        return original(*args) + 1
    return replacement


@pytest.fixture
def declared(monkeypatch):
    """Three test patches on :class:`Stock`; removed again afterwards."""
    here = f'{__name__}.Stock'
    monkeypatch.setattr(Stock, 'method', Stock.__dict__['method'])
    monkeypatch.setattr(Stock, 'helper', Stock.__dict__['helper'])
    monkeypatch.setattr(Stock, 'table', {'': 'stock entry'})
    patches = [registry.Patch('test-method', f'{here}.method', 'r', 'v', _plus_one),
               registry.Patch('test-static', f'{here}.helper', 'r', 'v', _plus_one),
               registry.Patch('test-item', f"{here}.table['']", 'r', 'v',
                              lambda old: lambda: old)]
    for p in patches:
        monkeypatch.setitem(registry._PATCHES, p.name, p)
    yield [p.name for p in patches]
    for p in patches:
        registry._ORIGINALS.pop(p.name, None)


def test_wrap_mark_replace_is_idempotent(declared):
    stock_method = Stock.__dict__['method']
    assert registry.apply_patches(declared) == declared
    assert Stock().method(1) == 2 and Stock.helper(1) == 2
    assert isinstance(Stock.__dict__['helper'], staticmethod)  # stays a staticmethod
    assert Stock.table['']() == 'stock entry'
    patched = Stock.__dict__['method']
    assert patched.__mmseg_tao_patch__ == 'test-method'
    assert patched.__wrapped__ is stock_method is compat.original('test-method')
    registry.apply_patches(declared)  # again: the mark says it is there
    assert Stock.__dict__['method'] is patched and Stock().method(1) == 2
    assert all(registry.is_applied(n) for n in declared)


def test_env_var_turns_off_all_or_named(declared, monkeypatch):
    monkeypatch.setenv(registry.DISABLE_ENV, 'test-static, test-item')
    assert registry.apply_patches(declared) == ['test-method']
    assert Stock.helper(1) == 1 and not registry.is_applied('test-static')
    with pytest.raises(KeyError, match='not applied'):
        compat.original('test-static')
    monkeypatch.setenv(registry.DISABLE_ENV, '1')
    assert registry.apply_patches(declared) == [] and registry.disabled_names() is None
    monkeypatch.setenv(registry.DISABLE_ENV, 'no-such-patch')
    with pytest.warns(UserWarning, match='no compat patch named no-such-patch'):
        registry.apply_patches(declared)


def test_names_are_declared_once():
    with pytest.raises(ValueError, match='already registered'):
        registry.register(registry.Patch(NAMES[0], 'x.y', 'r', 'v', lambda f: f))


@pytest.mark.slow  # a fresh interpreter imports everything
def test_env_var_disables_every_patch_at_import():
    env = dict(os.environ, MMSEG_TAO_NO_PATCHES='1')
    code = ('import mmseg_tao, mmseg_tao.compat as c; '
            'assert not any(p.applied for p in c.patches()); '
            'from mmengine.runner.checkpoint import CheckpointLoader as L; '
            "assert L._schemes[''].__module__ == 'mmengine.runner.checkpoint'")
    subprocess.run([sys.executable, '-c', code], check=True, env=env)


# --- each patch against the stock object (the others: test_mmseg_tools_compat.py) -------

def test_weights_only_load_of_mmengine_data(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader
    path = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict={'w': torch.ones(1)}, message_hub=HistoryBuffer([1.0], [1])), path)
    with pytest.raises(pickle.UnpicklingError):  # torch >= 2.6's weights_only default
        compat.original('mmengine-weights-only-load')(path, 'cpu')
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert ckpt['message_hub'].current() == 1.0


@pytest.fixture
def gloo_group(monkeypatch):
    """A one-process group, initialised by mmengine's (patched) pytorch launcher."""
    import mmengine.dist.utils as dist_utils
    with socket.socket() as s:  # a free port: other test runs may share the machine
        s.bind(('127.0.0.1', 0))
        port = str(s.getsockname()[1])
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                           MASTER_ADDR='127.0.0.1', MASTER_PORT=port).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr('mmengine.device.get_device', lambda: 'cpu')
    dist_utils._init_dist_pytorch('nccl')
    try:
        yield
    finally:
        torch_dist.destroy_process_group()


@pytest.mark.skipif(torch.cuda.is_available(), reason='stock behaviour without a GPU')
def test_dist_stock_needs_a_gpu(monkeypatch):
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises((RuntimeError, AssertionError)):
        compat.original('mmengine-dist-gloo-on-cpu')('nccl')


def test_dist_gloo_and_ddp_on_cpu(gloo_group):
    from mmengine.model.wrappers import MMDistributedDataParallel
    assert torch_dist.get_backend() == 'gloo'
    module = torch.nn.Linear(2, 2)
    ddp = MMDistributedDataParallel(module=module, device_ids=[0])
    assert ddp.device_ids is None
    stock_init = compat.original('mmengine-ddp-cpu-device-ids')
    with pytest.raises(ValueError, match='device_ids'):
        stock_init(MMDistributedDataParallel.__new__(MMDistributedDataParallel),
                   module=torch.nn.Linear(2, 2), device_ids=[0])


def test_sync_bn_kept_as_bn_on_cpu(caplog):
    import mmengine.runner.runner as runner_module
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    stock = compat.original('mmengine-sync-bn-on-cpu')(model)
    assert isinstance(stock[1], torch.nn.SyncBatchNorm)  # raises on CPU tensors in training
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    with caplog.at_level(logging.WARNING):
        assert runner_module.convert_sync_batchnorm(model) is model
    assert type(model[1]) is torch.nn.BatchNorm2d


@pytest.mark.skipif(not onnx_export._needed(), reason='torch exports with TorchScript')
def test_onnx_export_torchscript_inside_mmdeploy_only():
    from mmdeploy.core import RewriterContext
    name = 'mmdeploy-onnx-torchscript'
    stock = torch.onnx.export
    assert registry.is_applied(name) and compat.original(name) is stock
    with RewriterContext(cfg={}, backend='onnxruntime'):
        assert getattr(torch.onnx.export, '__mmseg_tao_patch__', None) == name
    assert torch.onnx.export is stock  # outside mmdeploy's export: untouched
    calls = []
    fixed = registry._PATCHES[name].wrap(lambda *a, **kw: calls.append(kw))
    fixed('model')
    fixed('model', dynamo=True)
    assert calls == [dict(dynamo=False), dict(dynamo=True)]


def test_aliases_follow_the_original(monkeypatch):
    main = types.ModuleType('__main__')
    monkeypatch.setitem(sys.modules, '__main__', main)
    compat.apply()  # no such name in this __main__: nothing to do
    assert not hasattr(main, 'get_model_complexity_info')
