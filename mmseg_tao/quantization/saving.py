"""Quantised PyTorch models on disk: writing, recognising and restoring them.

Files are TAO 7.0.1's, named as TAO names them (``quantized_model_<backend>.pth`` in the
quantize results dir) with one addition, :data:`META_KEY`, so that a file says how it was
made (backend, mode, algorithm, layers, skip_names) and can be restored without a spec:

- ``torchao``: TAO saves ``model.state_dict()`` (weights as torchao tensor subclasses,
  e.g. ``Int8Tensor``). Here: ``{META_KEY: meta, 'state_dict': model.state_dict()}``.
- ``modelopt.pytorch``: TAO saves ``mto.save(model)``: ``{'modelopt_state',
  'model_state_dict'}``. Here the same dict plus ``META_KEY``.

Everything reads back with ``torch.load(weights_only=True)`` (torchao registers its tensor
classes as safe globals; ModelOpt's state is plain data). TAO's own files (without
``META_KEY``) are accepted too: then the spec's ``quantize`` section says how to rebuild the
quantised structure.
"""
import os.path as osp
from typing import Any, Dict, Mapping, Optional

import torch
import torch.nn as nn

from ..compat.checkpoint import CheckpointReadError, load_checkpoint_file
from ..utils.fileio import atomic_path
from .config import MODELOPT_PYTORCH, TORCHAO, QuantizeSettings, settings_of
from .matching import run_modules_one_by_one

META_KEY = 'mmseg_tao_quantization'
FORMAT_VERSION = 1


def tao_file_name(backend: str) -> str:
    """TAO's name of a quantised PyTorch model: ``quantized_model_<backend>.pth``."""
    return f'quantized_model_{backend}.pth'


def metadata(settings: QuantizeSettings, **extra: Any) -> Dict[str, Any]:
    """The :data:`META_KEY` entry: format version, the settings, and ``extra`` facts (plain
    data only: the file must load with ``weights_only=True``)."""
    return dict(format=FORMAT_VERSION, settings=settings.to_dict(), **extra)


def save_quantized(model: nn.Module, path: str, settings: QuantizeSettings,
                   **extra: Any) -> str:
    """Write ``model`` (quantised by ``settings.backend``) to ``path`` atomically.

    Args:
        model: The quantised model.
        path: The ``.pth`` file.
        settings: The settings it was quantised with (stored as metadata).
        **extra: More metadata (plain data).

    Returns:
        ``path``.
    """
    meta = metadata(settings, **extra)
    if settings.backend == MODELOPT_PYTORCH:
        import modelopt.torch.opt as mto
        content = {'modelopt_state': mto.modelopt_state(model),
                   'model_state_dict': model.state_dict(), META_KEY: meta}
    else:
        content = {'state_dict': model.state_dict(), META_KEY: meta}
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return path


def _register_tensor_types() -> None:
    """Import torchao (when installed) so its tensor classes are safe globals."""
    try:
        import torchao.quantization  # noqa: F401
    except ImportError:  # pragma: no cover - torchao is a runtime requirement
        pass


def read_quantized(path: str) -> Mapping:
    """The content of a checkpoint file (``weights_only=True``).

    Raises:
        FileNotFoundError: No such file.
        CheckpointReadError: Not readable as a safe PyTorch file.
    """
    _register_tensor_types()
    return load_checkpoint_file(path, map_location='cpu')


def _is_tensor_subclass(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and type(value) not in (torch.Tensor,
                                                                     nn.Parameter)


def kind_of(ckpt: Any) -> Optional[str]:
    """``torchao`` or ``modelopt.pytorch`` for a quantised model's content, else None."""
    if not isinstance(ckpt, Mapping):
        return None
    meta = ckpt.get(META_KEY)
    if isinstance(meta, Mapping):
        return meta.get('settings', {}).get('backend')
    if 'modelopt_state' in ckpt and 'model_state_dict' in ckpt:
        return MODELOPT_PYTORCH
    if any(_is_tensor_subclass(v) for v in ckpt.values()):
        return TORCHAO  # TAO's torchao file: a state dict of torchao tensors
    return None


def is_quantized_checkpoint(path: str) -> bool:
    """Whether ``path`` holds a model quantised by ``mmseg-tao quantize`` or TAO 7's
    quantize task (torchao or modelopt.pytorch; an ONNX file is not a checkpoint).

    Args:
        path: A ``.pth`` file.

    Returns:
        False for ordinary checkpoints and for files that cannot be read safely.
    """
    if not osp.isfile(path) or path.lower().endswith('.onnx'):
        return False
    try:
        return kind_of(read_quantized(path)) is not None
    except (CheckpointReadError, OSError):
        return False


def _mismatch(path: str, missing, unexpected, wrong_type=()) -> None:
    from ..models.utils import CheckpointMismatchError
    parts = []
    for what, keys in (('missing', missing), ('unexpected', unexpected),
                       ('quantised differently (quantize.layers / skip_names)', wrong_type)):
        keys = sorted(keys)
        if keys:
            shown = ', '.join(keys[:8]) + (f' (+{len(keys) - 8} more)' if len(keys) > 8 else '')
            parts.append(f'{what}: {shown}')
    raise CheckpointMismatchError(f'quantised checkpoint {path!r} does not fit the model: ' +
                                  '; '.join(parts))


def _load_checked(model: nn.Module, state: Mapping, path: str, assign: bool) -> None:
    """``load_state_dict`` non-strictly, then raise naming every key that did not fit."""
    try:
        result = model.load_state_dict(dict(state), strict=False, assign=assign)
    except RuntimeError as err:  # shapes
        from ..models.utils import CheckpointMismatchError
        raise CheckpointMismatchError(f'quantised checkpoint {path!r} does not fit the model: '
                                      f'{err}') from None
    if result.missing_keys or result.unexpected_keys:
        _mismatch(path, result.missing_keys, result.unexpected_keys)


def restore_quantized_model(model: nn.Module, path: str,
                            quantize_cfg: Optional[Any] = None) -> nn.Module:
    """Rebuild the quantised structure on ``model`` (fp32, as built from the spec) and load
    the quantised weights of ``path`` (``weights_only=True``).

    Args:
        model: The fp32 model (e.g. a ``TAOEncoderDecoder`` built from the spec's config);
            changed in place.
        path: A file written by ``mmseg-tao quantize`` or by TAO 7's quantize task.
        quantize_cfg: The spec's ``quantize`` section (a :class:`QuantizeSpec`, a mapping
            with TAO's keys or :class:`QuantizeSettings`); needed only for TAO's own files,
            which do not record how they were made. A file's own metadata wins.

    Returns:
        The quantised model, in eval mode.

    Raises:
        CheckpointReadError: The file cannot be read safely, is no quantised model, or is
            TAO's own file and ``quantize_cfg`` is None.
        CheckpointMismatchError: Its keys do not fit the model (the keys are named).
    """
    ckpt = read_quantized(path)
    kind = kind_of(ckpt)
    if kind is None:
        raise CheckpointReadError(f'{path!r} is not a quantised model (no torchao weights, '
                                  'no ModelOpt state); run mmseg-tao quantize first')
    meta = ckpt.get(META_KEY)
    if isinstance(meta, Mapping):
        settings = QuantizeSettings.from_dict(meta['settings'])
    elif quantize_cfg is not None:
        settings = settings_of(quantize_cfg)
        settings.backend = kind
    else:
        raise CheckpointReadError(
            f'{path!r} is a quantised model ({kind}) without mmseg-tao\'s metadata (a file of '
            "TAO's own quantize task): pass the spec's quantize section to rebuild it")
    run_modules_one_by_one(model).eval()
    if kind == MODELOPT_PYTORCH:
        import modelopt.torch.opt as mto
        model = mto.restore_from_modelopt_state(model, ckpt['modelopt_state'])
        _load_checked(model, ckpt['model_state_dict'], path, assign=False)
        return model.eval()
    from .backends.torchao import quantize_weights
    state = ckpt['state_dict'] if isinstance(meta, Mapping) else ckpt
    quantize_weights(model, settings)
    if isinstance(meta, Mapping):  # TAO's own files may use TAO's key names
        saved = {k for k, v in state.items() if _is_tensor_subclass(v)}
        built = {k for k, v in model.state_dict().items() if _is_tensor_subclass(v)}
        if saved != built:
            _mismatch(path, [], [], saved ^ built)
    _load_checked(model, state, path, assign=True)
    return model.eval()
