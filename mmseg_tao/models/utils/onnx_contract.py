"""What an ONNX segmentation graph takes and gives, read from the graph itself (never from
the file's name): TAO 5's class ids (``[N, 1, H, W]`` int64, argmax inside), logits at the
input size, or TAO 6's logits at 1/4 of it; Q/DQ INT8 graphs alike. onnx is imported when a
file is read."""
import functools
import itertools
import os
import os.path as osp
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ...compat.checkpoint import UnreadableCheckpointError
from .checkpoint_layout import CheckpointMismatchError

# ONNX element types (onnx.TensorProto) of class ids and of logits.
_INT_TYPES = {2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64',
              12: 'uint32', 13: 'uint64'}
_FLOAT_TYPES = {1: 'float32', 10: 'float16', 11: 'float64', 16: 'bfloat16'}
# Nodes between TAO 5's ArgMax and the graph's output that keep the class axis' meaning.
_PASS_THROUGH = ('Cast', 'Identity', 'Reshape', 'Unsqueeze', 'Squeeze')


class OnnxModelError(CheckpointMismatchError):
    """An ONNX file that is not a segmentation model the spec's model can stand for
    (another input, another number of classes, not a segmentation output)."""


@dataclass(frozen=True)
class OnnxContract:
    """What an ONNX segmentation graph takes and gives (``None``: dynamic or unknown).

    Attributes:
        input_name: The image input.
        output_name: The output used (the graph's first).
        batch: A fixed batch size, or None for a dynamic batch axis.
        channels: Input channels.
        height: Input height.
        width: Input width.
        output: ``'argmax'`` (class ids ``[N, 1, H, W]``, TAO 5's graph) or ``'logits'``
            (``[N, C, h, w]`` float: TAO 6's at 1/4 size, or at the input size).
        output_dtype: The output's element type, e.g. ``'int64'``, ``'float32'``.
        output_shape: The output's dims (None where symbolic).
        num_classes: C (for TAO 5's graph: the ArgMax input's channels, where shape
            inference tells them).
        quantized: The graph holds QuantizeLinear / DequantizeLinear nodes (Q/DQ INT8).
    """
    input_name: str
    output_name: str
    batch: Optional[int]
    channels: Optional[int]
    height: Optional[int]
    width: Optional[int]
    output: str
    output_dtype: str
    output_shape: Tuple[Optional[int], ...]
    num_classes: Optional[int]
    quantized: bool = False

    def describe(self) -> str:
        """One phrase, e.g. ``"TAO 6's logits at 1/4 size [N,3,16,16] float32"``."""
        dims = ','.join('N' if i == 0 and self.batch is None else str(d or '?')
                        for i, d in enumerate(self.output_shape))
        h, w = self.output_shape[2:]
        if self.output == 'argmax':
            kind = "TAO 5's class ids"
        elif self.height and h and w and (h * 4, w * 4) == (self.height, self.width):
            kind = "TAO 6's logits at 1/4 size"
        elif h and (h, w) == (self.height, self.width):
            kind = 'logits at the input size'
        else:
            kind = 'logits'
        quant = ', Q/DQ INT8' if self.quantized else ''
        return f'{kind} [{dims}] {self.output_dtype}{quant}'


def _dims(value_info) -> Tuple[Optional[int], ...]:
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField('dim_value') and d.dim_value > 0 else None
                 for d in shape.dim)


def _inferred(proto):
    """``proto`` with ONNX's shape inference (constants propagated, so that the sizes
    TorchScript's exporter leaves symbolic are resolved); None where it fails."""
    import onnx
    try:
        return onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception:  # noqa: B902 - a best effort (e.g. models over 2 GB)
        return None


def _argmax_classes(proto, inferred, output_name: str) -> Optional[int]:
    """The channels of the ArgMax behind ``output_name`` (None if the graph hides them)."""
    producers = {o: n for n in proto.graph.node for o in n.output}
    node = producers.get(output_name)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = producers.get(node.input[0])
    if node is None or node.op_type != 'ArgMax' or inferred is None:
        return None
    axis = next((a.i for a in node.attribute if a.name == 'axis'), 0)
    infos = list(inferred.graph.value_info) + list(inferred.graph.input) + \
        list(inferred.graph.output)
    for info in infos:
        if info.name == node.input[0]:
            dims = _dims(info)
            return dims[axis] if len(dims) > axis else None
    return None


def read_onnx_contract(path: str) -> OnnxContract:
    """Read and check an ONNX file; return what its graph takes and gives.

    The contract comes from the graph (the output's element type and shape), never from the
    file's name. Cached per file (path, size, modification time).

    Raises:
        UnreadableCheckpointError: Not an ONNX model, or a truncated / corrupted one.
        OnnxModelError: A readable graph that is not an image segmentation model.
    """
    st = os.stat(path)
    return _read_onnx_contract(osp.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_onnx_contract(path: str, size: int, mtime: int) -> OnnxContract:
    import onnx
    try:
        proto = onnx.load(path)
    except Exception as err:  # noqa: B902 - protobuf raises several types
        raise UnreadableCheckpointError(
            f'{path}: not an ONNX model, or a truncated or corrupted one '
            f'({type(err).__name__}: {str(err).splitlines()[0] if str(err) else "-"})'
        ) from None
    if not proto.graph.node or not proto.graph.output:
        raise UnreadableCheckpointError(f'{path}: not an ONNX model, or a truncated or '
                                        'corrupted one (no graph)')
    try:
        onnx.checker.check_model(proto)
    except Exception as err:  # noqa: B902 - ValidationError and protobuf errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnreadableCheckpointError(
            f'{path}: the ONNX model is truncated or corrupted ({first})') from None
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    expected = ('expected a segmentation model: one image input [N, 3, H, W] and an output '
                'of class ids [N, 1, H, W] or logits [N, C, H, W]')
    if len(inputs) != 1:
        raise OnnxModelError(f'{path}: the graph has {len(inputs)} inputs '
                             f'({", ".join(i.name for i in inputs)}); {expected}')
    inp, out = inputs[0], proto.graph.output[0]
    inferred = _inferred(proto)
    in_dims, out_dims = _dims(inp), _dims(out)
    if inferred is not None:  # sizes the exporter left symbolic
        known = _dims(inferred.graph.output[0])
        if len(known) == len(out_dims) or not out_dims:
            out_dims = tuple(i if d is None else d
                             for d, i in itertools.zip_longest(out_dims, known))
    in_type = inp.type.tensor_type.elem_type
    out_type = out.type.tensor_type.elem_type
    if len(in_dims) != 4 or in_type not in _FLOAT_TYPES:
        raise OnnxModelError(
            f"{path}: input '{inp.name}' is {_shape_text(in_dims)} "
            f"{_FLOAT_TYPES.get(in_type, _INT_TYPES.get(in_type, in_type))}; {expected}")
    if len(out_dims) != 4 or out_type not in _FLOAT_TYPES and out_type not in _INT_TYPES:
        raise OnnxModelError(
            f"{path}: output '{out.name}' is {_shape_text(out_dims)}, not an image of class "
            f'ids or logits; {expected}')
    if out_type in _INT_TYPES:
        if out_dims[1] not in (1, None):
            raise OnnxModelError(f"{path}: output '{out.name}' is {_shape_text(out_dims)} "
                                 f'{_INT_TYPES[out_type]}; class ids have one channel; '
                                 f'{expected}')
        output, num_classes = 'argmax', _argmax_classes(proto, inferred, out.name)
    else:
        output, num_classes = 'logits', out_dims[1]
    quantized = any(n.op_type in ('QuantizeLinear', 'DequantizeLinear', 'QLinearConv',
                                  'MatMulInteger', 'ConvInteger') for n in proto.graph.node)
    return OnnxContract(
        input_name=inp.name, output_name=out.name, batch=in_dims[0], channels=in_dims[1],
        height=in_dims[2], width=in_dims[3], output=output,
        output_dtype=(_INT_TYPES.get(out_type) or _FLOAT_TYPES[out_type]),
        output_shape=out_dims, num_classes=num_classes, quantized=quantized)


def _shape_text(dims: Sequence[Optional[int]]) -> str:
    return '[' + ', '.join('?' if d is None else str(d) for d in dims) + ']'
