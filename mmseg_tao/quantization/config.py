"""The ``quantize`` section checked against its backend, as TAO 7.0.1 checks it.

What each backend accepts is TAO 7.0.1's (``nvidia_tao_pytorch/core/quantization/``):

- modes: ``torchao`` runs ``weight_only_ptq`` only, ``modelopt.pytorch`` and
  ``modelopt.onnx`` ``static_ptq`` only (each backend's ``SUPPORTED_MODES``, refused by
  ``validate_backend_mode_compatibility`` with "Unsupported mode ...").
- algorithms: ``modelopt.pytorch`` takes minmax, max, entropy; ``modelopt.onnx`` takes max,
  entropy, awq_clip, awq_lite, awq_full, rtn_dq (any other name falls back to ``max``, so
  the default ``minmax`` means ``max`` there); ``torchao`` ignores it.
- dtypes: int8, fp8_e4m3fn, fp8_e5m2 (``SupportedDtype``), and ``native`` to leave a
  layer unquantised. fp8_e5m2 falls back to fp8_e4m3fn with a warning (torchao's weight-only
  FP8 and ModelOpt's static FP8 have e4m3 only).
- ``device``: ``^(cuda|cpu|trt|cuda:[0-9]+)$``; ``trt`` is for ``modelopt.onnx``
  (``modelopt.pytorch`` falls back to CUDA for calibration), CUDA falls back to the CPU
  without a GPU.

Refusals are :class:`QuantizeConfigError` (a :class:`~mmseg_tao.spec.SpecError`: one message,
exit status 2 from the ``mmseg-tao`` commands). Torch-free.
"""
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ..spec.quantize_schema import QUANT_DEVICE_PATTERN, QuantizeSpec
from ..spec.validation import SpecError, build

TORCHAO, MODELOPT_PYTORCH, MODELOPT_ONNX = 'torchao', 'modelopt.pytorch', 'modelopt.onnx'
BACKENDS = (MODELOPT_PYTORCH, TORCHAO, MODELOPT_ONNX)
# Each backend's SUPPORTED_MODES in TAO 7.0.1.
BACKEND_MODES: Dict[str, Sequence[str]] = {
    TORCHAO: ('weight_only_ptq', ),
    MODELOPT_PYTORCH: ('static_ptq', ),
    MODELOPT_ONNX: ('static_ptq', ),
}
# The algorithms each backend takes (TAO 7.0.1's ModelQuantizationConfig.algorithm doc).
BACKEND_ALGORITHMS: Dict[str, Sequence[str]] = {
    TORCHAO: (),  # ignored
    MODELOPT_PYTORCH: ('minmax', 'max', 'entropy'),
    MODELOPT_ONNX: ('max', 'entropy', 'awq_clip', 'awq_lite', 'awq_full', 'rtn_dq'),
}
# ModelOpt ONNX's INT4 weight-only algorithms: ONNX Runtime's static quantisation (which
# serves modelopt.onnx here) has no counterpart.
INT4_ALGORITHMS = ('awq_clip', 'awq_lite', 'awq_full', 'rtn_dq')
DTYPES = ('int8', 'fp8_e4m3fn', 'fp8_e5m2')
NATIVE = 'native'
# backend_kwargs each backend passes on (the rest is refused, naming these).
BACKEND_KWARGS: Dict[str, Dict[str, str]] = {
    TORCHAO: {'device': "torchao.quantization.quantize_'s device (where the weights are "
                        'quantised)'},
    MODELOPT_PYTORCH: {'num_calib_images': 'use at most this many calibration images'},
    MODELOPT_ONNX: {
        'per_channel': 'per-channel weight scales (default true)',
        'reduce_range': '7-bit weights (default false)',
        'calibrate_method': "ONNX Runtime's CalibrationMethod name (MinMax, Entropy, "
                            'Percentile, Distribution); overrides algorithm',
        'op_types_to_quantize': 'ONNX operator types to quantise (default: all ONNX '
                                'Runtime quantises)',
        'nodes_to_exclude': 'ONNX node names left in float (added to skip_names)',
        'extra_options': "quantize_static's extra_options",
        'num_calib_images': 'use at most this many calibration images',
    },
}


class QuantizeConfigError(SpecError):
    """A ``quantize`` setting the backend does not take (a user error)."""

    def __init__(self, message: str):
        super().__init__([message])


@dataclass
class TensorSettings:
    """How the weights or the activations of matched modules are quantised.

    Args:
        dtype: int8, fp8_e4m3fn, fp8_e5m2 or native.
        axis: Per-channel axis, or None for one scale per tensor.
    """
    dtype: str
    axis: Optional[int] = None


@dataclass
class LayerSettings:
    """One ``quantize.layers`` entry: a module pattern and its weight / activation settings
    (None: left as they are)."""
    module_name: str
    weights: Optional[TensorSettings] = None
    activations: Optional[TensorSettings] = None


@dataclass
class QuantizeSettings:
    """A checked ``quantize`` section; also the metadata stored with a quantised model."""
    backend: str = TORCHAO
    mode: str = 'weight_only_ptq'
    algorithm: str = 'minmax'
    layers: List[LayerSettings] = field(default_factory=list)
    skip_names: List[str] = field(default_factory=list)
    backend_kwargs: Dict[str, Any] = field(default_factory=dict)
    device: str = 'cuda'

    def to_dict(self) -> Dict[str, Any]:
        """Plain data (for the saved file's metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'QuantizeSettings':
        """The settings from :meth:`to_dict`'s data, or from a spec's ``quantize`` section
        (a mapping with TAO's keys)."""
        layers = []
        for entry in data.get('layers') or []:
            parts = {}
            for part in ('weights', 'activations'):
                value = entry.get(part)
                if value is not None:
                    axis = value.get('axis', value.get('quant_axis'))
                    parts[part] = TensorSettings(str(value.get('dtype', '')).lower(), axis)
            layers.append(LayerSettings(entry['module_name'], **parts))
        return cls(backend=data.get('backend', TORCHAO),
                   mode=data.get('mode', 'weight_only_ptq'),
                   algorithm=str(data.get('algorithm') or 'minmax').lower(), layers=layers,
                   skip_names=list(data.get('skip_names') or []),
                   backend_kwargs=dict(data.get('backend_kwargs') or {}),
                   device=data.get('device', 'cuda'))


def settings_of(section: Any) -> QuantizeSettings:
    """:class:`QuantizeSettings` from a spec's :class:`QuantizeSpec` or a plain mapping with
    TAO's keys (validated against the schema first), checked by :func:`check_settings`.

    Raises:
        QuantizeConfigError: A combination the backend does not take.
        SpecError: A mapping that does not fit TAO's schema.
    """
    if isinstance(section, QuantizeSettings):
        settings = section
    else:
        if isinstance(section, dict):
            section = build(QuantizeSpec, section, 'quantize')
        data = asdict(section)
        settings = QuantizeSettings.from_dict(data)
    check_settings(settings)
    return settings


def _refuse(key: str, value: Any, accepted: Sequence[str], why: str = '') -> None:
    raise QuantizeConfigError(f'{key}: {value!r} {why or "is not accepted"}; accepted: '
                              f'{", ".join(accepted)}')


def check_settings(s: QuantizeSettings) -> None:
    """Refuse what TAO's backends refuse (the module docstring lists it).

    Raises:
        QuantizeConfigError: Naming the key, the value and the accepted values.
    """
    if s.backend not in BACKENDS:
        _refuse('quantize.backend', s.backend, BACKENDS)
    modes = BACKEND_MODES[s.backend]
    if s.mode not in modes:
        _refuse('quantize.mode', s.mode, modes, f'is not supported by backend {s.backend!r}')
    algorithms = BACKEND_ALGORITHMS[s.backend]
    if s.backend == MODELOPT_ONNX and s.algorithm in INT4_ALGORITHMS:
        raise QuantizeConfigError(
            f'quantize.algorithm: {s.algorithm!r} is one of ModelOpt\'s INT4 weight-only '
            'algorithms, which this modelopt.onnx backend (ONNX Runtime static INT8 '
            'quantisation, see docs/quantization.md) does not offer; accepted: max, entropy '
            '(minmax means max)')
    if s.backend == MODELOPT_PYTORCH and s.algorithm not in algorithms:
        _refuse('quantize.algorithm', s.algorithm, algorithms,
                f'is not supported by backend {s.backend!r}')
    if not re.fullmatch(QUANT_DEVICE_PATTERN, s.device):
        _refuse('quantize.device', s.device, ('cuda', 'cpu', 'trt', 'cuda:N'))
    for i, layer in enumerate(s.layers):
        if not layer.module_name:
            raise QuantizeConfigError(f'quantize.layers[{i}].module_name: empty; a module '
                                      'name, class name or fnmatch pattern is required')
        for part in ('weights', 'activations'):
            t = getattr(layer, part)
            if t is not None and t.dtype not in (*DTYPES, NATIVE):
                _refuse(f'quantize.layers[{i}].{part}.dtype', t.dtype, (*DTYPES, NATIVE))
    accepted = BACKEND_KWARGS[s.backend]
    unknown = sorted(set(s.backend_kwargs) - set(accepted))
    if unknown:
        _refuse('quantize.backend_kwargs', unknown[0], sorted(accepted),
                f'is not taken by backend {s.backend!r}')


def effective_algorithm(s: QuantizeSettings) -> Optional[str]:
    """The calibration algorithm that runs: ``max`` for TAO's ``minmax`` (ModelOpt's name
    for the same min/max calibration; TAO's modelopt.onnx falls back to ``max`` for names it
    does not know), ``entropy``, or None for torchao (weight-only, no calibration)."""
    if s.backend == TORCHAO:
        return None
    return 'entropy' if s.algorithm == 'entropy' else 'max'


def layer_dtypes(s: QuantizeSettings) -> List[str]:
    """Every dtype the layers ask for, in order, ``native`` left out."""
    out = []
    for layer in s.layers:
        for t in (layer.weights, layer.activations):
            if t is not None and t.dtype != NATIVE and t.dtype not in out:
                out.append(t.dtype)
    return out
