"""A corpus of user mistakes through every task of the ``mmseg-tao`` command: each ends in
exit status 2 with one message naming what is wrong, never a traceback (issue 23 item 6).

Checkpoint mistakes (unsafe, truncated, foreign, encrypted files, another backbone) have
their own corpus in test_checkpoint_errors.py."""
import os
import os.path as osp
import shutil

import pytest
import torch
import yaml

from mmseg_tao.cli import main
from seg_data import write_isbi_spec

TASKS = ('train', 'evaluate', 'inference', 'export')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny spec (train and test data) and a checkpoint that fits its model."""
    root = tmp_path_factory.mktemp('corpus')
    spec = write_isbi_spec(root, dict(max_iters=1, validation_interval=1), val='separate',
                           results_dir=str(root / 'results'))
    data = yaml.safe_load(open(spec))
    val = data['dataset']['val_dataset']
    data['dataset']['test_dataset'] = dict(val)
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_tao  # noqa: F401
    from mmseg_tao.apis import task_config
    from mmseg_tao.spec import load_spec
    with open(spec, 'w') as f:
        yaml.safe_dump(data, f)
    ckpt = str(root / 'model.pth')
    init_default_scope('mmseg')  # module fixtures run before conftest's autouse one
    cfg = task_config(load_spec(spec, [f'evaluate.checkpoint={ckpt}'], task='evaluate'),
                      'evaluate')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), ckpt)
    return root, spec, ckpt, val


@pytest.fixture(autouse=True)
def fresh_loggers():
    """mmengine's loggers outlive a test and keep writing to the stderr pytest captured
    for it; made anew per test, they write to this test's."""
    from mmengine.logging import MMLogger
    MMLogger._instance_dict.clear()


def run(capsys, task, spec, *overrides):
    code = main([task, '-e', spec, *overrides])
    err = capsys.readouterr().err
    return code, err


def assert_one_message(code, err, *expected):
    assert code == 2, err
    assert 'Traceback' not in err
    for text in expected:
        assert text in err, err


def with_ckpt(task, ckpt):
    return [f'{task}.checkpoint={ckpt}'] if task != 'train' else []


@pytest.mark.parametrize('task', TASKS)
def test_missing_spec_file(capsys, tmp_path, task):
    path = str(tmp_path / 'nosuch.yaml')
    assert_one_message(*run(capsys, task, path), 'nosuch.yaml')


@pytest.mark.parametrize('task', TASKS)
def test_yaml_syntax_error_names_line(capsys, tmp_path, task):
    path = tmp_path / 'bad.yaml'
    path.write_text('model:\n  backbone: [mit_b0\ntrain: {}\n')
    assert_one_message(*run(capsys, task, str(path)), 'bad.yaml', 'line')


@pytest.mark.parametrize('task', TASKS)
@pytest.mark.parametrize('override,expected', [
    ('model.backbone.typ=mit_b0', "did you mean 'model.backbone.type'"),
    ('model.backbone.type=mit_b9', 'mit_b9'),
    ('dataset.batch_size=two', 'dataset.batch_size'),
    ('results_dir', 'results_dir'),
])
def test_bad_override(capsys, setup, task, override, expected):
    _, spec, ckpt, _ = setup
    assert_one_message(*run(capsys, task, spec, override, *with_ckpt(task, ckpt)), expected)


@pytest.mark.parametrize('task', ('evaluate', 'inference', 'export'))
def test_missing_checkpoint(capsys, setup, tmp_path, task):
    _, spec, _, _ = setup
    path = str(tmp_path / 'nosuch.pth')
    assert_one_message(*run(capsys, task, spec, f'{task}.checkpoint={path}'), 'nosuch.pth')


def _bad_split(kind, src, dst):
    """A copy of the split ``src`` (img_dir / ann_dir) at ``dst`` spoilt as ``kind``;
    returns (img_dir, ann_dir, the text the message must hold)."""
    img, ann = osp.join(dst, 'images'), osp.join(dst, 'masks')
    if kind == 'missing':
        return img, ann, img
    shutil.copytree(src['img_dir'], img)
    shutil.copytree(src['ann_dir'], ann)
    first = sorted(os.listdir(img))[0]
    if kind == 'empty':
        for name in os.listdir(img):
            os.remove(osp.join(img, name))
        return img, ann, img
    if kind == 'truncated':
        path = osp.join(img, first)
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 3])
        return img, ann, first
    if kind == 'unreadable':
        open(osp.join(img, first), 'wb').write(b'not an image at all')
        return img, ann, first
    if kind == 'unpaired':
        os.remove(osp.join(ann, sorted(os.listdir(ann))[0]))
        return img, ann, first
    if kind == 'size mismatch':
        from PIL import Image
        mask = Image.open(osp.join(ann, first))
        mask.resize((mask.width // 2, mask.height // 2)).save(osp.join(ann, first))
        return img, ann, first
    raise ValueError(kind)


KINDS = ('missing', 'empty', 'truncated', 'unreadable', 'unpaired', 'size mismatch')


@pytest.mark.slow  # builds a model per case
@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('task', ('train', 'evaluate', 'inference'))
def test_bad_data(capsys, setup, tmp_path, task, kind):
    _, spec, ckpt, val = setup
    if task == 'inference' and kind in ('unpaired', 'size mismatch'):
        pytest.skip('inference reads no masks')
    img, ann, expected = _bad_split(kind, val, str(tmp_path / 'split'))
    section = 'dataset.train_dataset' if task == 'train' else 'dataset.test_dataset'
    dirs = ([f'{section}.img_dir=[{img}]', f'{section}.ann_dir=[{ann}]'] if task == 'train'
            else [f'{section}.img_dir={img}', f'{section}.ann_dir={ann}'])
    code, err = run(capsys, task, spec, *dirs, *with_ckpt(task, ckpt),
                    f'results_dir={tmp_path / "results"}')
    assert_one_message(code, err, expected)
