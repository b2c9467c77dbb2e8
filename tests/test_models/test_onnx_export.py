"""Every backbone with the TAO head exports to ONNX (opset 17) with dynamic batch, height
and width; ONNX Runtime matches PyTorch at two sizes from one file."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401
from mmseg_tao.models.backbones import FAN_ARCHS, MIT_ARCHS


class Logits(torch.nn.Module):

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        return self.segmentor.decode_head(self.segmentor.backbone(x))


@pytest.mark.slow  # exports every full-size backbone
@pytest.mark.parametrize('name', sorted(MIT_ARCHS) + sorted(FAN_ARCHS))
def test_onnx_dynamic_shapes(name, tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='TAOEncoderDecoder', backbone=dict(type=name),
        decode_head=dict(type='TAOSegFormerHead', embed_dim=64, num_classes=4)))
    model.init_weights()
    net = Logits(model).eval()
    path = str(tmp_path / f'{name}.onnx')
    torch.onnx.export(
        net, (torch.randn(1, 3, 64, 64), ), path, dynamo=False, opset_version=17,
        input_names=['input'], output_names=['output'],
        dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'},
                      'output': {0: 'batch', 2: 'h4', 3: 'w4'}})
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for shape in [(2, 3, 96, 128), (1, 3, 160, 64)]:  # neither is the traced shape
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = net(x).numpy()
        (got, ) = sess.run(None, {'input': x.numpy()})
        assert got.shape == expected.shape == (shape[0], 4, shape[2] // 4, shape[3] // 4)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
