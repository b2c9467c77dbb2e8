"""mmdeploy's torch2onnx on current torch (TorchScript exporter), run by ONNX Runtime."""
import os.path as osp

import numpy as np
import onnx
import onnxruntime as ort
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu

import mmseg_tao  # noqa: F401


def test_torch2onnx_segformer_opset17(tiny_segformer_cfg_path, data_dir, tmp_path):
    from mmdeploy.apis import torch2onnx
    from mmdeploy.apis.utils import build_task_processor
    from mmseg.registry import MODELS

    # The project's static deploy config, at 64x64.
    deploy_cfg = Config.fromfile(osp.join(data_dir, '..', '..', 'configs', 'deploy',
                                          'segmentation_onnxruntime_static-512x512.py'))
    deploy_cfg.onnx_config.input_shape = [64, 64]
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(tiny_segformer_cfg_path).model)
    ckpt = str(tmp_path / 'model.pth')
    save_checkpoint(dict(state_dict=weights_to_cpu(model.state_dict()),
                         meta=dict(iter=0)), ckpt)
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)

    torch2onnx(img, str(tmp_path), 'end2end.onnx', deploy_cfg,
               tiny_segformer_cfg_path, ckpt, device='cpu')
    onnx_path = str(tmp_path / 'end2end.onnx')
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto)
    assert {o.domain: o.version for o in proto.opset_import}[''] == 17
    assert [i.name for i in proto.graph.input] == ['input']
    assert [o.name for o in proto.graph.output] == ['output']

    # The same preprocessing and weights through PyTorch.
    processor = build_task_processor(Config.fromfile(tiny_segformer_cfg_path),
                                     deploy_cfg, 'cpu')
    torch_model = processor.build_pytorch_model(ckpt)
    data, inputs = processor.create_input(
        img, input_shape=(64, 64), data_preprocessor=torch_model.data_preprocessor)
    with torch.no_grad():
        expected = torch_model.predict(inputs, data['data_samples'])[0].pred_sem_seg.data
    expected = expected.numpy()

    sess = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    (out, ) = sess.run(None, {'input': inputs.numpy()})
    assert out.shape == (1, 1, 64, 64)
    np.testing.assert_array_equal(out[0], expected)
    # A random model still predicts more than one class here, so equality means
    # something.
    assert len(np.unique(expected)) > 1
