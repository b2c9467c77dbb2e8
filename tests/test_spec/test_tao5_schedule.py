"""TAO 5's learning-rate schedule, stepped as mmengine steps the config's schedulers,
against mmcv 1.x's (TAO 5.0 - 5.3): ``PolyLrUpdaterHook.get_lr`` with linear warm-up
(``LrUpdaterHook.get_warmup_lr``), written out here from mmcv 1.7.2's
``mmcv/runner/hooks/lr_updater.py``.
"""
import math

import pytest
import torch

from mmseg_tao.spec import load_spec, spec_to_config
from seg_data import write_isbi_spec

# Schedulers are built before any optimizer step, as the Runner builds them.
pytestmark = pytest.mark.filterwarnings('ignore:Detected call of:UserWarning')


def mmcv_lr(i: int, base: float, total: int, warmup: int, ratio: float, power: float,
            min_lr: float) -> float:
    """mmcv 1.x at iteration i (``runner.iter``): poly over ``max_iters``, then, while
    i < warmup_iters, ``k = (1 - i / warmup_iters) * (1 - warmup_ratio); lr * (1 - k)``."""
    regular = (base - min_lr) * (1 - i / total) ** power + min_lr
    if i >= warmup:
        return regular
    k = (1 - i / warmup) * (1 - ratio)
    return regular * (1 - k)


def lr_trace(cfg: dict, base: float, total: int):
    """The rate of each iteration with the config's schedulers stepped after it, as
    mmengine's ParamSchedulerHook does."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=base))
    schedulers = [PARAM_SCHEDULERS.build(dict(c, optimizer=wrapper))
                  for c in cfg['param_scheduler']]
    trace = []
    for _ in range(total):
        trace.append(wrapper.optimizer.param_groups[0]['lr'])
        wrapper.optimizer.step()
        for s in schedulers:
            s.step()
    return trace


def config(tmp_path, total: int, warmup: int, ratio: float = 1e-3, power: float = 0.9,
           min_lr: float = 0.0, base: float = 1e-3) -> dict:
    spec = write_isbi_spec(tmp_path, dict(
        max_iters=total, checkpoint_interval=total, logging_interval=1,
        trainer=dict(sf_optim=dict(lr=base), lr_config=dict(
            warmup_iters=warmup, warmup_ratio=ratio, power=power, min_lr=min_lr))))
    return spec_to_config(load_spec(spec, task='train'))


@pytest.mark.parametrize('warmup', [0, 1, 2, 7, 30, 45])  # 45: longer than the run
def test_warmup_and_poly_are_mmcv(tmp_path, warmup):
    """Every iteration's rate is mmcv's: warm-up of 0, 1 (mmengine's LinearLR(end=1), as
    TAO 5.5 writes it, never steps and leaves 1e-6 x lr for the whole run), 2, normal."""
    total, base = 40, 1e-3
    cfg = config(tmp_path, total, warmup, base=base)
    trace = lr_trace(cfg, base, total)
    want = [mmcv_lr(i, base, total, warmup, 1e-3, 0.9, 0.0) for i in range(total)]
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(trace, want))
           if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)]
    assert not bad, bad[:3]


def test_warmup_of_one_iteration_by_hand(tmp_path):
    """warmup_iters 1: iteration 0 at warmup_ratio x lr, iteration 1 at the poly rate
    (1 - 1/4) x lr (power 1); before the fix the run stayed at 1e-6 x lr."""
    cfg = config(tmp_path, 4, 1, ratio=1e-6, power=1.0)
    trace = lr_trace(cfg, 1e-3, 4)
    assert trace == pytest.approx([1e-9, 0.75e-3, 0.5e-3, 0.25e-3], rel=1e-9)


def test_warmup_of_two_iterations_by_hand(tmp_path):
    """warmup_iters 2, ratio 0.1, power 1, 4 iterations: 0.1 lr, then the poly rate 0.75 lr
    times 1 - (1 - 1/2)(1 - 0.1) = 0.55, then poly."""
    cfg = config(tmp_path, 4, 2, ratio=0.1, power=1.0)
    trace = lr_trace(cfg, 1e-3, 4)
    assert trace == pytest.approx([1e-4, 0.75e-3 * 0.55, 0.5e-3, 0.25e-3], rel=1e-9)


def test_min_lr_is_close(tmp_path):
    """min_lr > 0: chained schedulers also scale min_lr during the warm-up; the rate stays
    within a small part of min_lr of mmcv's (the docstring's bound)."""
    total, warmup, min_lr = 400, 30, 1e-5
    cfg = config(tmp_path, total, warmup, min_lr=min_lr)
    trace = lr_trace(cfg, 1e-3, total)
    bound = min_lr * 0.9 * warmup * math.log(warmup) / total
    for i, value in enumerate(trace):
        want = mmcv_lr(i, 1e-3, total, warmup, 1e-3, 0.9, min_lr)
        assert abs(value - want) <= bound, (i, value, want)


def test_zero_warmup_ratio_is_accepted(tmp_path):
    """warmup_ratio 0 (mmcv: lr 0 at iteration 0) builds and steps (mmengine's LinearLR
    cannot chain from 0: the smallest positive start is used)."""
    cfg = config(tmp_path, 10, 4, ratio=0.0, power=1.0)
    trace = lr_trace(cfg, 1e-3, 10)
    want = [mmcv_lr(i, 1e-3, 10, 4, 0.0, 1.0, 0.0) for i in range(10)]
    assert trace == pytest.approx(want, rel=1e-9, abs=1e-14)
