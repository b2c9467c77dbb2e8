"""export.format tao6 (TAO 6's ONNX: float logits at 1/4 size) and the DeepStream nvinfer
config written beside every export."""
import os.path as osp

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
from mmseg.registry import MODELS

from mmseg_tao.apis import task_config
from mmseg_tao.apis.deepstream import nvinfer_config, scale_and_offsets
from mmseg_tao.apis.export import export
from mmseg_tao.spec import load_spec
from mmseg_tao.spec.validation import SpecError
from model_utils import perturb
from seg_data import make_dataset

PALETTE = [dict(seg_class='bg', label_id=0, mapping_class='bg', rgb=[0, 0, 0]),
           dict(seg_class='box', label_id=1, mapping_class='box', rgb=[255, 0, 0]),
           dict(seg_class='stripe', label_id=2, mapping_class='stripe', rgb=[0, 255, 0])]
IMAGENET_MEAN, IMAGENET_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A spec over 3 test images (64x64, 3 classes) and a checkpoint of a perturbed
    mit_b0 (confident, distinct logits); returns (root, spec path, the model)."""
    root = tmp_path_factory.mktemp('export_tao6')
    img_dir, _ = make_dataset(str(root / 'test'), n=3, values=(0, 1, 2))
    ckpt = str(root / 'model.pth')
    spec = dict(
        results_dir=str(root / 'results'),
        model=dict(input_height=64, input_width=64, backbone=dict(type='mit_b0'),
                   decode_head=dict(decoder_params=dict(embed_dim=32))),
        dataset=dict(palette=PALETTE, test_dataset=dict(img_dir=img_dir)),
        export=dict(checkpoint=ckpt, input_height=64, input_width=64))
    path = str(root / 'spec.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump(spec, f)
    init_default_scope('mmseg')  # module scope: before the suite's autouse fixture
    torch.manual_seed(0)
    model = MODELS.build(task_config(load_spec(path, task='export'), 'export').model)
    perturb(model)
    save_checkpoint(dict(state_dict=weights_to_cpu(model.state_dict()), meta=dict(iter=0)),
                    ckpt)
    return root, path, model.eval()


def _nvinfer(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)['property']


def _output_type(onnx_file: str):
    proto = onnx.load(onnx_file)
    out = proto.graph.output[0].type.tensor_type
    return out.elem_type, [d.dim_param or d.dim_value for d in out.shape.dim], proto


def _torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():  # backbone + decode head, by hand
        return model.decode_head.forward(model.backbone(torch.from_numpy(x))).numpy()


def test_tao6_dynamic_batch(tiny, capsys):
    root, spec, model = tiny
    res = export(spec, ['export.format=tao6', 'export.opset_version=16',
                        f'export.results_dir={root / "dynamic"}'])
    out = capsys.readouterr().out
    onnx_file = str(root / 'dynamic' / 'segformer.onnx')
    assert list(res) == ['tao6'] and res['tao6']['file'] == onnx_file
    assert res['tao6']['agreement'] >= 99.9
    assert 'max |logit difference|' in out and 'pixel agreement on 3 image(s)' in out

    elem, dims, proto = _output_type(onnx_file)
    assert [i.name for i in proto.graph.input] == ['input']
    assert [o.name for o in proto.graph.output] == ['output']
    assert {o.domain: o.version for o in proto.opset_import}[''] == 16  # the spec's
    assert elem == onnx.TensorProto.FLOAT
    assert dims == ['batch_size', 3, 16, 16]  # [N, C, H/4, W/4]: no resize, no argmax

    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    rng = np.random.default_rng(0)
    for n in (1, 3):
        x = rng.standard_normal((n, 3, 64, 64)).astype(np.float32)
        (got, ) = sess.run(None, {'input': x})
        expected = _torch_logits(model, x)
        assert got.shape == expected.shape == (n, 3, 16, 16) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        assert len(np.unique(expected.argmax(axis=1))) > 1  # the comparison means something

    conf = res['tao6']['nvinfer']
    assert conf == str(root / 'dynamic' / 'segformer_nvdsinfer_config.yaml')
    assert f'DeepStream nvinfer config: {conf}' in out
    prop = _nvinfer(conf)
    assert prop['parse-segmentation-func-name'] == 'NvDsInferParseCustomSegformerTAO2'
    assert prop['onnx-file'] == 'segformer.onnx' and prop['output-blob-names'] == 'output'
    assert prop['num-detected-classes'] == 3 and prop['infer-dims'] == '3;64;64'
    assert prop['network-type'] == 2 and prop['model-color-format'] == 0
    assert prop['batch-size'] == 1
    assert prop['offsets'] == '123.675;116.28;103.53'
    assert prop['net-scale-factor'] == pytest.approx(1 / (sum(IMAGENET_STD) / 3), rel=1e-12)
    assert (root / 'dynamic' / 'labels.txt').read_text() == 'bg;box;stripe\n'
    assert prop['labelfile-path'] == 'labels.txt'


def test_tao6_fixed_batch_and_exact_normalisation(tiny, capsys):
    root, spec, model = tiny
    norm = ['dataset.img_norm_cfg.mean=[127.5,127.5,127.5]',
            'dataset.img_norm_cfg.std=[127.5,127.5,127.5]']
    res = export(spec, ['export.format=tao6', 'export.batch_size=2', *norm,
                        f'export.results_dir={root / "fixed"}'])
    captured = capsys.readouterr()
    # 3 check images in batches of 2: the last batch is filled up.
    assert res['tao6']['agreement'] >= 99.9
    onnx_file = res['tao6']['file']
    elem, dims, proto = _output_type(onnx_file)
    assert elem == onnx.TensorProto.FLOAT and dims == [2, 3, 16, 16]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    assert {o.domain: o.version for o in proto.opset_import}[''] == 17  # the default
    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    (got, ) = sess.run(None, {'input': x})
    np.testing.assert_allclose(got, _torch_logits(model, x), atol=1e-4, rtol=0)
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        sess.run(None, {'input': np.zeros((3, 3, 64, 64), np.float32)})

    prop = _nvinfer(res['tao6']['nvinfer'])
    assert prop['batch-size'] == 2
    # TAO 6's normalisation (mean = std = 0.5 on the 0-1 scale) is exact in nvinfer.
    assert prop['net-scale-factor'] == 1 / 127.5 and prop['offsets'] == '127.5;127.5;127.5'
    assert 'std' not in captured.err and 'Approximate' not in \
        open(res['tao6']['nvinfer']).read()


@pytest.mark.slow  # several ONNX exports
def test_onnx_format_nvinfer_parsers(tiny, capsys):
    root, spec, _ = tiny
    res = export(spec, ['export.batch_size=4', f'export.results_dir={root / "tao5"}'])
    err = capsys.readouterr().err
    assert 'export.batch_size (4) is ignored with export.format onnx' in err
    assert 'differs across channels' in err  # ImageNet std: approximated, and said so
    argmax, logits = _nvinfer(res['argmax']['nvinfer']), _nvinfer(res['logits']['nvinfer'])
    assert argmax['parse-segmentation-func-name'] == 'NvDsInferParseCustomSegformerTAO'
    assert logits['parse-segmentation-func-name'] == 'NvDsInferParseCustomSegformerTAO2'
    assert argmax['onnx-file'] == 'segformer.onnx'
    assert logits['onnx-file'] == 'segformer_logits.onnx'
    assert osp.basename(res['logits']['nvinfer']) == 'segformer_logits_nvdsinfer_config.yaml'
    for prop in (argmax, logits):
        assert prop['num-detected-classes'] == 3 and prop['infer-dims'] == '3;64;64'
        assert prop['batch-size'] == 1  # a dynamic batch axis
    assert '# Approximate normalisation: std' in open(res['argmax']['nvinfer']).read()
    elem, dims, _ = _output_type(res['argmax']['file'])
    assert elem == onnx.TensorProto.INT64 and dims[1] == 1  # TAO 5's argmax, unchanged


def test_scale_and_offsets():
    factor, offsets, note = scale_and_offsets(IMAGENET_MEAN, IMAGENET_STD)
    assert offsets == IMAGENET_MEAN
    # NVIDIA's citysemsegformer nvinfer config uses this value for ImageNet's std.
    assert factor == pytest.approx(0.01735207357279195, rel=1e-12)
    assert 'differs across channels' in note and '1.33%' in note
    factor, offsets, note = scale_and_offsets([127.5] * 3, [127.5] * 3)
    assert factor == 1 / 127.5 and offsets == [127.5] * 3 and note is None


def test_nvinfer_config_text():
    text, note = nvinfer_config('/x/model.onnx', 5, 32, 48, [10, 20, 30], [2, 2, 2],
                                float_logits=False, rgb=False, batch_size=4)
    prop = yaml.safe_load(text)['property']
    assert note is None and text.startswith('# DeepStream Gst-nvinfer config')
    assert prop['onnx-file'] == 'model.onnx' and prop['infer-dims'] == '3;32;48'
    assert prop['num-detected-classes'] == 5 and prop['batch-size'] == 4
    assert prop['model-color-format'] == 1  # BGR model: offsets stay in its order
    assert prop['offsets'] == '10.0;20.0;30.0' and prop['net-scale-factor'] == 0.5
    assert prop['parse-segmentation-func-name'] == 'NvDsInferParseCustomSegformerTAO'
    assert prop['custom-lib-path'].endswith('libnvds_infercustomparser_tao.so')


def test_bad_format_names_the_key(tiny):
    _, spec, _ = tiny
    with pytest.raises(SpecError, match=r"export\.format: 'tao7' is not one of onnx, tao6"):
        export(spec, ['export.format=tao7'])
