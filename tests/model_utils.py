"""Helpers for model tests."""
import torch


def perturb(module: torch.nn.Module, seed: int = 0) -> None:
    """Make every floating tensor distinct (BN variances stay positive), so that a wrong
    key mapping cannot go unnoticed in an equivalence test."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                noise = torch.randn(t.shape, generator=g) * 0.05
                t.copy_(t.abs() + 0.5 + noise if name.endswith('running_var') else t + noise)
