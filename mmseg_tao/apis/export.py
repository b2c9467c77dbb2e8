"""The ``export`` task: ONNX in TAO 5's contract (through mmdeploy) or TAO 6's, checked
with ONNX Runtime on real images, with a DeepStream nvinfer config next to each file."""
import os
import os.path as osp
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from ..compat.onnx_export import _default_is_dynamo
from ..datasets.palette import Palette
from ..engine.status import spec_form, task_status
from ..models.utils import check_checkpoint_fits
from ..spec.translate import results_dir
from .deepstream import write_nvinfer_config
from .experiment import prepare, task_config
from .inference import list_images

# TAO 5.5's first own line of export (cv/segformer/scripts/export.py).
TAO5_EXPORT_START = '**********************Start logging for Export**********************.'
# TAO 6's names for the dynamic batch axis (cv/segformer/utils/onnx_export.py).
TAO6_DYNAMIC_AXES = {'input': {0: 'batch_size'}, 'output': {0: 'batch_size'}}


def deploy_config(opset: int, height: int, width: int, with_argmax: bool,
                  save_file: str) -> Config:
    """mmdeploy deploy config: ONNX Runtime, input ``input`` [N,3,H,W], output ``output``,
    dynamic batch; argmax inside the graph ([N,1,H,W] int64) or logits ([N,C,H,W])."""
    return Config(dict(
        onnx_config=dict(
            type='onnx', export_params=True, keep_initializers_as_inputs=False,
            opset_version=opset, save_file=save_file, input_names=['input'],
            output_names=['output'], input_shape=[width, height], optimize=True,
            dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}}),
        codebase_config=dict(type='mmseg', task='Segmentation', with_argmax=with_argmax),
        backend_config=dict(type='onnxruntime')))


class DecodeHeadLogits(torch.nn.Module):
    """A segmentor up to its decode head: float logits at 1/4 of the input size, before
    ``encode_decode`` resizes them to the input size (TAO 6's ONNX output)."""

    def __init__(self, segmentor: torch.nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.segmentor.decode_head.forward(self.segmentor.extract_feat(inputs))


def export_tao6(model: torch.nn.Module, onnx_file: str, height: int, width: int,
                opset: int, batch_size: int = -1) -> None:
    """Write TAO 6's graph of ``model``: input ``input`` [N,3,H,W], output ``output``
    float32 [N,C,H/4,W/4] (:class:`DecodeHeadLogits`).

    mmdeploy's mmseg rewrites cannot give it (their logits are resized to the input size),
    so torch's TorchScript exporter writes it, as TAO does.

    Args:
        batch_size: -1 for a dynamic batch axis, else that fixed batch.
    """
    import onnx
    net = DecodeHeadLogits(model).eval()
    dummy = torch.ones(1 if batch_size == -1 else batch_size, 3, height, width)
    # TorchScript's exporter, as TAO's and mmdeploy's (the dynamo one is torch's default
    # since 2.9; the backbones' export paths are written for the tracer).
    extra = dict(dynamo=False) if _default_is_dynamo() else {}
    with torch.no_grad():
        torch.onnx.export(net, (dummy, ), onnx_file, input_names=['input'],
                          output_names=['output'], opset_version=opset,
                          do_constant_folding=True,
                          dynamic_axes=TAO6_DYNAMIC_AXES if batch_size == -1 else None,
                          **extra)
    # The exporter leaves the output's H/4, W/4 symbolic (computed from the input's
    # shape); ONNX shape inference resolves them, so the graph states its contract.
    proto = onnx.load(onnx_file)
    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    proto.graph.output[0].type.CopyFrom(inferred.graph.output[0].type)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, onnx_file)


def _run_both(onnx_file: str, model_cfg: Config, deploy_cfg: Config, checkpoint: str,
              images: Sequence[str], batch: int, decode_head: bool,
              fixed_batch: bool = False) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """``(PyTorch logits, ONNX Runtime output)`` for ``images`` in batches of ``batch``,
    preprocessed once for both; logits as ``encode_decode`` gives them (input size) or,
    with ``decode_head``, the decode head's (1/4 size). With ``fixed_batch`` a short last
    batch is filled up with the first images (and those rows left out)."""
    import onnxruntime as ort
    from mmdeploy.apis.utils import build_task_processor

    processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    model = processor.build_pytorch_model(checkpoint)
    input_shape = deploy_cfg.onnx_config.input_shape
    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    for start in range(0, len(images), batch):
        chunk = list(images[start:start + batch])
        n = len(chunk)
        if fixed_batch:
            chunk += [images[i % len(images)] for i in range(batch - n)]
        data, inputs = processor.create_input(chunk, input_shape=input_shape,
                                              data_preprocessor=model.data_preprocessor)
        with torch.no_grad():
            logits = DecodeHeadLogits(model)(inputs) if decode_head else \
                model.encode_decode(inputs, [s.metainfo for s in data['data_samples']])
        (out, ) = sess.run(None, {'input': inputs.numpy()})
        yield logits[:n].numpy(), out[:n]


def pixel_agreement(onnx_file: str, model_cfg: Config, deploy_cfg: Config,
                    checkpoint: str, images: Sequence[str], batch: int = 2) -> float:
    """Share (%) of pixels where ONNX Runtime's class equals PyTorch's, over ``images``
    run in batches of ``batch`` (exercising the dynamic batch axis)."""
    same = total = 0
    for logits, out in _run_both(onnx_file, model_cfg, deploy_cfg, checkpoint, images,
                                 batch, decode_head=False):
        expected = logits.argmax(axis=1)
        got = out[:, 0] if out.shape[1] == 1 else out.argmax(axis=1)
        same += int((got == expected).sum())
        total += expected.size
    return 100.0 * same / total


def logits_agreement(onnx_file: str, model_cfg: Config, deploy_cfg: Config,
                     checkpoint: str, images: Sequence[str], batch: int = 2,
                     fixed_batch: bool = False) -> Tuple[float, float]:
    """For a TAO 6 graph: ``(pixel agreement %, max |logit difference|)`` of ONNX
    Runtime's 1/4-size logits against the decode head's, over ``images`` in batches of
    ``batch`` (the graph's batch when ``fixed_batch``).

    Raises:
        RuntimeError: If the output's shape is not the decode head's.
    """
    same = total = 0
    diff = 0.0
    for logits, out in _run_both(onnx_file, model_cfg, deploy_cfg, checkpoint, images,
                                 batch, decode_head=True, fixed_batch=fixed_batch):
        if out.shape != logits.shape:
            raise RuntimeError(f'{onnx_file}: output shape {list(out.shape)}, expected the '
                               f'decode head\'s {list(logits.shape)}')
        diff = max(diff, float(np.abs(out - logits).max()))
        same += int((out.argmax(axis=1) == logits.argmax(axis=1)).sum())
        total += logits[:, 0].size
    return 100.0 * same / total, diff


def export(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none',
           check_images: int = 8, tao_version: Optional[int] = None) -> Dict[str, Dict]:
    """Export ``export.checkpoint`` to ONNX, then compare ONNX Runtime with PyTorch on up
    to ``check_images`` test images and write a DeepStream nvinfer config beside each file.

    ``export.format: onnx``: TAO 5's graph through mmdeploy (``export.output``: argmax,
    logits or both). ``export.format: tao6``: TAO 6's (:func:`export_tao6`; what a TAO 6
    spec gets). ``tao_version`` (5, 6 or None: from the spec's keys) picks the schema.

    Returns ``{variant: {'file': path, 'agreement': percent, 'nvinfer': config path}}``
    (variants ``argmax`` / ``logits``, or ``tao6``).
    ``status.json`` in the export results dir gets TAO's lines (a TAO 5 spec also TAO 5.5's
    "Start logging for Export" and "Completed Export." lines).

    Raises:
        RuntimeError: If the agreement is below 99.9 %.
    """
    spec = prepare(spec_path, overrides, 'export', tao_version)
    form = spec_form(spec)
    with task_status(results_dir(spec, 'export'), 'export', form) as status:
        if form == 5:
            status.write(message=TAO5_EXPORT_START)
        results = _export(spec, launcher, check_images)
        if form == 5:
            status.write(message='Completed Export.')
    return results


def _export(spec, launcher: str, check_images: int) -> Dict[str, Dict]:
    from mmdeploy.apis import torch2onnx
    from mmdeploy.apis.utils import build_task_processor

    e = spec.export
    if e.input_channel != 3:
        raise ValueError('export.input_channel: the model takes 3-channel input (grayscale '
                         'images are loaded as 3 channels); set it to 3')
    if e.format == 'onnx' and e.batch_size != -1:
        print(f'warning: export.batch_size ({e.batch_size}) is ignored with export.format '
              'onnx: its batch axis is always dynamic (export.format tao6 takes a fixed '
              'batch)', file=sys.stderr)
    cfg = task_config(spec, 'export', launcher)
    init_default_scope('mmseg')
    check_checkpoint_fits(MODELS.build(cfg.model), e.checkpoint)
    out_dir = cfg.work_dir
    onnx_file = e.onnx_file or osp.join(out_dir, 'segformer.onnx')
    os.makedirs(osp.dirname(osp.abspath(onnx_file)), exist_ok=True)
    images = _check_images(spec, check_images, out_dir)
    if e.format == 'tao6':
        variants = ['tao6']
    else:
        variants = ['argmax', 'logits'] if e.output == 'both' else [e.output]
    fixed = e.format == 'tao6' and e.batch_size != -1
    results = {}
    for variant in variants:
        path = onnx_file if variant != 'logits' or len(variants) == 1 else \
            osp.splitext(onnx_file)[0] + '_logits.onnx'
        dcfg = deploy_config(e.opset_version, e.input_height, e.input_width,
                             variant == 'argmax', osp.basename(path))
        if variant == 'tao6':
            model = build_task_processor(cfg, dcfg, 'cpu').build_pytorch_model(e.checkpoint)
            export_tao6(model, path, e.input_height, e.input_width, e.opset_version,
                        e.batch_size)
        else:
            torch2onnx(images[0], osp.dirname(osp.abspath(path)), osp.basename(path), dcfg,
                       cfg, e.checkpoint, device='cpu')
        results[variant] = dict(file=path, agreement=None,
                                nvinfer=_nvinfer_config(spec, path, variant != 'argmax'))
        if not e.verify:
            print(f'{variant}: {path}; not compared with PyTorch (export.verify: false)',
                  flush=True)
            continue
        if variant == 'tao6':
            agree, diff = logits_agreement(path, cfg, dcfg, e.checkpoint, images,
                                           e.batch_size if fixed else 2, fixed)
            compared = f'max |logit difference| {diff:.2e}, pixel agreement'
        else:
            agree = pixel_agreement(path, cfg, dcfg, e.checkpoint, images)
            compared = 'pixel agreement'
        results[variant]['agreement'] = agree
        print(f'{variant}: {path}; ONNX Runtime vs PyTorch {compared} on '
              f'{len(images)} image(s): {agree:.3f}%', flush=True)
        if agree < 99.9:
            raise RuntimeError(f'{path}: ONNX Runtime agrees with PyTorch on only '
                               f'{agree:.3f}% of pixels (< 99.9%)')
    return results


def _nvinfer_config(spec, onnx_file: str, float_logits: bool) -> str:
    """Write the DeepStream config (and labels.txt) for ``onnx_file``; print its path and,
    when nvinfer cannot normalise exactly as the model does, a warning."""
    e, norm = spec.export, spec.dataset.img_norm_cfg
    palette = Palette.of(spec.dataset.palette)
    path, note = write_nvinfer_config(
        onnx_file, palette.classes, height=e.input_height, width=e.input_width,
        mean=norm.mean, std=norm.std, float_logits=float_logits, rgb=norm.to_rgb,
        batch_size=e.batch_size if e.format == 'tao6' and e.batch_size > 0 else 1)
    if note:
        print(f'warning: {path}: {note}', file=sys.stderr)
    print(f'DeepStream nvinfer config: {path}', flush=True)
    return path


def _check_images(spec, limit: int, out_dir: str) -> List[str]:
    img_dir = spec.dataset.test_dataset.img_dir or spec.dataset.val_dataset.img_dir
    if img_dir:
        found = list_images([img_dir] if isinstance(img_dir, str) else img_dir,
                            spec.dataset.data_root)
        if found:
            return [p for p, _ in found[:limit]]
    # No images in the spec: a deterministic noise image stands in.
    path = osp.join(out_dir, 'export_check.png')
    import mmcv
    rng = np.random.default_rng(0)
    mmcv.imwrite(rng.integers(0, 256, (spec.export.input_height, spec.export.input_width, 3),
                              dtype=np.uint8), path)
    return [path]
