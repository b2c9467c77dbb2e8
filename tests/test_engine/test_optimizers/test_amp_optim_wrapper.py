"""TAOAmpOptimWrapper: bf16 where the hardware has it (no loss scaling), fp16 with
mmengine's dynamic loss scaling on older GPUs, bf16 autocast on the CPU."""
import pytest
import torch
from mmseg.registry import OPTIM_WRAPPERS

from mmseg_tao.engine.optimizers import TAOAmpOptimWrapper, amp_dtype
from model_utils import seg_batch, tiny_segmentor


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)

    def set_bf16(supported: bool):
        monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: supported)
    return set_bf16


def test_dtype_choice(fake_cuda, monkeypatch):
    fake_cuda(True)  # Ampere and later
    assert amp_dtype('auto') == torch.bfloat16
    fake_cuda(False)  # Volta / Turing
    assert amp_dtype('auto') == torch.float16
    assert amp_dtype('bfloat16') == torch.bfloat16 and amp_dtype('float16') == torch.float16
    assert amp_dtype('auto', device='cpu') == torch.bfloat16
    with pytest.raises(ValueError, match="AMP dtype 'int8'"):
        amp_dtype('int8')


def _sgd():
    return torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)


def test_gpu_branches(fake_cuda):
    from torch.amp import GradScaler
    fake_cuda(True)
    bf16 = TAOAmpOptimWrapper(optimizer=_sgd())
    assert bf16.cast_dtype == torch.bfloat16 and bf16.loss_scaler is None
    assert bf16.device_type == 'cuda'
    assert 'loss_scaler' not in bf16.state_dict()
    fake_cuda(False)
    fp16 = TAOAmpOptimWrapper(optimizer=_sgd())
    assert fp16.cast_dtype == torch.float16 and isinstance(fp16.loss_scaler, GradScaler)
    # A float16 run's state (with its loss scale) resumes in bfloat16.
    fake_cuda(True)
    TAOAmpOptimWrapper(optimizer=_sgd()).load_state_dict(
        dict(_sgd().state_dict(), loss_scaler=dict(scale=1024.0)))


def _model():
    return tiny_segmentor(num_classes=3, perturbed=False).train()


def _data():
    return seg_batch([(64, 64)] * 2, num_classes=3)


def test_cpu_training_step_runs_in_bf16():
    """mmengine's AmpOptimWrapper refuses to start without a GPU; ours trains in bf16
    autocast on the CPU with float32 master weights, close to a float32 step."""
    losses, dtypes = {}, []
    for amp in (False, True):
        model = _model()
        hook = model.decode_head.linear_pred.register_forward_hook(
            lambda m, i, o: dtypes.append(o.dtype))
        wrapper = OPTIM_WRAPPERS.build(dict(
            type='TAOAmpOptimWrapper' if amp else 'OptimWrapper',
            optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3)))
        before = model.backbone.patch_embed1.proj.weight.detach().clone()
        losses[amp] = model.train_step(_data(), wrapper)['loss'].item()
        hook.remove()
        after = model.backbone.patch_embed1.proj.weight
        assert after.dtype == torch.float32 and not torch.equal(before, after)
    assert dtypes == [torch.float32, torch.bfloat16]
    assert losses[True] == pytest.approx(losses[False], rel=0.02)
