"""The ``quantize`` section (TAO 7.0.1) and the calibration images, as typed dataclasses.

Keys and defaults are TAO 7.0.1's ``nvidia_tao_pytorch/config/common/quantization/
default_config.py`` (``ModelQuantizationConfig``, ``LayerQuantizationConfig``,
``WeightQuantizationConfig`` / ``ActivationQuantizationConfig``) and
``dataset.segment.quant_calibration_dataset.images_dir`` of the SegFormer config. Both spec
forms use the same :class:`QuantizeSpec`: TAO 6/7 has it, TAO 5 gets it here as an addition
(with ``dataset.quant_calibration_dataset.img_dir``, TAO 5's spelling of an image folder).
Which combinations of backend, mode, algorithm and dtype are valid is checked by
:mod:`mmseg_tao.quantization.config` (it depends on the backend, as in TAO). Torch-free.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from .fields import spec_field as _f

# TAO 7.0.1's valid_options (ModelQuantizationConfig); the per-backend subsets are in
# mmseg_tao.quantization.config.
QUANT_BACKENDS = ('modelopt.pytorch', 'torchao', 'modelopt.onnx')
QUANT_MODES = ('static_ptq', 'weight_only_ptq')
QUANT_ALGORITHMS = ('minmax', 'max', 'entropy', 'awq_clip', 'awq_lite', 'awq_full', 'rtn_dq')
# The device regex of TAO 7.0.1, spelt out for this schema's choices check.
QUANT_DEVICE_PATTERN = r'^(cuda|cpu|trt|cuda:[0-9]+)$'


@dataclass
class QuantTensorSpec:
    """How the weights or the activations of a layer are quantised."""
    # '' (unset), int8, fp8_e4m3fn, fp8_e5m2 or native (left unquantised).
    dtype: str = _f('', choices=('', 'int8', 'fp8_e4m3fn', 'fp8_e5m2', 'native'))
    observer_or_fake_quant: str = ''
    quant_axis: Optional[int] = None
    observer_or_fake_quant_kwargs: Optional[Dict[str, Any]] = _f(factory=dict)


@dataclass
class QuantLayerSpec:
    """One entry of ``quantize.layers``: modules matched by ``module_name`` (fnmatch on the
    qualified name, then on the class name, as TAO's ``match_layer``)."""
    module_name: str = ''
    weights: Optional[QuantTensorSpec] = None
    activations: Optional[QuantTensorSpec] = None


@dataclass
class QuantizeSpec:
    backend: str = _f('torchao', choices=QUANT_BACKENDS)
    mode: str = _f('weight_only_ptq', choices=QUANT_MODES)
    algorithm: str = _f('minmax', choices=QUANT_ALGORITHMS)
    layers: List[QuantLayerSpec] = _f(factory=list)
    skip_names: List[str] = _f(factory=list)
    # A PyTorch checkpoint, or (modelopt.onnx) an ONNX file; '' : export.checkpoint.
    model_path: str = ''
    results_dir: Optional[str] = ''
    backend_kwargs: Dict[str, Any] = _f(factory=dict)
    device: str = 'cuda'


@dataclass
class Tao6QuantCalibration:
    """TAO 7.0.1's ``dataset.segment.quant_calibration_dataset``."""
    images_dir: Optional[str] = ''


@dataclass
class QuantCalibrationSpec:
    """``dataset.quant_calibration_dataset`` of a TAO 5 spec (mmseg-tao's addition)."""
    img_dir: Optional[str] = None
