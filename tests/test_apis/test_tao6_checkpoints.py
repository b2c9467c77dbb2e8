"""TAO 6/7 checkpoints wherever a checkpoint is accepted: ``mmseg-tao evaluate | inference
| export`` on a TAO 6 spec pointing at TAO's file, mmseg's ``init_model``,
``train.pretrained_model_path`` and ``resume_training_checkpoint_path``, and
``tools/convert_checkpoint.py --to tao6`` (and back).

The checkpoint is what TAO 7.0.1 saves for its own model: its Lightning ``state_dict``
keys as recorded from TAO's code (tests/data/tao_oracle/tao7_keys.json) with the oracle
weights (a non-zero fuse-convolution bias), and our outputs are compared with the logits
TAO's model computed for them (tao7_outputs.pt).
"""
import json
import os.path as osp
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
import yaml

from mmseg_tao.cli import main
from mmseg_tao.models.utils import convert_state_dict
from seg_data import write_pair
from test_models.test_utils.test_tao6_layout import (
    OUTPUTS,
    RECORD,
    facts,
    lightning_checkpoint,
    oracle_state_dict,
    our_model,
    tao7_keys,
)

ROOT = Path(__file__).parents[2]
COLORS = {0: (0, 0, 0), 1: (255, 0, 0), 2: (0, 255, 0)}
PALETTE = [dict(seg_class=name, mapping_class=name, label_id=i, rgb=list(COLORS[i]))
           for i, name in enumerate(('background', 'box', 'stripe'))]


def make_tao6_data(root: Path, n_train: int = 4, n_val: int = 2) -> Path:
    """TAO 6's folders (images/<split>, masks/<split>) with colour masks of 3 classes."""
    rng = np.random.default_rng(0)
    for split, n in (('train', n_train), ('val', n_val)):
        for i in range(n):
            mask = np.zeros((64, 64), np.uint8)
            y, x = rng.integers(0, 32, 2)
            mask[y:y + 32, x:x + 32] = 1
            mask[:, i * 4:i * 4 + 2] = 2
            write_pair(str(root / 'images' / split), str(root / 'masks' / split),
                       f'img_{i:03d}', mask, rgb_lut=COLORS, seed=i)
    return root


def tao6_spec(path: Path, data: Path, checkpoint: str, backbone: str = 'mit_b0',
              top: Optional[dict] = None, **train) -> str:
    """A TAO 6/7 spec over ``data``: 3 classes, img_size 64, decoder width 256 (TAO's
    default, as in the record); ``checkpoint`` for evaluate, inference and export (export
    at the record's 64 x 96 input); ``top``: other top-level keys; ``train``: keys of
    ``train``."""
    spec = dict(
        **(top or {}),
        results_dir=str(path.parent / 'results'),
        model=dict(backbone=dict(type=backbone),
                   decode_head=dict(decoder_params=dict(embed_dim=256))),
        dataset=dict(segment=dict(
            root_dir=str(data), num_classes=3, img_size=64, batch_size=2, workers=0,
            train_split='train', validation_split='val', test_split='val',
            predict_split='val', label_transform=None, palette=PALETTE,
            augmentation=dict(random_color=dict(enable=False), with_random_blur=False))),
        train=dict(num_epochs=1, checkpoint_interval=1, validation_interval=1, **train),
        evaluate=dict(checkpoint=checkpoint, batch_size=2),
        inference=dict(checkpoint=checkpoint),
        export=dict(checkpoint=checkpoint, onnx_file=str(path.parent / 'export.onnx'),
                    input_width=96, input_height=64, batch_size=-1))
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


@pytest.fixture(scope='module')
def tao6_file(tmp_path_factory):
    """Data, and TAO 7's mit_b0 checkpoint as TAO names it."""
    root = tmp_path_factory.mktemp('tao6_ckpt')
    data = make_tao6_data(root / 'data')
    ckpt = str(root / 'model_epoch_004_step_00010.pth')
    torch.save(lightning_checkpoint('mit_b0'), ckpt)
    return root, data, ckpt


def test_init_model_reproduces_tao7(tao6_file):
    """mmseg's init_model (mmdeploy's path too): TAO 7's logits from TAO 7's file."""
    from mmseg.apis import init_model

    from mmseg_tao.apis.experiment import task_config
    from mmseg_tao.spec import load_spec
    root, data, ckpt = tao6_file
    spec = load_spec(tao6_spec(root / 'init.yaml', data, ckpt), task='inference')
    model = init_model(task_config(spec, 'inference'), ckpt, device='cpu')
    with torch.no_grad():
        logits = model.decode_head.forward(model.extract_feat(facts.oracle_input()))
    assert float((logits - OUTPUTS['mit_b0']['logits']).abs().max()) <= 1e-4


@pytest.mark.slow  # runs the task
def test_evaluate_inference_export_take_a_tao6_file(tao6_file, capsys):
    root, data, ckpt = tao6_file
    spec = tao6_spec(root / 'spec.yaml', data, ckpt)
    results = root / 'results'
    assert main(['evaluate', '-e', spec]) == 0, capsys.readouterr().err[-3000:]
    result = json.loads((results / 'evaluate' / 'results.json').read_text())
    assert result['checkpoint'] == ckpt and result['num_images'] == 2

    assert main(['inference', '-e', spec]) == 0, capsys.readouterr().err[-3000:]
    assert len(list((results / 'inference' / 'mask_tao').glob('*.png'))) == 2

    assert main(['export', '-e', spec]) == 0, capsys.readouterr().err[-3000:]
    import onnxruntime as ort
    sess = ort.InferenceSession(str(root / 'export.onnx'), providers=['CPUExecutionProvider'])
    (out, ) = sess.run(None, {'input': facts.oracle_input().numpy()})
    # TAO 6's ONNX contract is the decoder's logits: TAO 7's own, from TAO 7's file.
    assert np.abs(out - OUTPUTS['mit_b0']['logits'].numpy()).max() <= 1e-4


def _train_weights(results: Path) -> dict:
    ckpt = torch.load(results / 'train' / 'segformer_model_latest.pth', weights_only=False,
                      map_location='cpu')
    return convert_state_dict(ckpt['state_dict']).state_dict  # written in TAO 6's layout


@pytest.mark.slow  # runs the task
def test_pretrained_model_path_loads_tao6_file(tao6_file, capsys):
    """TAO 6/7 loads ``train.pretrained_model_path`` strictly; so does this: with lr 0
    every parameter after training is the file's (mmengine's non-strict load_from would
    have loaded none of its ``model.*`` keys)."""
    root, data, ckpt = tao6_file
    (root / 'pretrained').mkdir()
    spec = tao6_spec(root / 'pretrained' / 'spec.yaml', data, ckpt, pretrained_model_path=ckpt,
                     optim=dict(lr=0.0, weight_decay=0.0))
    assert main(['train', '-e', spec]) == 0, capsys.readouterr().err[-3000:]
    assert f'starting from the weights of {ckpt}' in capsys.readouterr().out
    trained = _train_weights(root / 'pretrained' / 'results')
    expected = convert_state_dict(oracle_state_dict('mit_b0')).state_dict
    model = our_model('mit_b0')
    params = [k for k, _ in model.named_parameters()]
    assert all(torch.equal(trained[k], expected[k]) for k in params)


@pytest.mark.slow  # runs the task
def test_resume_from_tao6_file_is_weights_only(tao6_file, capsys):
    root, data, ckpt = tao6_file
    (root / 'resume').mkdir()
    spec = tao6_spec(root / 'resume' / 'spec.yaml', data, ckpt,
                     resume_training_checkpoint_path=ckpt)
    assert main(['train', '-e', spec]) == 0, capsys.readouterr().err[-3000:]
    out = capsys.readouterr().out
    assert f'{ckpt} is a TAO 6/7 (PyTorch Lightning) checkpoint (epoch 4, step 10): ' \
           'resuming from its weights only' in out


def _tool(*args):
    run = subprocess.run([sys.executable, str(ROOT / 'tools' / 'convert_checkpoint.py'),
                          *args], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.mark.slow  # the tool in subprocesses
@pytest.mark.parametrize('name', sorted(RECORD['models']))
def test_convert_checkpoint_to_tao6_and_back(name, tmp_path):
    """Ours -> TAO 6/7 -> ours gives identical logits; the TAO 6/7 file holds exactly TAO
    7's keys and shapes, and what TAO's loader reads."""
    from model_utils import perturb
    model = our_model(name)
    perturb(model)
    ours = str(tmp_path / 'iter_40.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=2, iter=40)), ours)
    tao6, back = str(tmp_path / 'model_epoch_002_step_00040.pth'), str(tmp_path / 'back.pth')
    assert "(tao6 layout)" in _tool(ours, tao6, '--to', 'tao6')
    assert "recognised layout 'tao6'" in _tool(tao6, back, '--to', 'tao5')

    written = torch.load(tao6, weights_only=True)  # plain data, as Lightning may load it
    assert written['pytorch-lightning_version'] and \
        (written['epoch'], written['global_step']) == (2, 40)
    assert {k: tuple(v.shape) for k, v in written['state_dict'].items()} == tao7_keys(name)

    x = facts.oracle_input()
    with torch.no_grad():
        expected = model.decode_head.forward(model.extract_feat(x))
    for path in (tao6, back):
        other = our_model(name)
        from mmengine.runner.checkpoint import load_checkpoint
        load_checkpoint(other, path, map_location='cpu', strict=True)
        with torch.no_grad():
            got = other.decode_head.forward(other.extract_feat(x))
        assert torch.equal(got, expected), osp.basename(path)


@pytest.mark.slow  # runs the task
def test_encrypted_tao6_file_with_the_spec_key(tao6_file, tmp_path, monkeypatch, capsys):
    """The spec's top-level ``encryption_key`` reaches the loader (NVIDIA's codec played by
    the stand-in of test_tao_encryption.py); it is written nowhere."""
    from mmseg_tao.models.utils import set_encryption_key
    from test_models.test_utils.test_tao_encryption import _codec_module, save_encrypted
    package = type(sys)('eff')
    package.codec = _codec_module([])
    monkeypatch.setitem(sys.modules, 'eff', package)
    monkeypatch.setitem(sys.modules, 'eff.codec', package.codec)
    _, data, _ = tao6_file
    ckpt = str(tmp_path / 'segformer_model_latest.pth')
    save_encrypted(ckpt, oracle_state_dict('mit_b0'), 'tlt_encode')
    spec = tao6_spec(tmp_path / 'spec.yaml', data, ckpt, top=dict(encryption_key='tlt_encode'))
    try:
        assert main(['evaluate', '-e', spec]) == 0, capsys.readouterr().err[-3000:]
        assert main(['evaluate', '-e', spec, 'encryption_key=wrong']) == 2
        assert 'does not decrypt with the given encryption_key' in capsys.readouterr().err
    finally:
        set_encryption_key(None)
    written = [p for p in (tmp_path / 'results').rglob('*') if p.is_file()]
    assert written and not [p for p in written if b'tlt_encode' in p.read_bytes()]
