"""TAO 7.0.1's deterministic mode (``core/initialize_experiments.py``): warn-only
deterministic algorithms, ``CUBLAS_WORKSPACE_CONFIG`` ``:4096:8`` unless set, the math
attention kernel, ``cudnn.deterministic``; never mmengine's strict mode."""
import os
import warnings
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner import BaseLoop
from mmengine.runner.utils import set_random_seed

from mmseg_tao.engine.hooks import TAODeterminismHook, set_tao_determinism


@pytest.fixture(autouse=True)
def restore_torch_state(monkeypatch):
    """Start without a cuBLAS setting; conftest puts the determinism switches back, and
    cudnn.benchmark is restored here."""
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    benchmark = torch.backends.cudnn.benchmark
    yield
    torch.backends.cudnn.benchmark = benchmark


class _Loop(BaseLoop):
    def run(self):  # pragma: no cover - never run
        pass


def _training_runner():
    runner = SimpleNamespace()
    runner._train_loop = _Loop.__new__(_Loop)
    return runner


def _put_on_cpu():
    """``Tensor.put_(accumulate=False)``: an operation without a deterministic kernel even
    on the CPU (as bilinear upsampling's backward on CUDA), for checking the mode here."""
    torch.zeros(4).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))


def test_hook_sets_taos_mode():
    torch.use_deterministic_algorithms(False)
    TAODeterminismHook(deterministic=True).before_run(_training_runner())
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'
    assert torch.backends.cudnn.deterministic
    assert not torch.backends.cuda.flash_sdp_enabled()
    assert not torch.backends.cuda.mem_efficient_sdp_enabled()
    assert torch.backends.cuda.math_sdp_enabled()
    with pytest.warns(UserWarning, match='does not have a deterministic implementation'):
        _put_on_cpu()  # warns, as TAO 7's (Lightning deterministic="warn")


def test_mmengine_strict_mode_raises_where_taos_warns():
    """What the hook replaces: mmengine's randomness.deterministic is torch's strict mode,
    in which such an operation (on CUDA: a SegFormer's first backward) raises."""
    set_random_seed(0, deterministic=True)
    with pytest.raises(RuntimeError, match='does not have a deterministic implementation'):
        _put_on_cpu()


def test_an_existing_cublas_setting_is_kept(monkeypatch):
    monkeypatch.setenv('CUBLAS_WORKSPACE_CONFIG', ':16:8')
    set_tao_determinism(True)
    assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':16:8'


def test_not_deterministic_switches_nothing_on():
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = True
    TAODeterminismHook(deterministic=False).before_run(_training_runner())
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic  # TAO sets it to the spec's value
    assert 'CUBLAS_WORKSPACE_CONFIG' not in os.environ
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _put_on_cpu()


def test_test_runs_are_left_alone():
    torch.use_deterministic_algorithms(False)
    runner = SimpleNamespace(_train_loop=None)
    TAODeterminismHook(deterministic=True).before_run(runner)
    assert not torch.are_deterministic_algorithms_enabled()


def _tao6_spec(tmp_path) -> str:
    """A TAO 6 spec (defaults: cudnn.deterministic true) over 2 + 1 tiny pairs."""
    import numpy as np
    import yaml
    from PIL import Image
    root = tmp_path / 'data'
    for split, n in (('train', 2), ('val', 1)):
        for kind in ('images', 'masks'):
            os.makedirs(root / kind / split)
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(
                root / 'images' / split / f'{i}.png')
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
                root / 'masks' / split / f'{i}.png')
    spec = dict(model=dict(backbone=dict(type='mit_b0'),
                           decode_head=dict(decoder_params=dict(embed_dim=32))),
                dataset=dict(segment=dict(root_dir=str(root), batch_size=2, img_size=32,
                                          workers=0)),
                train=dict(num_epochs=1))
    path = tmp_path / 'spec.yaml'
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_runner_from_a_tao6_config_is_warn_only(tmp_path):
    """A TAO 6 spec's config in mmengine's Runner: TAO's warn-only mode when training
    starts, before any weight is initialised."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmseg_tao.spec import load_spec, spec_to_config
    cfg = spec_to_config(load_spec(_tao6_spec(tmp_path), task='train'))
    cfg['work_dir'] = str(tmp_path / 'work')
    torch.use_deterministic_algorithms(False)
    runner = Runner.from_cfg(Config(cfg))
    seen = {}
    runner.model.init_weights = lambda: seen.update(
        enabled=torch.are_deterministic_algorithms_enabled(),
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled())
    runner.train_loop.run = lambda: runner.model  # the setup only
    runner.train()
    assert seen == dict(enabled=True, warn_only=True)


def test_settings_are_the_runs_own(monkeypatch):
    """The flags are process-wide: the flash-attention switch also picks the CPU kernel
    (a bf16 model then casts at every attention op), so a run puts them back when it ends
    and prediction or a later run in the same process sees what was there before."""
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    torch.use_deterministic_algorithms(False)
    before = (torch.backends.cuda.flash_sdp_enabled(), torch.backends.cudnn.deterministic)
    hook, runner = TAODeterminismHook(deterministic=True), _training_runner()
    hook.before_run(runner)
    assert not torch.backends.cuda.flash_sdp_enabled()
    hook.after_run(runner)
    assert (torch.backends.cuda.flash_sdp_enabled(), torch.backends.cudnn.deterministic) == \
        before
    assert not torch.are_deterministic_algorithms_enabled()
    assert 'CUBLAS_WORKSPACE_CONFIG' not in os.environ
