"""Each backend on a small trained SegFormer (conftest.trained): the quantised model's mIoU
against fp32 on the demo's validation images, the saved file reloaded with
weights_only=True, the Q/DQ ONNX's nodes and its ONNX Runtime outputs against fp32."""
import os.path as osp

import onnx
import pytest
import torch
import yaml
from quant_utils import miou

from mmseg_tao.apis import quantize
from mmseg_tao.apis.experiment import prepare
from mmseg_tao.apis.quantize import _build_model
from mmseg_tao.quantization import is_quantized_checkpoint, restore_quantized_model

# mIoU points a quantised model may lose against fp32 on the 8 validation images: int8
# weights only (torchao) moves logits by ~1e-2; static int8 (weights and activations) more.
WEIGHT_ONLY_TOLERANCE = 2.0
STATIC_TOLERANCE = 5.0


@pytest.fixture(scope='module')
def fp32(trained):
    spec = prepare(trained['spec'], trained['overrides'], 'quantize')
    model = _build_model(spec, trained['root'], trained['checkpoint'])
    return dict(spec=spec, model=model, miou=miou(model, trained['root']))


def _run(trained, tmp_path, *overrides):
    return quantize(trained['spec'], [*trained['overrides'],
                                      f'quantize.results_dir={tmp_path}',
                                      f'quantize.model_path={trained["checkpoint"]}',
                                      *overrides])


def _fresh(trained, fp32):
    return _build_model(fp32['spec'], trained['root'], None)


def test_torchao_weight_only(trained, fp32, tmp_path):
    out = _run(trained, tmp_path, 'quantize.device=cpu')
    # TAO's file name (core/quantization/backends/torchao/torchao.py save_model).
    assert out['file'] == str(tmp_path / 'quantized_model_torchao.pth')
    # mit_b0 + head: 8 blocks x (q, kv, proj, fc1, fc2) + 4 head projections = 44 Linear.
    assert len(out['quantized']) == 44
    assert is_quantized_checkpoint(out['file'])
    assert not is_quantized_checkpoint(trained['checkpoint'])
    ckpt = torch.load(out['file'], weights_only=True)
    assert ckpt['mmseg_tao_quantization']['settings']['backend'] == 'torchao'
    model = restore_quantized_model(_fresh(trained, fp32), out['file'])
    assert type(model.backbone.block1[0].attn.q.weight).__name__ == 'Int8Tensor'
    got = miou(model, trained['root'])
    assert abs(got - fp32['miou']) <= WEIGHT_ONLY_TOLERANCE, (got, fp32['miou'])
    status = [yaml.safe_load(x) for x in open(tmp_path / 'status.json')]
    assert [r['status'] for r in status][0] == 'STARTED'
    assert status[0]['message'] == 'Starting SegFormer quantize.'  # TAO 7's monitor_status
    assert status[-1]['status'] == 'SUCCESS'


def test_modelopt_static_int8(trained, fp32, tmp_path):
    out = _run(trained, tmp_path, 'quantize.backend=modelopt.pytorch',
               'quantize.mode=static_ptq', 'quantize.algorithm=minmax',
               f'dataset.quant_calibration_dataset.img_dir={trained["calib"]}')
    assert out['file'] == str(tmp_path / 'quantized_model_modelopt.pytorch.pth')
    assert out['algorithm'] == 'max'  # TAO's minmax is ModelOpt's max calibration
    ckpt = torch.load(out['file'], weights_only=True)
    assert {'modelopt_state', 'model_state_dict', 'mmseg_tao_quantization'} <= set(ckpt)
    model = restore_quantized_model(_fresh(trained, fp32), out['file'])
    q = model.backbone.block1[0].attn.q
    assert q.weight_quantizer.is_enabled and q.input_quantizer.is_enabled
    assert float(q.input_quantizer.amax) > 0  # calibrated
    got = miou(model, trained['root'])
    assert abs(got - fp32['miou']) <= STATIC_TOLERANCE, (got, fp32['miou'])


# Convolutions and linear layers in int8 (TAO's layer words: Conv -> Conv, Linear -> MatMul).
INT8 = ('[{module_name: Conv2d, weights: {dtype: int8}, activations: {dtype: int8}}, '
        '{module_name: Linear, weights: {dtype: int8}, activations: {dtype: int8}}]')


def test_modelopt_onnx_is_qdq_int8(trained, fp32, tmp_path):
    out = quantize(trained['spec'], [*trained['overrides'], f'quantize.results_dir={tmp_path}',
                                     f'export.checkpoint={trained["checkpoint"]}',
                                     'export.input_height=64', 'export.input_width=64',
                                     'quantize.backend=modelopt.onnx',
                                     'quantize.mode=static_ptq', f'quantize.layers={INT8}',
                                     f'dataset.quant_calibration_dataset.img_dir='
                                     f'{trained["calib"]}'])
    # TAO's output name (modelopt_onnx/utils.py: <results_dir>/quantized_model.onnx).
    assert out['file'] == str(tmp_path / 'quantized_model.onnx')
    ops = [n.op_type for n in onnx.load(out['file']).graph.node]
    assert ops.count('QuantizeLinear') > 50 and ops.count('DequantizeLinear') > 50
    # Symmetric int8 (zero points 0), as TensorRT wants.
    graph = onnx.load(out['file']).graph
    zero_points = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer
                   if i.name.endswith('_zero_point')}
    assert zero_points and all((z == 0).all() and z.dtype.name == 'int8'
                               for z in zero_points.values())
    # Q/DQ on the inputs of the quantised operators only, as ModelOpt places them
    # (configure_ort: OpTypesToExcludeOutputQuantization = every op type of the graph).
    dq_outputs = {n.output[0] for n in graph.node if n.op_type == 'DequantizeLinear'}
    consumers = {n.op_type for n in graph.node if set(n.input) & dq_outputs}
    # (A DQ output also reaches the Shape / Transpose that read the same tensor.)
    assert {'Conv', 'MatMul'} <= consumers, consumers
    assert not consumers & {'Add', 'BatchNormalization', 'Div', 'Erf', 'LayerNormalization',
                            'Mul', 'Relu', 'Resize', 'Softmax'}, consumers
    assert out['agreement'] >= 95.0 and out['max_abs_diff'] < 1.0, out
    config = open(out['nvinfer']).read()
    assert 'network-mode: 1' in config and 'int8-calib-file' not in config.split('property')[1]
    assert 'no calibration' in config


def test_onnx_that_is_not_a_segformer_is_refused(trained, tmp_path, capsys):
    from onnx import TensorProto, helper

    from mmseg_tao.cli.tasks import main
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 8])
    path = str(tmp_path / 'mlp.onnx')
    onnx.save(helper.make_model(helper.make_graph([helper.make_node('Relu', ['x'], ['y'])],
                                                  'g', [x], [y])), path)
    rc = main(['-e', trained['spec'], 'quantize.backend=modelopt.onnx',
               'quantize.mode=static_ptq', f'quantize.model_path={path}',
               f'quantize.results_dir={tmp_path}',
               f'dataset.quant_calibration_dataset.img_dir={trained["calib"]}'],
              task='quantize')
    err = capsys.readouterr().err
    assert rc == 2
    assert f'{path} is not a SegFormer export' in err and "has shape [1, 8]" in err
    assert not osp.exists(tmp_path / 'quantized_model.onnx')
