"""Checks shared by the MiT and FAN backbone tests."""
from typing import Callable

import pytest
import torch
import torch.utils.checkpoint


@pytest.fixture
def check_with_cp(monkeypatch) -> Callable[..., None]:
    """``check(build, num_blocks)``: ``build(with_cp=...)`` makes a backbone without and
    with gradient checkpointing; with the same weights and input, in train mode, outputs
    and the gradients of the input and of every parameter must be equal, and the
    checkpointed model must run ``num_blocks`` blocks through
    ``torch.utils.checkpoint.checkpoint`` (so that the check cannot pass vacuously)."""
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting_checkpoint(function, *args, **kwargs):
        calls.append(function)
        return original(function, *args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', counting_checkpoint)

    def run(model: torch.nn.Module, x: torch.Tensor):
        model.train()
        x = x.clone().requires_grad_()
        feats = model(x)
        g = torch.Generator().manual_seed(1)
        sum((f * torch.randn(f.shape, generator=g)).sum() for f in feats).backward()
        grads = {'input': x.grad, **{n: p.grad for n, p in model.named_parameters()}}
        assert [n for n, grad in grads.items() if grad is None] == []
        return [f.detach() for f in feats], grads

    def check(build: Callable[..., torch.nn.Module], num_blocks: int) -> None:
        torch.manual_seed(0)
        plain = build(with_cp=False)
        plain.init_weights()
        checkpointed = build(with_cp=True)
        checkpointed.load_state_dict(plain.state_dict())
        x = torch.randn(2, 3, 64, 64)

        feats, grads = run(plain, x)
        assert calls == []
        cp_feats, cp_grads = run(checkpointed, x)
        assert len(calls) == num_blocks
        torch.testing.assert_close(cp_feats, feats)
        assert list(cp_grads) == list(grads)
        for name, grad in grads.items():
            torch.testing.assert_close(cp_grads[name], grad, msg=f'gradient of {name}')

    return check
