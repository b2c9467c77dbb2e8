"""``quantize.backend: modelopt.onnx``, served by ONNX Runtime's static quantisation.

TAO 7.0.1 calls ``modelopt.onnx.quantization.quantize`` (INT8 / FP8 Q/DQ ONNX for
TensorRT). ModelOpt's ``onnx`` extra pins onnxruntime-gpu ~= 1.24.2, onnx ~= 1.21.0 and
cupy-cuda12x, which cannot be installed next to this package's ONNX Runtime (1.32, CPU),
onnx (1.23) and torch (CUDA 13). ONNX Runtime's own ``quantize_static`` writes the same kind
of file: QuantizeLinear / DequantizeLinear pairs (QDQ format) with int8 activations and
per-channel int8 weights, symmetric (zero points 0, as TensorRT requires), the weights kept
in float behind a Q/DQ pair (TAO's ``dq_only: False``), biases left in float. TensorRT
builds such a graph as INT8 without a calibration cache.

Q/DQ pairs sit on the *inputs* of the quantised operators only, never on their outputs:
ModelOpt's own ONNX path is ``quantize_static`` with ``OpTypesToExcludeOutputQuantization``
set to every operator type of the graph (``modelopt/onnx/quantization/ort_utils.py``
``configure_ort``, 0.47), TensorRT's recommended placement. ONNX Runtime's default (outputs
quantised too) puts a Q/DQ round trip before every LayerNorm, GELU and residual Add, which
measured 0.60x of fp32 speed on mit_b2 (CPU, batch 8) against 0.95-1.00x with this one.

What maps how (TAO 7.0.1's ``convert_tao_to_modelopt_onnx_params`` facts):

- algorithm: max (and TAO's default minmax, which TAO's ONNX backend treats as max) ->
  ``CalibrationMethod.MinMax``; entropy -> ``CalibrationMethod.Entropy``; ModelOpt's INT4
  weight-only algorithms (awq_*, rtn_dq) are refused.
- layers: the whole model gets one dtype (the first layer's, as in TAO); only int8 here.
  ``module_name`` words select ONNX operator types as TAO's table does (linear -> Gemm, and
  MatMul here, where the exporter writes Linear as MatMul; conv -> Conv; matmul; add; mul;
  pool; batchnorm / bn; clip; global; transpose); no word (e.g. ``*``): every operator type
  ONNX Runtime quantises.
- skip_names: ONNX node names left in float (``nodes_to_exclude``), as in TAO.
- output: ``<results dir>/quantized_model.onnx`` (TAO's name).
"""
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from ..config import QuantizeConfigError, QuantizeSettings, layer_dtypes

ONNX_FILE_NAME = 'quantized_model.onnx'
# TAO's module-name words -> ONNX operator types (core/quantization/backends/modelopt_onnx/
# utils.py _extract_op_types_to_quantize), first word found wins; 'linear' adds MatMul.
OP_TYPE_WORDS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ('linear', ('Gemm', 'MatMul')), ('conv', ('Conv', )), ('matmul', ('MatMul', )),
    ('add', ('Add', )), ('mul', ('Mul', )), ('pool', ('AveragePool', 'MaxPool')),
    ('batchnorm', ('BatchNormalization', )), ('bn', ('BatchNormalization', )),
    ('clip', ('Clip', )), ('global', ('GlobalAveragePool', )),
    ('transpose', ('ConvTranspose', )))


class OnnxModelError(ValueError):
    """An ONNX file that is not a SegFormer export (a user error)."""


def op_types_of(settings: QuantizeSettings) -> Optional[List[str]]:
    """The operator types the layers select, or None for all that ONNX Runtime quantises."""
    found: List[str] = []
    for layer in settings.layers:
        name = layer.module_name.lower()
        for word, ops in OP_TYPE_WORDS:
            if word in name:
                found += [op for op in ops if op not in found]
                break
    return found or None


def read_onnx(path: str):
    """The ``onnx.ModelProto`` of ``path`` (graph only, no external weights).

    Raises:
        OnnxModelError: Not a readable ONNX file.
    """
    import onnx
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as err:  # noqa: B902 - protobuf raises DecodeError and others
        raise OnnxModelError(f'quantize.model_path: {path} is not a readable ONNX model '
                             f'({type(err).__name__})') from None


def segformer_input(path: str, proto=None) -> Tuple[str, List[Any]]:
    """``(input name, shape)`` of a SegFormer ONNX export: one float input [N,3,H,W] and
    one 4-D output.

    Args:
        path: The ONNX file (named in messages).
        proto: Its ``onnx.ModelProto`` when the caller has read it already.

    Raises:
        OnnxModelError: Unreadable, or inputs / outputs that are not a SegFormer's.
    """
    import onnx
    proto = read_onnx(path) if proto is None else proto
    graph = proto.graph
    weights = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]

    def dims(value) -> List[Any]:
        return [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?')
                for d in value.type.tensor_type.shape.dim]

    problem = None
    if len(inputs) != 1:
        problem = f'{len(inputs)} inputs ({", ".join(i.name for i in inputs) or "none"})'
    elif inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        problem = f'input {inputs[0].name!r} is not float32'
    else:
        shape = dims(inputs[0])
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            problem = f'input {inputs[0].name!r} has shape {shape}'
        elif len(graph.output) != 1 or len(dims(graph.output[0])) != 4:
            problem = (f'{len(graph.output)} output(s) of rank '
                       f'{[len(dims(o)) for o in graph.output]}')
    if problem:
        raise OnnxModelError(f'quantize.model_path: {path} is not a SegFormer export: '
                             f'{problem}; expected one float input [N,3,H,W] and one 4-D '
                             'output (mmseg-tao export writes one)')
    return inputs[0].name, dims(inputs[0])


class _Reader:
    """ONNX Runtime's CalibrationDataReader over numpy batches."""

    def __init__(self, name: str, batches: Iterable):
        self.name = name
        self.batches = iter(batches)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        batch = next(self.batches, None)
        return None if batch is None else {self.name: np.ascontiguousarray(batch.numpy())}


def quantize_onnx(src: str, dst: str, settings: QuantizeSettings, algorithm: str,
                  batches: Iterable) -> Dict[str, Any]:
    """Write ``src`` quantised to ``dst`` (Q/DQ, int8), calibrated on ``batches``.

    Args:
        src: The fp32 SegFormer ONNX file.
        dst: The output file (written whole or not at all).
        settings: The checked ``quantize`` section.
        algorithm: ``max`` or ``entropy``.
        batches: Normalised input batches (torch tensors [N,3,H,W]).

    Returns:
        ``{'file', 'op_types', 'excluded', 'q_nodes', 'dq_nodes'}``.

    Raises:
        QuantizeConfigError: A dtype other than int8, or backend_kwargs ONNX Runtime refuses.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from ...utils.fileio import atomic_path

    dtypes = layer_dtypes(settings)
    if dtypes and dtypes[0] != 'int8':
        raise QuantizeConfigError(
            f'quantize.layers: dtype {dtypes[0]!r}: this modelopt.onnx backend (ONNX Runtime '
            'static quantisation, docs/quantization.md) writes int8 Q/DQ only; accepted: int8')
    proto = read_onnx(src)  # read once: the input and the operator types
    name, _ = segformer_input(src, proto)
    graph_ops = sorted({n.op_type for n in proto.graph.node})
    del proto
    kwargs = dict(settings.backend_kwargs)
    kwargs.pop('num_calib_images', None)
    method = kwargs.pop('calibrate_method', 'Entropy' if algorithm == 'entropy' else 'MinMax')
    if not hasattr(CalibrationMethod, str(method)):
        raise QuantizeConfigError(
            f'quantize.backend_kwargs.calibrate_method: {method!r}; accepted: '
            f'{", ".join(m.name for m in CalibrationMethod)}')
    op_types = kwargs.pop('op_types_to_quantize', None) or op_types_of(settings)
    excluded = list(settings.skip_names) + list(kwargs.pop('nodes_to_exclude', []) or [])
    extra = {'ActivationSymmetric': True, 'WeightSymmetric': True,
             'AddQDQPairToWeight': True, 'QuantizeBias': False,
             'OpTypesToExcludeOutputQuantization': graph_ops,
             **(kwargs.pop('extra_options', None) or {})}
    reader_cls = type('SegFormerCalibrationReader', (_Reader, CalibrationDataReader), {})
    with atomic_path(dst) as tmp:
        quantize_static(src, tmp, reader_cls(name, batches), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=kwargs.pop('per_channel', True),
                        reduce_range=kwargs.pop('reduce_range', False),
                        calibrate_method=getattr(CalibrationMethod, str(method)),
                        op_types_to_quantize=op_types, nodes_to_exclude=excluded or None,
                        extra_options=extra)
    ops = [n.op_type for n in onnx.load(dst, load_external_data=False).graph.node]
    return dict(file=dst, op_types=op_types, excluded=excluded, calibrate_method=str(method),
                q_nodes=ops.count('QuantizeLinear'), dq_nodes=ops.count('DequantizeLinear'))


def compare_onnx(fp32: str, quantized: str, batches: Iterable) -> Tuple[float, float]:
    """``(pixel agreement %, max |output difference|)`` of ``quantized`` against ``fp32``
    under ONNX Runtime (CPU) over ``batches``; argmax over channels for logits."""
    import onnxruntime as ort
    runs = [ort.InferenceSession(p, providers=['CPUExecutionProvider'])
            for p in (fp32, quantized)]
    name = runs[0].get_inputs()[0].name
    same = total = 0
    diff = 0.0
    for batch in batches:
        a, b = (s.run(None, {name: batch.numpy()})[0] for s in runs)
        diff = max(diff, float(np.abs(a.astype(np.float64) - b).max()))
        if a.shape[1] > 1:
            a, b = a.argmax(1), b.argmax(1)
        same += int((a == b).sum())
        total += a.size
    return 100.0 * same / max(total, 1), diff


def is_qdq_onnx(path: str) -> bool:
    """Whether an ONNX file holds QuantizeLinear / DequantizeLinear nodes."""
    import onnx
    if not osp.isfile(path):
        return False
    ops = {n.op_type for n in onnx.load(path, load_external_data=False).graph.node}
    return {'QuantizeLinear', 'DequantizeLinear'} <= ops
