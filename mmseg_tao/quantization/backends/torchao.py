"""``quantize.backend: torchao``: weight-only PTQ with torchao, per module.

As TAO 7.0.1's torchao backend: the modules ``quantize.layers`` select (then
``skip_names`` remove) get ``Int8WeightOnlyConfig`` (int8) or ``Float8WeightOnlyConfig``
(fp8_e4m3fn; fp8_e5m2 falls back to it with a warning, as TAO warns) through torchao's
per-module map (``FqnToConfig``) and ``quantize_``. Activation settings are ignored, as in
TAO. Where this differs: torchao's weight-only tensors run ``nn.Linear`` only (a Conv2d
with an ``Int8Tensor`` weight fails at the first forward pass), so selected modules of other
types stay in float and are counted in the report instead of breaking the model; a
selection with no ``nn.Linear`` is refused rather than saving an unquantised model.
"""
import sys
from collections import Counter
from typing import Dict

import torch.nn as nn

from ..config import QuantizeConfigError, QuantizeSettings
from ..matching import resolve_layers, run_modules_one_by_one


def _weight_config(dtype: str):
    from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig
    if dtype == 'int8':
        return Int8WeightOnlyConfig()
    return Float8WeightOnlyConfig()


def plan_weights(model: nn.Module, settings: QuantizeSettings) -> Dict[str, str]:
    """``{module name: dtype}`` of the ``nn.Linear`` modules torchao quantises."""
    modules = dict(model.named_modules())
    return {name: t.dtype for name, t in resolve_layers(model, settings, 'weights').items()
            if isinstance(modules[name], nn.Linear)}


def quantize_weights(model: nn.Module, settings: QuantizeSettings,
                     verbose: bool = False) -> Dict[str, object]:
    """Quantise ``model``'s selected ``nn.Linear`` weights in place.

    Args:
        model: The fp32 model.
        settings: The checked ``quantize`` section.
        verbose: Print what was quantised and what was left in float.

    Returns:
        A report: ``quantized`` (``{name: dtype}``) and ``left_in_float`` (selected modules
        of other types, counted by class).

    Raises:
        QuantizeConfigError: Nothing to quantise, or fp8 not available on this device.
    """
    from torchao.quantization import FqnToConfig, quantize_

    run_modules_one_by_one(model)
    chosen = resolve_layers(model, settings, 'weights')
    modules = dict(model.named_modules())
    plan = plan_weights(model, settings)
    # Selected modules with weights of their own that torchao leaves in float.
    others = Counter(type(modules[n]).__name__ for n in chosen
                     if n not in plan and isinstance(getattr(modules[n], 'weight', None),
                                                     nn.Parameter))
    if not plan:
        raise QuantizeConfigError(
            'quantize.layers: the layers (after skip_names) select no nn.Linear module, and '
            'torchao weight-only PTQ quantises nn.Linear weights only; nothing would be '
            f'quantised (selected: {dict(others) or "none"})')
    if 'fp8_e5m2' in plan.values():
        print('warning: torchao weight-only FP8 has e4m3 only; fp8_e5m2 falls back to '
              'fp8_e4m3fn (as in TAO)', file=sys.stderr)
    configs = {dtype: _weight_config(dtype) for dtype in set(plan.values())}
    kwargs = dict(settings.backend_kwargs)
    try:
        quantize_(model, FqnToConfig({n: configs[d] for n, d in plan.items()}),
                  filter_fn=None, **kwargs)
    except (NotImplementedError, RuntimeError, AssertionError) as err:
        fp8 = [d for d in plan.values() if d.startswith('fp8')]
        if not fp8:
            raise
        raise QuantizeConfigError(
            f'quantize.layers: weights dtype {fp8[0]!r}: torchao\'s Float8WeightOnlyConfig '
            f'is not available on this device ({type(err).__name__}: '
            f'{str(err).splitlines()[0][:200]}); use int8') from None
    if verbose:
        dtypes = Counter(plan.values())
        print(f'torchao: {len(plan)} nn.Linear weight(s) quantised '
              f'({", ".join(f"{n} {d}" for d, n in dtypes.items())})'
              + (f'; selected modules left in float (torchao weight-only runs nn.Linear '
                 f'only): {dict(others)}' if others else ''), flush=True)
    return dict(quantized=plan, left_in_float=dict(others))
