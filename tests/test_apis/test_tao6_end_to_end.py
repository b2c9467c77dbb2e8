"""TAO 6/7 specs end to end: `mmseg-tao train|evaluate|inference|export -e tao6_spec.yaml`.

The specs are written from TAO 6/7's documented defaults (/work/shared/tao6 facts, as in
NVIDIA's example specs: random colour and blur off): a multi-class one with an RGB palette
(the demo shapes with colour masks) and a binary ISBI-like one with ``label_transform:
norm`` (0/255 masks).
"""
import glob
import json
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import yaml
from PIL import Image

from test_demo_end_to_end import MIN_MIOU  # the band the TAO 5 form must reach

pytestmark = pytest.mark.slow  # full training runs (300 iterations)

ROOT = osp.join(osp.dirname(__file__), '..', '..')
COLORS = [[0, 0, 0], [220, 20, 60], [0, 160, 80], [30, 90, 230]]
CLASSES = ['background', 'ellipse', 'box', 'triangle']


def run(*args, timeout=1500):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return out.stdout + out.stderr


def tao(*args):
    return run('-m', 'mmseg_tao.cli', *args)


def _tao6_spec(root, results, **segment) -> dict:
    return dict(
        results_dir=str(results),
        model=dict(backbone=dict(type='mit_b0'),
                   decode_head=dict(decoder_params=dict(embed_dim=256))),
        dataset=dict(segment=dict(
            root_dir=str(root), batch_size=4, workers=2, train_split='train',
            validation_split='val', test_split='val', predict_split='val',
            augmentation=dict(random_color=dict(enable=False), with_random_blur=False),
            **segment)),
        train=dict(num_epochs=12, checkpoint_interval=12, validation_interval=12,
                   optim=dict(optim='adamw', lr=6e-4, policy='linear', weight_decay=5e-4)),
        evaluate=dict(checkpoint='${results_dir}/train/segformer_model_latest.pth'),
        inference=dict(checkpoint='${results_dir}/train/segformer_model_latest.pth'),
        export=dict(checkpoint='${results_dir}/train/segformer_model_latest.pth',
                    onnx_file='${results_dir}/export/segformer.onnx', input_width=128,
                    input_height=128, batch_size=-1))


@pytest.fixture(scope='module')
def shapes_rgb(tmp_path_factory):
    """The demo shapes (128 px, 100 train / 20 val) with colour masks."""
    base = tmp_path_factory.mktemp('demo6')
    run('tools/make_demo_dataset.py', str(base), '--kind', 'shapes', '--size', '128',
        '--num-train', '100', '--num-val', '20')
    root = base / 'shapes_rgb'
    shutil.copytree(base / 'shapes' / 'images', root / 'images')
    lut = np.array(COLORS, np.uint8)
    for path in glob.glob(str(base / 'shapes' / 'masks' / '*' / '*.png')):
        split = osp.basename(osp.dirname(path))
        out = root / 'masks' / split / osp.basename(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(lut[np.array(Image.open(path))]).save(out)
    spec = _tao6_spec(root, base / 'results', num_classes=4, img_size=128,
                      label_transform=None,
                      palette=[dict(seg_class=c, mapping_class=c, label_id=i, rgb=rgb)
                               for i, (c, rgb) in enumerate(zip(CLASSES, COLORS))])
    (base / 'spec_tao6.yaml').write_text(yaml.safe_dump(spec, sort_keys=False))
    return base


def test_multiclass_rgb_palette_spec(shapes_rgb):
    spec = str(shapes_rgb / 'spec_tao6.yaml')
    results = shapes_rgb / 'results'
    out = tao('train', '-e', spec)
    # 100 images / batch 4 = 25 iterations per epoch; 12 epochs = 300 iterations, the
    # schedule of the TAO 5 demo test.
    assert 'x 25 iterations per epoch' in out and '= 300 iterations' in out
    rows = [json.loads(x) for x in open(results / 'train' / 'status.json')]
    # TAO 6's status lines: the epoch line, and the validation kpi as fractions
    val = [r for r in rows if r.get('message') == 'Eval metrics generated.']
    epochs = [r for r in rows if r.get('message') == 'Training loop in progress']
    assert val and epochs and epochs[-1]['step'] == 300
    miou = val[-1]['kpi']['val_miou'] * 100
    assert miou > MIN_MIOU
    record = yaml.safe_load(open(results / 'train' / 'experiment_spec.yaml'))
    assert record['dataset']['segment']['num_classes'] == 4  # recorded in TAO 6's form

    tao('evaluate', '-e', spec)
    result = json.load(open(results / 'evaluate' / 'results.json'))
    assert result['summary']['mIoU'] == pytest.approx(miou, abs=0.01)

    tao('inference', '-e', spec)
    masks = sorted(glob.glob(str(results / 'inference' / 'mask_tao' / '*.png')))
    assert len(masks) == 20
    correct = total = 0
    for path in masks:
        pred = np.array(Image.open(path))
        gt = np.array(Image.open(shapes_rgb / 'shapes' / 'masks' / 'val' /
                                 osp.basename(path)))
        assert pred.shape == gt.shape == (128, 128)
        correct += int((pred == gt).sum())
        total += gt.size
    assert correct / total > 0.75  # the all-background baseline is 0.73

    out = tao('export', '-e', spec)
    onnx_file = str(results / 'export' / 'segformer.onnx')
    model = onnx.load(onnx_file)
    (inp, ), (outp, ) = model.graph.input, model.graph.output
    assert (inp.name, outp.name) == ('input', 'output')
    dims = [d.dim_param or d.dim_value for d in outp.type.tensor_type.shape.dim]
    assert dims[1:] == [4, 32, 32] and isinstance(dims[0], str)  # dynamic batch, 1/4 res
    assert outp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.opset_import[0].version == 17
    nvinfer = glob.glob(str(results / 'export' / '*nvdsinfer*'))
    assert nvinfer and 'NvDsInferParseCustomSegformerTAO2' in open(nvinfer[0]).read()


@pytest.fixture(scope='module')
def isbi(tmp_path_factory):
    root = tmp_path_factory.mktemp('isbi6')
    run('tools/prepare_isbi.py', str(root / 'data'), '--num-train', '8', '--num-val', '2',
        '--size', '64')
    spec = _tao6_spec(root / 'data', root / 'results', num_classes=2, img_size=64,
                      label_transform='norm')  # TAO 6's default binary palette
    spec['train'].update(num_epochs=2, checkpoint_interval=1, validation_interval=2)
    spec['export'].update(input_width=64, input_height=64, batch_size=2)
    (root / 'spec.yaml').write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def test_binary_norm_spec(isbi):
    spec = str(isbi / 'spec.yaml')
    out = run('tools/check_dataset.py', spec, '--splits', 'train')
    # 0/255 masks become classes 0 and 1 under label_transform norm.
    shares = {line.split()[1]: float(line.split()[2]) for line in out.splitlines()
              if line.strip()[:1].isdigit() and len(line.split()) == 4}
    assert shares['foreground'] > 0 and shares['background'] > 0
    out = tao('train', '-e', spec)
    assert 'x 2 iterations per epoch' in out  # 8 images / batch 4
    ckpts = sorted(osp.basename(p) for p in glob.glob(str(isbi / 'results' / 'train' /
                                                          '*.pth')))
    # TAO's names (Lightning's 0-based epoch) at checkpoint_interval multiples only
    assert ckpts == ['model_epoch_000_step_00002.pth', 'model_epoch_001_step_00004.pth',
                     'segformer_model_latest.pth']
    tao('evaluate', '-e', spec)
    assert json.load(open(isbi / 'results' / 'evaluate' / 'results.json'))['num_images'] == 2
    tao('inference', '-e', spec)
    assert len(glob.glob(str(isbi / 'results' / 'inference' / 'mask_tao' / '*.png'))) == 2
    tao('export', '-e', spec)
    model = onnx.load(str(isbi / 'results' / 'export' / 'segformer.onnx'))
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [2, 2, 16, 16]  # fixed batch 2, 2 classes, 1/4 of 64


def test_conversions_round_trip(isbi, tmp_path):
    """TAO 6 -> 5 -> 6 keeps every setting the forms share; the TAO 5 form trains the same
    experiment (same iterations, data, learning rate, classes)."""
    spec6 = str(isbi / 'spec.yaml')
    to5, back6 = str(tmp_path / 'to5.yaml'), str(tmp_path / 'back6.yaml')
    out = run('tools/convert_spec.py', spec6, '--to', '5', '-o', to5)
    assert 'no TAO 5 counterpart: dataset.segment.augmentation' in out
    run('tools/convert_spec.py', to5, '--to', '6', '-o', back6)
    sys.path.insert(0, ROOT)
    from mmseg_tao.spec import load_spec
    a, b = load_spec(spec6, task='train'), load_spec(back6, task='train')
    five = load_spec(to5, task='train')
    assert five.train.max_iters == a.train.max_iters == b.train.max_iters == 4
    for path in ('model.backbone.type', 'dataset.segment.img_size', 'dataset.segment.root_dir',
                 'dataset.segment.batch_size', 'dataset.segment.palette',
                 'dataset.segment.label_transform', 'train.optim.lr',
                 'train.optim.weight_decay', 'train.seed', 'evaluate.checkpoint',
                 'export.onnx_file', 'export.batch_size'):
        x, y = a.tao6, b.tao6
        for part in path.split('.'):
            x, y = getattr(x, part), getattr(y, part)
        assert x == y, path
    assert five.dataset.input_type == 'grayscale'  # 0/255 masks in TAO 5's terms
