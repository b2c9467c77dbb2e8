"""The TAO-style command end to end on a tiny dataset: train, evaluate, inference, export."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml
from PIL import Image

from seg_data import make_dataset

pytestmark = pytest.mark.slow  # trains a model through the CLI, then runs every task on it

PALETTE = [dict(seg_class='bg', label_id=0, mapping_class='bg', rgb=[0, 0, 0]),
           dict(seg_class='box', label_id=1, mapping_class='box', rgb=[255, 0, 0]),
           dict(seg_class='stripe', label_id=2, mapping_class='box', rgb=[0, 255, 0])]


def tao(*args, check=True):
    run = subprocess.run([sys.executable, '-m', 'mmseg_tao.cli', *args], capture_output=True,
                         text=True, timeout=900)
    if check:
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp('tao')
    img, ann = make_dataset(str(root / 'train'), n=6, values=(0, 1, 2))
    vimg, vann = make_dataset(str(root / 'val'), n=3, size=(48, 80), values=(0, 1, 2))
    ckpt = str(root / 'results' / 'train' / 'iter_4.pth')
    spec = dict(
        results_dir=str(root / 'results'),
        model=dict(input_height=64, input_width=64, backbone=dict(type='mit_b0'),
                   decode_head=dict(decoder_params=dict(embed_dim=32))),
        dataset=dict(batch_size=2, workers_per_gpu=0, repeat_data_times=1, palette=PALETTE,
                     train_dataset=dict(img_dir=[img], ann_dir=[ann]),
                     val_dataset=dict(img_dir=vimg, ann_dir=vann),
                     test_dataset=dict(img_dir=vimg, ann_dir=vann)),
        train=dict(max_iters=4, checkpoint_interval=2, logging_interval=2, validate=True,
                   validation_interval=4, trainer=dict(lr_config=dict(warmup_iters=1))),
        evaluate=dict(checkpoint=ckpt), inference=dict(checkpoint=ckpt),
        export=dict(checkpoint=ckpt, input_height=64, input_width=64))
    path = root / 'spec.yaml'
    path.write_text(yaml.safe_dump(spec))
    tao('train', '-e', str(path))
    return root, str(path), vimg


def test_train_outputs(experiment):
    root, _, _ = experiment
    work = root / 'results' / 'train'
    assert {'iter_2.pth', 'iter_4.pth', 'status.json', 'experiment_spec.yaml',
            'target_class_id_mapping.json'} <= set(os.listdir(work))
    rows = [json.loads(line) for line in open(work / 'status.json')]
    assert rows[0]['status'] == 'STARTED' and rows[-1]['status'] == 'SUCCESS'


def test_train_resumes_and_overrides(experiment):
    root, spec, _ = experiment
    run = tao('train', '-e', spec, 'train.max_iters=6', 'train.checkpoint_interval=3')
    assert f'resuming from {root / "results" / "train" / "iter_4.pth"}' in run.stdout
    assert osp.isfile(root / 'results' / 'train' / 'iter_6.pth')


def test_evaluate_tables_and_json(experiment):
    root, spec, _ = experiment
    out = tao('evaluate', '-e', spec).stdout
    lines = out.splitlines()
    start = lines.index('| Class  | IoU   | Acc   |') if '| Class  | IoU   | Acc   |' in lines \
        else next(i for i, x in enumerate(lines) if x.startswith('| Class'))
    assert [x.split('|')[1].strip() for x in lines[start + 2:start + 4]] == ['bg', 'box']
    assert any(x.startswith('| global |') for x in lines)
    result = json.load(open(root / 'results' / 'evaluate' / 'results.json'))
    assert [r['Class'] for r in result['per_class']] == ['bg', 'box']
    assert set(result['summary']) == {'mIoU', 'mAcc', 'aAcc'} and result['num_images'] == 3
    ious = [r['IoU'] for r in result['per_class']]
    assert result['summary']['mIoU'] == pytest.approx(np.nanmean(ious), abs=0.011)
    # Batched: the same numbers as one image at a time; bf16 weights: close to them.
    tao('evaluate', '-e', spec, 'evaluate.batch_size=3', f'evaluate.results_dir={root / "b3"}')
    batched = json.load(open(root / 'b3' / 'results.json'))
    assert batched['summary'] == result['summary']
    tao('evaluate', '-e', spec, 'evaluate.batch_size=2', 'evaluate.precision=bf16',
        f'evaluate.results_dir={root / "bf16"}')
    bf16 = json.load(open(root / 'bf16' / 'results.json'))
    assert bf16['summary']['aAcc'] == pytest.approx(result['summary']['aAcc'], abs=1.0)
    # A sliding window (TAO's model.test_cfg) evaluates too.
    out = tao('evaluate', '-e', spec, 'model.test_cfg.mode=slide',
              'model.test_cfg.crop_size=[32, 32]', 'model.test_cfg.stride=[16, 16]',
              f'evaluate.results_dir={root / "slide"}').stdout
    slide = json.load(open(root / 'slide' / 'results.json'))
    assert slide['num_images'] == 3 and 0 <= slide['summary']['aAcc'] <= 100


def test_inference_masks_named_after_images(experiment):
    root, spec, vimg = experiment
    tao('inference', '-e', spec)
    out = root / 'results' / 'inference'
    names = sorted(os.listdir(vimg))
    assert sorted(os.listdir(out / 'mask_tao')) == names
    assert sorted(os.listdir(out / 'vis_tao')) == names
    for name in names:
        mask = np.array(Image.open(out / 'mask_tao' / name))
        image = Image.open(os.path.join(vimg, name))
        assert mask.shape == (image.height, image.width)  # original size
        assert set(np.unique(mask)) <= {0, 1}
        vis = np.array(Image.open(out / 'vis_tao' / name))
        assert vis.shape == (image.height, image.width, 3)
    # Two images per forward pass: the same masks.
    tao('inference', '-e', spec, 'inference.batch_size=2',
        f'inference.results_dir={root / "batched"}')
    for name in names:
        assert np.array_equal(np.array(Image.open(out / 'mask_tao' / name)),
                              np.array(Image.open(root / 'batched' / 'mask_tao' / name)))
    # Sliding window: full-resolution windows give masks of the same names and sizes.
    tao('inference', '-e', spec, 'inference.mode=slide',
        f'inference.results_dir={root / "slide"}')
    assert sorted(os.listdir(root / 'slide' / 'mask_tao')) == names


def test_export_argmax_and_logits(experiment):
    root, spec, vimg = experiment
    out = tao('export', '-e', spec).stdout
    onnx_file = root / 'results' / 'export' / 'segformer.onnx'
    assert 'argmax: ' in out and 'logits: ' in out
    agreements = [float(line.rsplit(' ', 1)[1].rstrip('%')) for line in out.splitlines()
                  if 'pixel agreement' in line]
    assert len(agreements) == 2 and min(agreements) >= 99.9
    model = onnx.load(str(onnx_file))
    assert [i.name for i in model.graph.input] == ['input']
    assert [o.name for o in model.graph.output] == ['output']
    assert {o.domain: o.version for o in model.opset_import}[''] == 17
    sess = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    (pred, ) = sess.run(None, {'input': np.zeros((3, 3, 64, 64), np.float32)})
    assert pred.shape == (3, 1, 64, 64) and pred.dtype == np.int64  # TAO's argmax output
    sess = ort.InferenceSession(str(root / 'results' / 'export' / 'segformer_logits.onnx'),
                                providers=['CPUExecutionProvider'])
    (logits, ) = sess.run(None, {'input': np.zeros((2, 3, 64, 64), np.float32)})
    assert logits.shape == (2, 2, 64, 64) and logits.dtype == np.float32
    # export.verify: false (TAO's switch) skips the ONNX Runtime comparison.
    out = tao('export', '-e', spec, 'export.verify=false', 'export.output=logits',
              f'export.results_dir={root / "unverified"}').stdout
    assert 'not compared with PyTorch (export.verify: false)' in out
    assert 'pixel agreement' not in out


def test_user_errors_are_clear(experiment, tmp_path):
    _, spec, _ = experiment
    run = tao('evaluate', '-e', spec, 'evaluate.checkpint=x.pth', check=False)
    assert run.returncode == 2
    assert "evaluate.checkpint: unknown key; did you mean 'evaluate.checkpoint'?" in run.stderr
    assert 'Traceback' not in run.stderr
    run = tao('train', '-e', str(tmp_path / 'nope.yaml'), check=False)
    assert run.returncode == 2 and 'nope.yaml: no such file' in run.stderr


@pytest.mark.parametrize('task,override,cause', [
    ('evaluate', 'model.backbone.type=mit_b1', 'the checkpoint looks like mit_b0'),
    ('inference', 'model.decode_head.decoder_params.embed_dim=64',
     'the checkpoint has embed_dim 32'),
    ('export', 'model.backbone.type=mit_b2', 'the checkpoint looks like mit_b0'),
])
def test_checkpoint_of_another_model_is_refused(experiment, tmp_path, task, override, cause):
    """Non-strict loading would run a partly random model; the tasks refuse it."""
    _, spec, _ = experiment
    run = tao(task, '-e', spec, override, f'{task}.results_dir={tmp_path}', check=False)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert 'iter_4.pth does not fit the model' in run.stderr and cause in run.stderr
    assert 'Traceback' not in run.stderr
    assert not [f for f in os.listdir(tmp_path)
                if f.endswith(('.png', '.onnx', '.json')) and f != 'status.json']
    statuses = [json.loads(x)['status'] for x in open(tmp_path / 'status.json')]
    assert statuses[0] == 'STARTED' and statuses[-1] == 'FAILURE'  # as TAO's monitor_status
