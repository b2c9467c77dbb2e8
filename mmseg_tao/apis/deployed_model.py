"""evaluate and inference on a deployed model: ``<task>.checkpoint`` may name an ONNX file
(run with ONNX Runtime) or a quantized model written by the ``quantize`` task, besides a
PyTorch checkpoint.

What a file is comes from its content (a PyTorch file is a zip archive or a pickle; an ONNX
file is a protobuf ``ModelProto``, or is named ``*.onnx``); the ONNX contract (TAO 5's class
ids or logits, at 1/4 or the input size) from its graph
(:func:`~mmseg_tao.models.utils.onnx_contract.read_onnx_contract`). An ONNX file that
does not fit the spec's model is refused before the run, naming the file and what was
expected (:class:`OnnxModelError`, exit status 2 from the commands).
"""
import copy
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.config import Config

from ..compat.checkpoint import CheckpointReadError

CHECKPOINT, ONNX, QUANTIZED = 'checkpoint', 'onnx', 'quantized'
# A PyTorch file: torch.save's zip archive, or a legacy pickle (protocol 2+).
_TORCH_MAGIC = (b'PK\x03\x04', b'\x80\x02', b'\x80\x03', b'\x80\x04', b'\x80\x05')
# Field tags a ModelProto may start with after ir_version (field 1, varint: 0x08): producer
# name / version, domain, model_version, doc_string, graph, opset_import.
_ONNX_SECOND_FIELDS = (0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42)


def model_kind(path: str) -> str:
    """``'onnx'``, ``'quantized'`` (a file of the ``quantize`` task) or ``'checkpoint'``.

    A missing or unreadable file is a ``'checkpoint'``: the checkpoint path reports it as
    before. A file named ``*.onnx`` that holds a PyTorch file is a checkpoint too.
    """
    try:
        with open(path, 'rb') as f:
            head = f.read(8)
    except OSError:
        return CHECKPOINT
    if head.startswith(_TORCH_MAGIC):
        return QUANTIZED if _is_quantized(path) else CHECKPOINT
    if path.lower().endswith('.onnx') or _looks_like_onnx(head):
        return ONNX
    return CHECKPOINT


def _looks_like_onnx(head: bytes) -> bool:
    """An ONNX ModelProto begins with ``ir_version`` (tag 0x08, a small varint) and one of
    the fields after it."""
    return len(head) >= 3 and head[0] == 0x08 and head[1] < 0x80 and \
        head[2] in _ONNX_SECOND_FIELDS


def _is_quantized(path: str) -> bool:
    try:
        from ..quantization import is_quantized_checkpoint
    except ImportError:  # the quantize task is not part of this installation
        return False
    try:
        return bool(is_quantized_checkpoint(path))
    except Exception:  # noqa: B902 - an unreadable file: the checkpoint path names it
        return False


def restore_quantized(model: torch.nn.Module, path: str,
                      quantize_cfg: Optional[object] = None) -> torch.nn.Module:
    """``model`` (float32, from the spec) with the quantized structure and weights of
    ``path``, a file written by the ``quantize`` task, on ``model``'s device.

    Raises:
        CheckpointReadError: mmseg-tao's quantization support is not installed.
    """
    try:
        from ..quantization import restore_quantized_model
    except ImportError as err:
        raise CheckpointReadError(
            f'{path}: a quantized model written by the quantize task; reading it needs '
            f'mmseg_tao.quantization ({err})') from None
    device = next(model.parameters()).device
    # The file's weights load on the CPU (assigned, for torchao's tensors): back to where
    # the model was.
    return restore_quantized_model(model, path, quantize_cfg=quantize_cfg).to(device)


def ort_device(device: str) -> str:
    """The device ONNX Runtime runs on for the task's ``device``: ``cuda:N`` where
    CUDAExecutionProvider is available, else ``cpu`` (with a note when a GPU was asked)."""
    if not str(device).startswith('cuda'):
        return 'cpu'
    import onnxruntime as ort
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        print(f'note: ONNX Runtime {ort.__version__} has no CUDAExecutionProvider '
              f'(providers: {", ".join(ort.get_available_providers())}); the ONNX model '
              'runs on the CPU', file=sys.stderr)
        return 'cpu'
    if ':' in str(device):
        return str(device)
    return f'cuda:{torch.cuda.current_device() if torch.cuda.is_available() else 0}'


def onnx_model_config(cfg: Config, onnx_file: str, device: str,
                      size_key: str = 'model.input_height x model.input_width') -> dict:
    """The model config of ``onnx_file`` standing for ``cfg.model`` (an
    ``ONNXSegmentor`` with the same data preprocessor, test mode and resizing), after
    checking that the graph fits the spec's model.

    Args:
        cfg: The task's config (from ``task_config``).
        onnx_file: The ONNX file.
        device: The task's device (``cpu`` / ``cuda``).
        size_key: The spec key of the model's input size, for messages.

    Raises:
        CheckpointReadError: Not an ONNX model, or a truncated / corrupted one.
        OnnxModelError: The graph is not a segmentation model of the spec's input and
            classes.
    """
    from ..models.utils.onnx_contract import OnnxModelError, read_onnx_contract
    contract = read_onnx_contract(onnx_file)
    check_onnx_fits(contract, cfg, onnx_file, size_key)
    model = cfg.model
    head = model.decode_head
    if (model.get('test_cfg') or {}).get('mode') == 'slide' and contract.output == 'argmax':
        raise OnnxModelError(f'{onnx_file} ({contract.describe()}): slide inference sums '
                             'logits over windows, this graph gives class ids; use an ONNX '
                             'with logits (export.output: logits, or TAO 6\'s) or '
                             'inference.mode: whole')
    return dict(type='ONNXSegmentor', onnx_file=osp.abspath(onnx_file),
                num_classes=int(head.num_classes), device=ort_device(device),
                data_preprocessor=copy.deepcopy(model.data_preprocessor),
                test_cfg=copy.deepcopy(model.get('test_cfg') or dict(mode='whole')),
                align_corners=bool(head.get('align_corners', False)))


def check_onnx_fits(contract, cfg: Config, onnx_file: str,
                    size_key: str = 'model.input_height x model.input_width') -> None:
    """Refuse a graph whose input channels, input size (where fixed) or classes are not
    those of ``cfg.model``.

    Raises:
        OnnxModelError: Naming the file, what it has and what the spec's model needs.
    """
    from ..models.utils.onnx_contract import OnnxModelError
    num_classes = int(cfg.model.decode_head.num_classes)
    size = cfg.model.data_preprocessor.get('size')
    height, width = (int(size[0]), int(size[1])) if size else (None, None)
    problems = []
    if contract.channels not in (3, None):
        problems.append(f"input '{contract.input_name}' takes {contract.channels} channels "
                        '(images reach the model as 3)')
    if contract.num_classes not in (num_classes, None):
        problems.append(f'it predicts {contract.num_classes} classes, the spec '
                        f'{num_classes} (dataset palette)')
    fixed = (contract.height, contract.width)
    if None not in fixed and height and fixed != (height, width):
        problems.append(f'it takes {fixed[0]}x{fixed[1]} inputs, the spec\'s model '
                        f'{height}x{width} ({size_key})')
    if problems:
        hw = f'{height}, {width}' if height else 'H, W'
        raise OnnxModelError(
            f'{onnx_file} ({contract.describe()}) does not fit the spec\'s model: '
            f'{"; ".join(problems)}. Expected input [N, 3, {hw}] and {num_classes} classes '
            f'(class ids [N, 1, {hw}] or logits [N, {num_classes}, ...])')


def build_onnx_model(cfg: Config, onnx_file: str, device: str,
                     size_key: str = 'model.input_height x model.input_width'
                     ) -> torch.nn.Module:
    """An ``ONNXSegmentor`` for ``onnx_file`` in place of ``cfg.model``, ready for
    ``mmseg.apis.inference_model`` (``model.cfg`` is ``cfg``)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from ..models.segmentors import onnx_segmentor  # noqa: F401  (registers it)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(onnx_model_config(cfg, onnx_file, device, size_key))
    model.cfg = cfg
    return model.eval()


def use_onnx_model(cfg: Config, onnx_file: str, device: str,
                   size_key: str = 'model.input_height x model.input_width') -> Config:
    """Make ``cfg`` run ``onnx_file`` in mmengine's Runner: ``model`` becomes the
    ``ONNXSegmentor`` (checked to fit) and nothing is loaded (``load_from`` None). The
    test loop, evaluator and hooks are the checkpoint's. Returns ``cfg``."""
    from ..models.segmentors import onnx_segmentor  # noqa: F401  (registers it)
    cfg.model = onnx_model_config(cfg, onnx_file, device, size_key)
    cfg.load_from = None
    return cfg


def size_key(spec) -> str:
    """The spec key of the model's input size: TAO 6/7's ``dataset.segment.img_size`` or
    TAO 5's ``model.input_height x model.input_width``."""
    if getattr(spec, 'tao6', None) is not None:
        return 'dataset.segment.img_size'
    return 'model.input_height x model.input_width'


def prediction_notes(task: str, kind: str, precision: str = 'fp32',
                     compile: bool = False) -> None:
    """Say on stderr that ``<task>.precision`` / ``<task>.compile`` do nothing for a
    deployed model (its precision is its own)."""
    if kind == CHECKPOINT:
        return
    what = 'an ONNX model' if kind == ONNX else 'a quantized model'
    if precision != 'fp32':
        print(f'note: {task}.precision ({precision}) applies to PyTorch checkpoints; '
              f'{task}.checkpoint is {what}, which runs in its own precision', file=sys.stderr)
    if compile:
        print(f'note: {task}.compile applies to PyTorch checkpoints; {task}.checkpoint is '
              f'{what}', file=sys.stderr)
