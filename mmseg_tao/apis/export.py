"""The ``export`` task: ONNX through mmdeploy, checked with ONNX Runtime on real images."""
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from ..models.utils import check_checkpoint_fits
from .experiment import prepare, task_config
from .inference import list_images


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


def pixel_agreement(onnx_file: str, model_cfg: Config, deploy_cfg: Config,
                    checkpoint: str, images: Sequence[str], batch: int = 2) -> float:
    """Share (%) of pixels where ONNX Runtime's class equals PyTorch's, over ``images``
    run in batches of ``batch`` (exercising the dynamic batch axis)."""
    import onnxruntime as ort
    from mmdeploy.apis.utils import build_task_processor

    processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    model = processor.build_pytorch_model(checkpoint)
    input_shape = deploy_cfg.onnx_config.input_shape
    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    same = total = 0
    for start in range(0, len(images), batch):
        chunk = list(images[start:start + batch])
        data, inputs = processor.create_input(chunk, input_shape=input_shape,
                                              data_preprocessor=model.data_preprocessor)
        with torch.no_grad():
            logits = model.encode_decode(inputs, [s.metainfo for s in data['data_samples']])
        expected = logits.argmax(dim=1).numpy()
        (out, ) = sess.run(None, {'input': inputs.numpy()})
        got = out[:, 0] if out.shape[1] == 1 else out.argmax(axis=1)
        same += int((got == expected).sum())
        total += expected.size
    return 100.0 * same / total


def export(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none',
           check_images: int = 8) -> Dict[str, Dict]:
    """Export ``export.checkpoint`` to ONNX (``export.output``: argmax, logits or both),
    then compare ONNX Runtime with PyTorch on up to ``check_images`` test images.

    Returns ``{variant: {'file': path, 'agreement': percent}}``.
    Raises:
        RuntimeError: If the agreement is below 99.9 %.
    """
    from mmdeploy.apis import torch2onnx

    spec = prepare(spec_path, overrides, 'export')
    e = spec.export
    if e.input_channel != 3:
        raise ValueError('export.input_channel: the model takes 3-channel input (grayscale '
                         'images are loaded as 3 channels); set it to 3')
    cfg = task_config(spec, 'export', launcher)
    init_default_scope('mmseg')
    check_checkpoint_fits(MODELS.build(cfg.model), e.checkpoint)
    out_dir = cfg.work_dir
    onnx_file = e.onnx_file or osp.join(out_dir, 'segformer.onnx')
    os.makedirs(osp.dirname(osp.abspath(onnx_file)), exist_ok=True)
    images = _check_images(spec, check_images, out_dir)
    variants = ['argmax', 'logits'] if e.output == 'both' else [e.output]
    results = {}
    for variant in variants:
        path = onnx_file if variant == 'argmax' or len(variants) == 1 else \
            osp.splitext(onnx_file)[0] + '_logits.onnx'
        dcfg = deploy_config(e.opset_version, e.input_height, e.input_width,
                             variant == 'argmax', osp.basename(path))
        torch2onnx(images[0], osp.dirname(osp.abspath(path)), osp.basename(path), dcfg, cfg,
                   e.checkpoint, device='cpu')
        if not e.verify:
            results[variant] = dict(file=path, agreement=None)
            print(f'{variant}: {path}; not compared with PyTorch (export.verify: false)',
                  flush=True)
            continue
        agree = pixel_agreement(path, cfg, dcfg, e.checkpoint, images)
        results[variant] = dict(file=path, agreement=agree)
        print(f'{variant}: {path}; ONNX Runtime vs PyTorch pixel agreement on '
              f'{len(images)} image(s): {agree:.3f}%', flush=True)
        if agree < 99.9:
            raise RuntimeError(f'{path}: ONNX Runtime agrees with PyTorch on only '
                               f'{agree:.3f}% of pixels (< 99.9%)')
    return results


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
