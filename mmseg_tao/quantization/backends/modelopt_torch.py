"""``quantize.backend: modelopt.pytorch``: static PTQ with NVIDIA ModelOpt
(``modelopt.torch.quantization``), calibrated on the calibration images.

The spec's layers become ModelOpt's ``quant_cfg`` as TAO 7.0.1 builds it: one
``<module>.weight_quantizer`` / ``<module>.input_quantizer`` entry per module a layer selects
(``num_bits`` 8 for int8, ``(4, 3)`` for fp8_e4m3fn; fp8_e5m2 falls back to e4m3 in static
mode, as TAO warns; ``axis`` from ``quant_axis``; ``native`` disables), ``skip_names``
disabling both quantizers of the modules they select. Unlike TAO, ``"default": {"enable":
False}`` comes first, so modules no layer selects stay in float (without it ModelOpt would
quantise them with its defaults).

Algorithms: TAO passes ``minmax`` / ``max`` / ``entropy`` to ModelOpt as they are; ModelOpt
0.47 knows ``max`` (min/max calibration) and does entropy calibration through histogram
calibrators. So minmax and max run ModelOpt's ``max`` algorithm; entropy inserts
``HistogramCalibrator`` input quantizers, collects the histograms over the calibration
images and loads the entropy-optimal ranges (weights keep max calibration).
"""
import sys
from typing import Any, Callable, Dict, Iterable, Optional

import torch
import torch.nn as nn

from ..config import NATIVE, QuantizeConfigError, QuantizeSettings, TensorSettings, layer_dtypes
from ..matching import named_modules, resolve_layers, run_modules_one_by_one, skipped

NUM_BITS = {'int8': 8, 'fp8_e4m3fn': (4, 3), 'fp8_e5m2': (4, 3)}


def _attributes(t: TensorSettings, entropy: bool = False) -> Dict[str, Any]:
    if t.dtype == NATIVE:
        return {'enable': False}
    attrs: Dict[str, Any] = {'num_bits': NUM_BITS[t.dtype], 'axis': t.axis}
    if entropy:
        attrs['calibrator'] = 'histogram'
    return attrs


def modelopt_config(model: nn.Module, settings: QuantizeSettings,
                    algorithm: str) -> Dict[str, Any]:
    """ModelOpt's ``{"quant_cfg": ..., "algorithm": ...}`` for ``settings`` on ``model``.

    Args:
        model: The fp32 model (module names are resolved on it).
        settings: The checked ``quantize`` section.
        algorithm: ``max`` or ``entropy`` (:func:`~mmseg_tao.quantization.config.
            effective_algorithm`).
    """
    entropy = algorithm == 'entropy'
    quant_cfg: Dict[str, Any] = {'default': {'enable': False}}  # first: later keys win
    for name, t in resolve_layers(model, settings, 'weights').items():
        quant_cfg[f'{name}.weight_quantizer'] = _attributes(t)
    for name, t in resolve_layers(model, settings, 'activations').items():
        quant_cfg[f'{name}.input_quantizer'] = _attributes(t, entropy)
    for name in skipped(named_modules(model), settings.skip_names):
        quant_cfg[f'{name}.weight_quantizer'] = {'enable': False}
        quant_cfg[f'{name}.input_quantizer'] = {'enable': False}
    if 'fp8_e5m2' in layer_dtypes(settings):
        print('warning: static PTQ has no fp8_e5m2 in ModelOpt; falling back to fp8_e4m3fn '
              '(as in TAO)', file=sys.stderr)
    return {'quant_cfg': quant_cfg, 'algorithm': None if entropy else 'max'}


def _entropy_calibrate(model: nn.Module, forward_loop: Callable[[nn.Module], None]) -> None:
    """Histogram calibration: collect, then entropy ranges for histogram calibrators and
    max ranges for the rest (the weights)."""
    from modelopt.torch.quantization.calib import HistogramCalibrator
    from modelopt.torch.quantization.model_calib import enable_stats_collection
    from modelopt.torch.quantization.nn import TensorQuantizer

    enable_stats_collection(model)
    forward_loop(model)
    for module in model.modules():
        if not isinstance(module, TensorQuantizer) or module._disabled:
            continue
        calibrator = getattr(module, '_calibrator', None)
        if isinstance(calibrator, HistogramCalibrator):
            if calibrator.compute_amax('entropy') is not None:
                module.load_calib_amax('entropy')
        elif calibrator is not None and calibrator.compute_amax() is not None:
            module.load_calib_amax()
        module.enable_quant()
        module.disable_calib()


def count_quantizers(model: nn.Module) -> Dict[str, int]:
    """Enabled weight and input quantizers of a ModelOpt-quantised model."""
    from modelopt.torch.quantization.nn import TensorQuantizer
    out = {'weight': 0, 'input': 0}
    for name, module in model.named_modules():
        if isinstance(module, TensorQuantizer) and module.is_enabled:
            for kind in out:
                if name.endswith(f'{kind}_quantizer'):
                    out[kind] += 1
    return out


def quantize_static(model: nn.Module, settings: QuantizeSettings, algorithm: str,
                    batches: Iterable[torch.Tensor],
                    device: Optional[torch.device] = None) -> nn.Module:
    """Insert ModelOpt quantizers into ``model`` and calibrate them on ``batches``.

    Args:
        model: The fp32 model (changed in place).
        settings: The checked ``quantize`` section.
        algorithm: ``max`` or ``entropy``.
        batches: Normalised input batches [N,3,H,W] (re-iterable; a progress bar shows).
        device: Where calibration runs (default: the model's device).

    Returns:
        The quantised model.

    Raises:
        QuantizeConfigError: The layers enable no weight quantizer.
    """
    import modelopt.torch.quantization as mtq

    config = modelopt_config(run_modules_one_by_one(model), settings, algorithm)
    if not any(k.endswith('.weight_quantizer') and v.get('enable', True)
               for k, v in config['quant_cfg'].items()):
        raise QuantizeConfigError('quantize.layers: the layers (after skip_names) enable no '
                                  'weight quantizer; nothing would be quantised')
    device = device or next(model.parameters()).device

    def forward_loop(m: nn.Module) -> None:
        m.eval()
        with torch.no_grad():
            for inputs in batches:
                m(inputs.to(device))

    model.eval()
    if algorithm == 'entropy':
        model = mtq.quantize(model, config, None)
        _entropy_calibrate(model, forward_loop)
    else:
        model = mtq.quantize(model, config, forward_loop)
    counts = count_quantizers(model)
    if not counts['weight']:
        raise QuantizeConfigError('quantize.layers: no module the layers select can be '
                                  'quantised by ModelOpt (Linear, Conv2d, ...)')
    print(f'modelopt.pytorch: {counts["weight"]} weight and {counts["input"]} input '
          f'quantizer(s) enabled, {algorithm} calibration', flush=True)
    return model
