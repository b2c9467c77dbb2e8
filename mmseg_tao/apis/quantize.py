"""The ``quantize`` task (TAO 7.0.1): a trained model quantised by torchao (weight-only),
ModelOpt (static PTQ) or, for ``modelopt.onnx``, ONNX Runtime (a Q/DQ INT8 ONNX).

TAO 7.0.1's ``cv/segformer/scripts/quantize.py``: the model of ``quantize.model_path`` (a
checkpoint, or an ONNX file for modelopt.onnx), the calibration images of
``dataset.segment.quant_calibration_dataset.images_dir`` through the test transforms for
static PTQ, ``ModelQuantizer(cfg.quantize)``, the result saved into ``quantize.results_dir``
(else ``<results_dir>/quantize``); status.json as ``monitor_status(name="SegFormer",
mode="quantize")`` writes it. A TAO 5 spec has the same through its ``quantize`` section and
``dataset.quant_calibration_dataset.img_dir`` (an mmseg-tao addition). docs/quantization.md
describes the backends and where this differs from TAO.
"""
import os.path as osp
import sys
from typing import Any, Dict, Optional, Sequence

import torch

from ..engine.status import task_status
from ..quantization.config import (
    MODELOPT_ONNX,
    MODELOPT_PYTORCH,
    TORCHAO,
    QuantizeSettings,
    effective_algorithm,
    settings_of,
)
from ..quantization.matching import default_layers
from ..quantization.saving import save_quantized, tao_file_name
from ..spec.translate import results_dir
from ..spec.validation import SpecError
from .experiment import prepare

# How many calibration images the PyTorch / ONNX Runtime comparison printed at the end uses.
CHECK_IMAGES = 8


def quantize(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none',
             tao_version: Optional[int] = None) -> Dict[str, Any]:
    """Quantise the spec's model as its ``quantize`` section says.

    Args:
        spec_path: The TAO experiment spec (TAO 5 or TAO 6/7 form).
        overrides: ``key=value`` overrides (``quantize.backend=modelopt.pytorch``).
        launcher: Accepted for the task signature; quantisation runs in one process.
        tao_version: 5 or 6 to force the spec's schema (None: from its keys).

    Returns:
        ``{'file': the quantised model, 'backend': ..., ...}`` (the backend's report).

    Raises:
        SpecError / QuantizeConfigError: A setting the backend does not take.
        DatasetError: Calibration images missing, empty or not images.
        OnnxModelError: ``model_path`` is an ONNX file that is not a SegFormer export.
    """
    spec = prepare(spec_path, overrides, 'quantize', tao_version)
    out_dir = results_dir(spec, 'quantize')
    # TAO 5 had no quantize task: status.json has TAO 7's lines for both spec forms.
    with task_status(out_dir, 'quantize', 6) as status:
        result = _quantize(spec, out_dir)
        status.write(message=f'Quantized model saved to {result["file"]}.')
    return result


def calibration_key(spec) -> str:
    """The spec key of the calibration folder, in the spec's own form."""
    return ('dataset.segment.quant_calibration_dataset.images_dir'
            if getattr(spec, 'tao6', None) is not None
            else 'dataset.quant_calibration_dataset.img_dir')


def calibration_dir(spec) -> Optional[str]:
    """The calibration folder (a TAO 5 relative path under ``dataset.data_root``)."""
    path = spec.dataset.quant_calibration_dataset.img_dir
    if path and getattr(spec, 'tao6', None) is None and spec.dataset.data_root and \
            not osp.isabs(path):
        return osp.join(spec.dataset.data_root, path)
    return path


def resolve_device(settings: QuantizeSettings) -> torch.device:
    """Where calibration runs, with TAO's fallbacks printed: ``trt`` means CUDA for the
    PyTorch backends (TensorRT is the ONNX backend's), CUDA without a GPU means the CPU,
    a GPU index beyond the GPUs means GPU 0."""
    device = settings.device
    if device == 'trt' and settings.backend != MODELOPT_ONNX:
        print(f'note: quantize.device trt: TensorRT is not used by {settings.backend}; '
              'calibrating with CUDA (as TAO)', file=sys.stderr)
        device = 'cuda'
    if device == 'trt':
        print('note: quantize.device trt: ONNX Runtime here has no TensorRT execution '
              'provider; calibrating on the CPU', file=sys.stderr)
        return torch.device('cpu')
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            print(f'note: quantize.device {settings.device}: no CUDA GPU here; running on '
                  'the CPU (as TAO falls back)', file=sys.stderr)
            return torch.device('cpu')
        index = int(device.split(':')[1]) if ':' in device else 0
        if index >= torch.cuda.device_count():
            print(f'note: quantize.device {device}: this machine shows '
                  f'{torch.cuda.device_count()} GPU(s); using cuda:0 (as TAO)',
                  file=sys.stderr)
            index = 0
        return torch.device('cuda', index)
    return torch.device('cpu')


def _model_path(spec) -> str:
    path = spec.quantize.model_path
    if not path:
        path = spec.export.checkpoint or spec.evaluate.checkpoint
        if not path:
            raise SpecError(['quantize.model_path: required (the checkpoint to quantise, or '
                             'an ONNX file for modelopt.onnx); export.checkpoint and '
                             'evaluate.checkpoint are not set either'])
        print(f'note: quantize.model_path is empty; quantising {path}', file=sys.stderr)
    if not osp.isfile(path):
        raise FileNotFoundError(f'quantize.model_path: {path} does not exist')
    return path


def _build_model(spec, out_dir: str, checkpoint: Optional[str]):
    """The spec's segmentor on the CPU (test pipeline without the mask loader), with
    ``checkpoint``'s weights checked strictly and loaded."""
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model

    from ..models.utils import check_checkpoint_fits
    from .experiment import task_config
    from .launch import LaunchPlan

    cfg = task_config(spec, 'export', plan=LaunchPlan(1, 'cpu', 'gloo', []))
    cfg.work_dir = out_dir
    cfg.test_pipeline = [t for t in cfg.test_pipeline if 'Annotation' not in t['type']]
    model = init_model(cfg, device='cpu')
    if checkpoint:
        check_checkpoint_fits(model, checkpoint)
        load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model.eval()


def _batch_size(spec) -> int:
    return max(1, spec.dataset.batch_size or 1)


def _calibration(spec, model, settings: QuantizeSettings, size=None, desc='Calibrating model'):
    from ..quantization.calibration import CalibrationBatches, calibration_images
    images = calibration_images(calibration_dir(spec), calibration_key(spec))
    limit = settings.backend_kwargs.get('num_calib_images')
    if limit:
        images = images[:int(limit)]
    print(f'calibration: {len(images)} image(s) from {calibration_dir(spec)}', flush=True)
    return CalibrationBatches(model, images, _batch_size(spec), size, desc)


def _agreement(model_a, model_b, batches) -> float:
    """Share (%) of pixels where two models' classes agree over ``batches``."""
    same = total = 0
    with torch.no_grad():
        for inputs in batches:
            a, b = model_a(inputs).argmax(1), model_b(inputs).argmax(1)
            same += int((a == b).sum())
            total += a.numel()
    return 100.0 * same / max(total, 1)


def _quantize(spec, out_dir: str) -> Dict[str, Any]:
    settings = settings_of(spec.quantize)
    if not spec.quantize.layers:
        layer = default_layers(settings.backend)[0]
        acts = 'and activations ' if layer.activations else ''
        print(f"note: quantize.layers is empty; quantising every module's weights {acts}"
              'as int8 (TAO would quantise nothing with torchao and modelopt.pytorch)',
              file=sys.stderr)
    if settings.backend == MODELOPT_ONNX:
        return _quantize_onnx(spec, settings, out_dir)
    path = _model_path(spec)
    if path.lower().endswith('.onnx'):
        raise SpecError([f'quantize.model_path: {path} is an ONNX file; backend '
                         f'{settings.backend!r} quantises a PyTorch checkpoint (ONNX files: '
                         "backend 'modelopt.onnx')"])
    if settings.backend == TORCHAO:
        device = torch.device('cpu')
        if settings.device != 'cpu':
            print(f'note: quantize.device {settings.device} is not used by torchao '
                  'weight-only PTQ (no calibration), as in TAO', file=sys.stderr)
    else:
        device = resolve_device(settings)
    model = _build_model(spec, out_dir, path)
    reference = _build_model(spec, out_dir, path) if settings.backend == MODELOPT_PYTORCH \
        else None
    report: Dict[str, Any] = dict(backend=settings.backend, source=path)
    if settings.backend == TORCHAO:
        import copy

        from ..quantization.backends.torchao import quantize_weights
        reference = copy.deepcopy(model)
        report.update(quantize_weights(model, settings, verbose=True))
    else:
        from ..quantization.backends.modelopt_torch import quantize_static
        algorithm = effective_algorithm(settings)
        batches = _calibration(spec, model, settings)
        model = quantize_static(model.to(device), settings, algorithm, batches,
                                device).to('cpu')
        report['algorithm'] = algorithm
    file = osp.join(out_dir, tao_file_name(settings.backend))
    save_quantized(model, file, settings, source=osp.abspath(path))
    report['file'] = file
    print(f'{settings.backend}: quantised model saved to {file}', flush=True)
    check = _check_batches(spec, model, settings)
    if check is not None:
        report['agreement'] = _agreement(reference, model, check)
        print(f'quantised vs fp32 pixel agreement on {len(check.images)} image(s): '
              f'{report["agreement"]:.2f}%', flush=True)
    return report


def _check_batches(spec, model, settings: QuantizeSettings):
    """A few calibration images (or none) for the fp32 comparison printed at the end."""
    from ..datasets.tao_dataset import DatasetError
    from ..quantization.calibration import CalibrationBatches, calibration_images
    try:
        images = calibration_images(calibration_dir(spec), calibration_key(spec))
    except DatasetError:
        return None  # torchao needs no calibration images
    return CalibrationBatches(model, images[:CHECK_IMAGES], 1, desc='Comparing with fp32')


def _export_onnx(spec, model, onnx_file: str) -> None:
    """The spec's checkpoint as ONNX with the project's export: TAO 6's graph (logits at 1/4
    size) for a TAO 6/7 spec, TAO 5's (argmax, through mmdeploy) for a TAO 5 spec."""
    from ..utils.fileio import atomic_path
    from .export import export_tao6
    e = spec.export
    with atomic_path(onnx_file) as tmp:
        export_tao6(model, tmp, e.input_height, e.input_width, e.opset_version,
                    e.batch_size if getattr(spec, 'tao6', None) is not None else -1)


def _quantize_onnx(spec, settings: QuantizeSettings, out_dir: str) -> Dict[str, Any]:
    from ..quantization.backends.onnxruntime_qdq import (
        ONNX_FILE_NAME,
        compare_onnx,
        quantize_onnx,
        segformer_input,
    )
    path = spec.quantize.model_path
    model = _build_model(spec, out_dir, None if path else _model_path(spec))
    if not path:
        path = osp.join(out_dir, 'model_fp32.onnx')
        print(f'exporting the checkpoint to {path} (ONNX, opset {spec.export.opset_version})',
              flush=True)
        _export_onnx(spec, model, path)
    elif not osp.isfile(path):
        raise FileNotFoundError(f'quantize.model_path: {path} does not exist')
    elif not path.lower().endswith('.onnx'):
        raise SpecError([f'quantize.model_path: {path} is not an ONNX file; backend '
                         "'modelopt.onnx' quantises an ONNX export (leave model_path empty "
                         'to export export.checkpoint first)'])
    _, shape = segformer_input(path)
    resolve_device(settings)
    size = shape[2:] if all(isinstance(d, int) and d > 0 for d in shape[2:]) else None
    algorithm = effective_algorithm(settings)
    batches = _calibration(spec, model, settings, size)
    dst = osp.join(out_dir, ONNX_FILE_NAME)
    report = quantize_onnx(path, dst, settings, algorithm, batches)
    report.update(backend=settings.backend, source=path, algorithm=algorithm)
    print(f'modelopt.onnx (ONNX Runtime QDQ, {report["calibrate_method"]}): {dst} with '
          f'{report["q_nodes"]} QuantizeLinear / {report["dq_nodes"]} DequantizeLinear '
          'nodes', flush=True)
    check = _calibration(spec, model, settings, size, desc='Comparing with fp32')
    check.images = check.images[:CHECK_IMAGES]
    report['agreement'], report['max_abs_diff'] = compare_onnx(path, dst, check)
    print(f'ONNX Runtime: Q/DQ vs fp32 pixel agreement {report["agreement"]:.2f}%, max '
          f'|output difference| {report["max_abs_diff"]:.3g} on {len(check.images)} '
          'image(s)', flush=True)
    report['nvinfer'] = _nvinfer(spec, dst, shape)
    return report


def _nvinfer(spec, onnx_file: str, shape) -> str:
    """The DeepStream config for the Q/DQ ONNX (INT8, no calibration cache)."""
    from ..datasets.palette import Palette
    from .deepstream import write_nvinfer_config
    norm = spec.dataset.img_norm_cfg
    h, w = (shape[2], shape[3]) if all(isinstance(d, int) and d > 0 for d in shape[2:]) \
        else (spec.export.input_height, spec.export.input_width)
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else 1
    path, note = write_nvinfer_config(
        onnx_file, Palette.of(spec.dataset.palette).classes, height=h, width=w,
        mean=norm.mean, std=norm.std, float_logits=True, rgb=norm.to_rgb, batch_size=batch,
        int8_qdq=True)
    if note:
        print(f'warning: {path}: {note}', file=sys.stderr)
    print(f'DeepStream nvinfer config: {path}', flush=True)
    return path
