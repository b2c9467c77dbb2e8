"""TAO 6.x / 7.x experiment specs: schema detection, validation, overrides, interpolation,
epochs -> iterations, TAO 6's schedules and parameter groups, against hand-computed values.

The TAO 6 facts used as references (TAO 6.25.10 ``SegFormerPlModel.configure_optimizers``)
are written out here, not imported from the package.
"""
import copy
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from mmseg_tao.datasets.tao_dataset import TAOSegDataset, pair_sorted
from mmseg_tao.engine.optimizers.tao6_optim_constructor import TAO6OptimWrapperConstructor
from mmseg_tao.spec import SpecError, load_spec, parse_override, spec_to_config
from mmseg_tao.spec.loader import resolve_interpolations
from mmseg_tao.spec.schema import ExperimentSpec
from mmseg_tao.spec.tao6 import Tao6Experiment, detect_version, unsupported_backbone
from mmseg_tao.spec.tao6_schema import TAO6_ONLY_BACKBONES, Tao6Spec
from mmseg_tao.spec.translate import spec_warnings
from model_utils import tiny_segmentor

DATA = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data')
NVIDIA_BINARY = osp.join(DATA, 'tao6_specs', 'tao_pytorch_backend_6.25.10_experiment_spec.yaml')
NVIDIA_MULTI = osp.join(DATA, 'tao6_specs',
                        'tao_pytorch_backend_6.25.10_experiment_multi-class.yaml')
TAO5_SPEC = osp.join(DATA, 'tao_specs', 'tao_tutorials_v5.0_train_isbi.yaml')

# TAO 6.25.10's no-weight-decay name substrings (SegFormerPlModel._get_parameter_groups).
TAO_NO_DECAY = ['bias', 'norm', 'gamma', 'bn', 'temperature', 'token', 'level_embed', 'spm',
                'ls', 'linear_fuse.1']
SUPPORTED = ['mit_b0', 'mit_b1', 'mit_b2', 'mit_b3', 'mit_b4', 'mit_b5', 'fan_tiny_8_p4_hybrid',
             'fan_small_12_p4_hybrid', 'fan_base_16_p4_hybrid', 'fan_large_16_p4_hybrid']
# The multi-class spec's palette: (label_id, rgb), 'unknown' last.
MULTI_COLORS = [[0, [0, 255, 255]], [1, [255, 255, 0]], [2, [255, 0, 255]], [3, [0, 255, 0]],
                [4, [0, 0, 255]], [5, [255, 255, 255]], [255, [0, 0, 0]]]


# --------------------------------------------------------------------------- helpers
def write_split(root, split: str, n: int, masks: bool = True, mask_rgb=((0, 0, 0), )) -> None:
    """``n`` 8x8 RGB images in root/images/split (and masks in root/masks/split whose left
    half is ``mask_rgb[0]`` and right half ``mask_rgb[-1]``)."""
    os.makedirs(osp.join(root, 'images', split), exist_ok=True)
    for i in range(n):
        img = np.full((8, 8, 3), 10 * i, np.uint8)
        Image.fromarray(img).save(osp.join(root, 'images', split, f'{i:03d}.png'))
    if masks:
        os.makedirs(osp.join(root, 'masks', split), exist_ok=True)
        for i in range(n):
            mask = np.zeros((8, 8, 3), np.uint8)
            mask[:, :4], mask[:, 4:] = mask_rgb[0], mask_rgb[-1]
            Image.fromarray(mask).save(osp.join(root, 'masks', split, f'{i:03d}.png'))


def base_spec(root, num_epochs: int = 5, batch_size: int = 4, **train) -> dict:
    """A small valid TAO 6 spec (mit_b0, TAO 6's binary palette) over ``root``."""
    return {'model': {'backbone': {'type': 'mit_b0'},
                      'decode_head': {'decoder_params': {'embed_dim': 32}}},
            'dataset': {'segment': {'root_dir': str(root), 'batch_size': batch_size,
                                    'img_size': 64}},
            'train': {'num_epochs': num_epochs, **train}}


def write_spec(tmp_path, spec, name: str = 'spec.yaml') -> str:
    path = osp.join(str(tmp_path), name)
    with open(path, 'w') as f:
        f.write(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return path


def problems_of(path: str, overrides=(), task=None, tao_version=None):
    with pytest.raises(SpecError) as err:
        load_spec(path, overrides, task=task, tao_version=tao_version)
    assert path in str(err.value)  # names the file
    return err.value.problems


@pytest.fixture
def data10(tmp_path):
    """A TAO 6 dataset root with 10 training and 3 validation pairs."""
    root = tmp_path / 'data'
    write_split(str(root), 'train', 10)
    write_split(str(root), 'val', 3)
    return str(root)


def tao_linear(step: int, total: int) -> float:
    """TAO 6's 'linear' LambdaLR factor (w = total // 100)."""
    w = total // 100
    if step < w:
        return 1 - (1 - 1e-6) * (w - step) / w
    return 1 - (step - w) / (total - w + 1)


def tao_groups(model, lr: float, wd: float):
    """TAO 6's parameter groups from parameter names: [(full names, lr, weight decay)]."""
    out = []
    for prefix, part, part_lr in (('backbone', model.backbone, lr),
                                  ('decode_head', model.decode_head, 10 * lr)):
        names = [n for n, p in part.named_parameters() if p.requires_grad]
        no_decay = {f'{prefix}.{n}' for n in names if any(s in n for s in TAO_NO_DECAY)}
        decay = {f'{prefix}.{n}' for n in names} - no_decay
        out += [(decay, part_lr, wd), (no_decay, part_lr, 0.0)]
    return [g for g in out if g[0]]


def actual_groups(model, optimizer):
    name_of = {id(p): n for n, p in model.named_parameters()}
    return [({name_of[id(p)] for p in g['params']}, g['lr'], g['weight_decay'])
            for g in optimizer.param_groups]


def build_optim(cfg, model):
    from mmengine.optim import build_optim_wrapper
    return build_optim_wrapper(model, copy.deepcopy(cfg['optim_wrapper']))


# --------------------------------------------------------------------------- 1. schema
@pytest.mark.parametrize('data, version', [
    ({'dataset': {'segment': {'num_classes': 3}}}, 6),
    ({'train': {'num_epochs': 3}}, 6),
    ({'dataset': {'train_dataset': {'img_dir': 'x'}}, 'train': {'max_iters': 3}}, 5),
    ({}, 5),
])
def test_detect_version(data, version):
    """dataset.segment or train.num_epochs mark a TAO 6/7 spec; anything else is TAO 5."""
    assert detect_version(data) == version


def test_load_dispatches_on_schema(tmp_path, data10):
    """A TAO 6 spec loads as a Tao6Experiment carrying its Tao6Spec; TAO 5 stays TAO 5."""
    spec6 = load_spec(write_spec(tmp_path, base_spec(data10)))
    assert isinstance(spec6, Tao6Experiment) and isinstance(spec6.tao6, Tao6Spec)
    assert spec6.model.backbone.type == 'mit_b0'
    assert spec6.dataset.train_dataset.img_dir == 'images/train'
    spec5 = load_spec(TAO5_SPEC)
    assert type(spec5) is ExperimentSpec
    assert spec5.train.max_iters == 1000


def test_forced_version_uses_that_schema(tmp_path, data10):
    """tao_version=5 on a TAO 6 spec gives TAO 5's errors, tao_version=6 on a TAO 5 spec
    TAO 6's; tao_version=7 reads as 6."""
    path6 = write_spec(tmp_path, base_spec(data10))
    as5 = problems_of(path6, tao_version=5)
    assert any(p.startswith('dataset.segment: unknown key') for p in as5)
    assert any(p.startswith('train.num_epochs: unknown key') for p in as5)
    as6 = problems_of(TAO5_SPEC, tao_version=6)
    assert any(p.startswith('train.max_iters: unknown key') for p in as6)
    assert any(p.startswith('dataset.train_dataset: unknown key; valid keys: segment')
               for p in as6)
    assert isinstance(load_spec(path6, tao_version=7), Tao6Experiment)
    with pytest.raises(ValueError, match='tao_version'):
        load_spec(path6, tao_version=4)


# --------------------------------------------------------------------------- 2. validation
def test_every_problem_reported_at_once(tmp_path, data10):
    """Several mistakes come back together in one SpecError, each with its key path."""
    spec = base_spec(data10)
    seg = spec['dataset']['segment']
    seg['img_sise'] = 128
    seg['augmentation'] = {'random_flip': {'hflip_probability': 1.5}}
    spec['train']['optim'] = {'policy': 'poly'}
    spec['train']['num_epochs'] = 'ten'
    problems = problems_of(write_spec(tmp_path, spec), task='train')
    assert sorted(problems) == sorted([
        "dataset.segment.img_sise: unknown key; did you mean 'dataset.segment.img_size'?",
        'dataset.segment.augmentation.random_flip.hflip_probability: 1.5 must be <= 1.0',
        "train.optim.policy: 'poly' is not one of linear, step",
        "train.num_epochs: 'ten' is not an integer",
    ])


# --------------------------------------------------------------------------- 3. overrides
def test_overrides_typed_by_tao6_schema(tmp_path, data10):
    """Overrides are applied and typed against the TAO 6 schema: numbers for numeric keys,
    the text as it is for string keys (root_dir=2024 is the folder '2024')."""
    path = write_spec(tmp_path, base_spec(data10))
    spec = load_spec(path, ['train.num_epochs=3',
                            'dataset.segment.augmentation.random_rotate.angle_list=[90]'],
                     task='train')
    assert spec.tao6.train.num_epochs == 3
    assert spec.train.max_iters == 3 * 3  # 3 epochs of ceil(10 / 4) iterations
    assert spec.tao6.dataset.segment.augmentation.random_rotate.angle_list == [90.0]
    rotate = [t for t in spec_to_config(spec)['train_pipeline']
              if t['type'] == 'TAO6RandomRotate']
    assert rotate[0]['angles'] == [90.0]

    for root in ('/x', '2024'):
        spec = load_spec(path, [f'dataset.segment.root_dir={root}', 'export.checkpoint=/m.pth'],
                         task='export')
        assert spec.tao6.dataset.segment.root_dir == root
        assert spec.dataset.data_root == root
    assert parse_override('dataset.segment.root_dir=2024', Tao6Spec) == \
        ('dataset.segment.root_dir', '2024')
    assert parse_override('train.num_epochs=3', Tao6Spec) == ('train.num_epochs', 3)
    assert problems_of(path, ['train.num_epochs=abc']) == \
        ["train.num_epochs: 'abc' is not an integer"]


# --------------------------------------------------------------------------- 4. interpolation
def test_interpolation_resolves_references():
    """${a.b} takes the other key's value, nested references too; a string that is one
    reference keeps the value's type."""
    data = {'results_dir': '/r',
            'evaluate': {'checkpoint': '${results_dir}/train/x.pth'},
            'export': {'results_dir': '${results_dir}/export',
                       'onnx_file': '${export.results_dir}/m.onnx'},
            'train': {'checkpoint_interval': 2,
                      'validation_interval': '${train.checkpoint_interval}'}}
    assert resolve_interpolations(data) == []
    assert data['evaluate']['checkpoint'] == '/r/train/x.pth'
    assert data['export']['onnx_file'] == '/r/export/m.onnx'
    assert data['train']['validation_interval'] == 2
    assert type(data['train']['validation_interval']) is int


def test_interpolation_in_spec_with_results_dir_override(tmp_path, data10):
    """results_dir given by an override (the spec has ???) reaches every ${results_dir};
    a whole-string reference stays an integer through validation."""
    spec = base_spec(data10, checkpoint_interval=2,
                     validation_interval='${train.checkpoint_interval}')
    spec['results_dir'] = '???'
    spec['evaluate'] = {'checkpoint': '${results_dir}/train/x.pth'}
    path = write_spec(tmp_path, spec)
    loaded = load_spec(path, ['results_dir=/out'], task='train')
    assert loaded.evaluate.checkpoint == '/out/train/x.pth'
    assert loaded.tao6.train.validation_interval == 2
    assert spec_to_config(loaded)['train_cfg']['val_interval'] == 2  # epochs
    # Without the override, results_dir is ??? (unset): the reference is reported.
    assert problems_of(path, task='train') == [
        "evaluate.checkpoint: '${results_dir}/train/x.pth' refers to results_dir, which is "
        'not set (null or ???)']


@pytest.mark.parametrize('key, task, why', [
    ('dataset.segment.root_dir', 'train', 'the images/<split> and masks/<split> folders'),
    ('evaluate.checkpoint', 'evaluate', 'the model to evaluate'),
    ('export.checkpoint', 'export', 'the model to export'),
])
def test_missing_value_required_for_task(tmp_path, data10, key, task, why):
    """??? (OmegaConf's MISSING) reads as unset: a task that needs the key names it."""
    spec = base_spec(data10)
    spec.setdefault('evaluate', {})['checkpoint'] = '/m.pth'
    spec.setdefault('export', {})['checkpoint'] = '/m.pth'
    section, *rest = key.split('.')
    node = spec[section]
    for part in rest[:-1]:
        node = node[part]
    node[rest[-1]] = '???'
    path = write_spec(tmp_path, spec)
    assert problems_of(path, task=task) == [f'{key}: required for {task} ({why}) but missing']


def test_interpolation_refusals(tmp_path, data10):
    """Resolvers are refused (nothing read from the environment), unknown references and
    cycles are reported with their keys, all in one SpecError."""
    data = {'a': '${oc.env:HOME}/x'}
    problems = resolve_interpolations(data)
    assert data['a'] == '${oc.env:HOME}/x'
    assert problems == ["a: '${oc.env:HOME}/x' uses a resolver (oc.env); specs are data, "
                        'only ${key.path} references are resolved']

    spec = base_spec(data10)
    spec['evaluate'] = {'checkpoint': '${oc.env:HOME}/m.pth',
                        'results_dir': '${nowhere.dir}/eval'}
    spec['export'] = {'results_dir': '${export.onnx_file}',
                      'onnx_file': '${export.results_dir}/m.onnx'}
    problems = problems_of(write_spec(tmp_path, spec))
    assert len(problems) == len(set(problems)) == 4
    assert problems[0] == ("evaluate.checkpoint: '${oc.env:HOME}/m.pth' uses a resolver "
                           '(oc.env); specs are data, only ${key.path} references are resolved')
    assert problems[1] == ("evaluate.results_dir: '${nowhere.dir}/eval' refers to nowhere.dir, "
                           'which the spec does not set')
    cycle = problems[2:]
    assert all('refers to itself through' in p for p in cycle)
    assert sorted(p.split(':')[0] for p in cycle) == ['export.onnx_file', 'export.results_dir']


def test_unset_reference_reported_once_per_key(tmp_path):
    """NVIDIA's multi-class spec without results_dir: each key that refers to it is named
    once (export.onnx_file reaches results_dir through export.results_dir)."""
    problems = problems_of(NVIDIA_MULTI, ['model.backbone.type=mit_b0'])
    assert [p.split(':')[0] for p in problems] == [
        'evaluate.checkpoint', 'inference.checkpoint', 'export.results_dir',
        'export.checkpoint']
    assert all('refers to results_dir, which is not set (null or ???)' in p for p in problems)


# --------------------------------------------------------------------------- 5. backbones
@pytest.mark.parametrize('name', sorted(TAO6_ONLY_BACKBONES))
def test_tao6_only_backbone_is_one_clear_error(tmp_path, data10, name):
    """An NVDINOv2 / NV-CLIP / C-RADIO backbone: one error naming it, its family and the
    supported backbones (not a generic 'not one of')."""
    spec = base_spec(data10)
    spec['model']['backbone']['type'] = name
    problems = problems_of(write_spec(tmp_path, spec), task='train')
    assert problems == [
        f'model.backbone.type: {name!r} ({TAO6_ONLY_BACKBONES[name]}) is a TAO 6/7 backbone '
        f'that mmseg-tao does not provide; supported: {", ".join(SUPPORTED)}']
    assert TAO6_ONLY_BACKBONES[name] in ('NVDINOv2', 'NV-CLIP', 'C-RADIO')


def test_unsupported_backbone_helper():
    """unsupported_backbone is None for our backbones and for specs without one."""
    assert unsupported_backbone({'model': {'backbone': {'type': 'mit_b0'}}}) is None
    assert unsupported_backbone({}) is None
    assert 'vit_giant_nvdinov2' in unsupported_backbone(
        {'model': {'backbone': {'type': 'vit_giant_nvdinov2'}}})


def test_nvidia_experiment_spec_backbone_refused(data10):
    """NVIDIA's own experiment_spec.yaml (vit_large_nvdinov2) fails on the backbone alone
    once its ??? values are given."""
    overrides = ['results_dir=/out', f'dataset.segment.root_dir={data10}']
    problems = problems_of(NVIDIA_BINARY, overrides, task='train')
    assert problems == [
        "model.backbone.type: 'vit_large_nvdinov2' (NVDINOv2) is a TAO 6/7 backbone that "
        f'mmseg-tao does not provide; supported: {", ".join(SUPPORTED)}']


# --------------------------------------------------------------------------- 6. NVIDIA multi
@pytest.fixture
def multi_root(tmp_path):
    """images/{train,val,test}, masks/{train,val} with RGB masks of the multi-class palette:
    left half agriculture (255, 255, 0), right half unknown (0, 0, 0)."""
    root = str(tmp_path / 'multi')
    colours = ((255, 255, 0), (0, 0, 0))
    write_split(root, 'train', 3, mask_rgb=colours)
    write_split(root, 'val', 2, mask_rgb=colours)
    write_split(root, 'test', 1, masks=False)
    return root


@pytest.mark.parametrize('task', ['train', 'evaluate', 'inference', 'export'])
def test_nvidia_multi_class_spec(multi_root, task):
    """NVIDIA's multi-class spec loads for every task after overrides; its config has 6
    classes, TAO 6's colour map with 255 for 'unknown', no label transform ('None'), mean and
    std 0.5 x 255, and inference reads images/<predict_split>."""
    out = '/results'
    spec = load_spec(NVIDIA_MULTI, [
        f'dataset.segment.root_dir={multi_root}', f'results_dir={out}',
        'model.backbone.type=mit_b0', 'model.backbone.pretrained_backbone_path=null',
        'dataset.segment.predict_split=test', 'inference.checkpoint=/ckpt/best.pth'],
        task=task)
    assert spec.evaluate.checkpoint == f'{out}/train/segformer_model_latest.pth'
    assert spec.inference.checkpoint == '/ckpt/best.pth'
    assert spec.export.checkpoint == f'{out}/train/segformer_model_latest.pth'
    assert spec.export.onnx_file == f'{out}/export/segformer.onnx'
    assert spec.tao6.dataset.segment.label_transform == 'None'

    cfg = spec_to_config(spec)
    assert cfg['model']['decode_head']['num_classes'] == 6
    for pipeline in ('train_pipeline', 'test_pipeline'):
        load = [t for t in cfg[pipeline] if t['type'] == 'LoadTAO6Annotations']
        assert load == [dict(type='LoadTAO6Annotations', colors=MULTI_COLORS,
                             label_transform=None)], pipeline
    assert cfg['data_preprocessor']['mean'] == [127.5] * 3
    assert cfg['data_preprocessor']['std'] == [127.5] * 3
    test = cfg['test_dataloader']['dataset']
    assert test['data_root'] == multi_root
    if task == 'inference':
        assert test['img_dirs'] == ['images/test'] and test['ann_dirs'] is None
    else:
        assert test['img_dirs'] == ['images/val'] and test['ann_dirs'] == ['masks/val']
    if task == 'train':
        train = cfg['train_dataloader']
        assert train['batch_size'] == 32
        assert train['dataset']['img_dirs'] == ['images/train']
        assert train['dataset']['pairing'] == 'sorted'


def test_nvidia_multi_class_masks_decode(multi_root):
    """The evaluate config's dataset decodes the RGB masks with the palette: agriculture
    (255, 255, 0) is class 1, 'unknown' (0, 0, 0) is 255 (ignored)."""
    from mmseg.registry import DATASETS
    spec = load_spec(NVIDIA_MULTI, [
        f'dataset.segment.root_dir={multi_root}', 'results_dir=/r',
        'model.backbone.type=mit_b0'], task='evaluate')
    dataset = DATASETS.build(spec_to_config(spec)['test_dataloader']['dataset'])
    assert len(dataset) == 2
    gt = dataset[0]['data_samples'].gt_sem_seg.data
    assert gt.shape[-2:] == (224, 224)
    assert (gt[..., :112] == 1).all() and (gt[..., 112:] == 255).all()


# --------------------------------------------------------------------------- 7. epochs
@pytest.mark.parametrize('train, per_epoch, by_epoch, ckpt', [
    # 10 training images, batch 4, 5 epochs, checkpoint_interval 2, validation_interval 2.
    (dict(), 3, True, 2),                                           # ceil(10 / 4)
    (dict(checkpoint_interval_unit='step', checkpoint_interval=4), 3, False, 4),
    (dict(num_gpus=2, gpu_ids=[0, 1]), 2, True, 2),                 # ceil(ceil(10 / 2) / 4)
    (dict(num_gpus=1, gpu_ids=[0, 1, 2]), 1, True, 2),              # 3 processes: ceil(4 / 4)
    (dict(num_gpus=2, gpu_ids=[0, 1], num_nodes=2), 1, True, 2),   # 4 processes: ceil(3 / 4)
])
def test_epochs_to_iterations(tmp_path, data10, train, per_epoch, by_epoch, ckpt):
    """Training runs by epochs (validation every 2); the schedules' iterations follow from
    the training images, batch size and processes (validation images do not count); the
    note shows the sum; checkpoints every 2 epochs or 4 steps."""
    spec_d = base_spec(data10, num_epochs=5, checkpoint_interval=2, validation_interval=2)
    spec_d['train'].update(train)
    notes = []
    spec = load_spec(write_spec(tmp_path, spec_d), task='train', notes=notes)
    cfg = spec_to_config(spec)
    assert spec.iters_per_epoch == per_epoch
    assert cfg['train_cfg'] == dict(type='TAOEpochBasedTrainLoop', max_epochs=5,
                                    val_interval=2, max_iters=5 * per_epoch)
    hook = cfg['default_hooks']['checkpoint']
    assert (hook['by_epoch'], hook['interval'], hook['save_last']) == (by_epoch, ckpt, False)
    assert hook['latest_name'] == 'segformer_model_latest.pth'
    note = [n for n in notes if n.startswith('train.num_epochs')]
    assert len(note) == 1
    assert f'train.num_epochs 5 x {per_epoch} iterations per epoch (10 training images' in note[0]
    assert 'batch 4' in note[0] and f'= {5 * per_epoch} iterations' in note[0]


def test_training_needs_a_batch_size(tmp_path, data10):
    """batch_size -1 (TAO's unset) is an error for training and fine for evaluation."""
    path = write_spec(tmp_path, base_spec(data10, batch_size=-1))
    problems = problems_of(path, task='train')
    assert len(problems) == 1 and problems[0].startswith('dataset.segment.batch_size: -1')
    assert load_spec(path, ['evaluate.checkpoint=/m.pth'], task='evaluate').tao6


def test_training_needs_images(tmp_path):
    """An empty images/<train_split> cannot turn epochs into iterations: reported."""
    root = tmp_path / 'empty'
    os.makedirs(root / 'images' / 'train')
    problems = problems_of(write_spec(tmp_path, base_spec(root)), task='train')
    assert len(problems) == 1
    assert problems[0].startswith(f'dataset.segment.root_dir: no images in {root}/images/train')


@pytest.mark.parametrize('ids, num_classes', [([0, 2], 2), ([0, 1], 3), ([1, 2], 2)])
def test_palette_ids_must_be_class_ids(tmp_path, data10, ids, num_classes):
    """Palette label_ids (255 aside) must be exactly 0..num_classes-1."""
    spec = base_spec(data10)
    seg = spec['dataset']['segment']
    seg['num_classes'] = num_classes
    seg['palette'] = [{'label_id': i, 'rgb': [i, i, i], 'seg_class': f'c{i}',
                       'mapping_class': f'c{i}'} for i in ids]
    seg['palette'].append({'label_id': 255, 'rgb': [9, 9, 9], 'seg_class': 'x',
                           'mapping_class': 'x'})
    problems = problems_of(write_spec(tmp_path, spec), task='train')
    assert len(problems) == 1
    assert problems[0].startswith(f'dataset.segment.palette: label_ids {ids} (255 aside')
    assert f'0..{num_classes - 1}' in problems[0]


# --------------------------------------------------------------------------- 8. schedules
# Schedulers are built before any optimizer step, as the Runner builds them.
SCHEDULER_ORDER = pytest.mark.filterwarnings('ignore:Detected call of:UserWarning')


def lr_trace(cfg, model):
    """The learning rate of every group at each iteration, with the config's schedulers
    stepped after each iteration as ParamSchedulerHook does."""
    from mmengine.registry import PARAM_SCHEDULERS
    wrapper = build_optim(cfg, model)
    schedulers = [PARAM_SCHEDULERS.build(dict(c, optimizer=wrapper))
                  for c in cfg['param_scheduler']]
    trace = []
    for _ in range(cfg['train_cfg']['max_iters']):
        trace.append([g['lr'] for g in wrapper.optimizer.param_groups])
        wrapper.optimizer.step()  # no gradients: nothing changes
        for s in schedulers:
            s.step()
    head = {id(p) for p in model.decode_head.parameters()}
    is_head = [all(id(p) in head for p in g['params'])
               for g in wrapper.optimizer.param_groups]
    return trace, is_head


def assert_lr(trace, is_head, lr, factor):
    bad = []
    for step, lrs in enumerate(trace):
        for g, (value, head) in enumerate(zip(lrs, is_head)):
            want = lr * (10 if head else 1) * factor(step)
            if not math.isclose(value, want, rel_tol=1e-6):
                bad.append((step, g, value, want))
    assert not bad, f'{len(bad)} wrong learning rates, first: {bad[:3]}'


@SCHEDULER_ORDER
def test_linear_schedule_is_taos_lambda(tmp_path, data10):
    """policy linear: at every iteration lr = base x TAO's lambda (warm-up from 1e-6 over
    max_iters // 100 steps, then linear decay), head groups at 10x."""
    spec_d = base_spec(data10, num_epochs=40, batch_size=1)
    spec_d['train']['optim'] = {'policy': 'linear', 'lr': 0.001}
    cfg = spec_to_config(load_spec(write_spec(tmp_path, spec_d), task='train'))
    total = cfg['train_cfg']['max_iters']
    assert total == 400 and total // 100 == 4
    trace, is_head = lr_trace(cfg, tiny_segmentor('mit_b0', perturbed=False))
    assert is_head == [False, False, True, True]
    assert_lr(trace, is_head, 0.001, lambda step: tao_linear(step, total))
    assert math.isclose(trace[4][0], 0.001, rel_tol=1e-9)  # warm-up done at w


@SCHEDULER_ORDER
def test_step_schedule_is_taos_steplr(tmp_path, data10):
    """policy step: lr x 0.1 every num_epochs // 3 epochs (10 epochs: after 3, 6, 9)."""
    spec_d = base_spec(data10, num_epochs=10)
    spec_d['train']['optim'] = {'policy': 'step', 'lr': 0.01, 'optim': 'sgd'}
    spec = load_spec(write_spec(tmp_path, spec_d), task='train')
    cfg = spec_to_config(spec)
    assert spec.iters_per_epoch == 3 and cfg['train_cfg']['max_iters'] == 30
    trace, is_head = lr_trace(cfg, tiny_segmentor('mit_b0', perturbed=False))
    assert_lr(trace, is_head, 0.01, lambda step: 0.1 ** ((step // 3) // (10 // 3)))


# --------------------------------------------------------------------------- 9. param groups
@pytest.mark.parametrize('backbone, decay, no_decay', [
    ('mit_b0', ['backbone.block1.0.attn.q.weight', 'decode_head.linear_pred.weight',
                'decode_head.linear_fuse.conv.weight'],
     ['backbone.block1.0.attn.q.bias', 'backbone.patch_embed1.norm.weight',
      'decode_head.linear_fuse.bn.weight']),
    ('fan_tiny_8_p4_hybrid', ['backbone.blocks.0.attn.q.weight'],
     ['backbone.cls_token', 'backbone.blocks.0.gamma1', 'backbone.blocks.7.mlp.temperature',
      # 'ls' is a substring of 'cls': TAO trains the class-attention blocks without decay.
      'backbone.cls_attn_blocks.0.attn.q.weight']),
])
def test_tao6_parameter_groups(backbone, decay, no_decay):
    """TAO6OptimWrapperConstructor gives exactly TAO's four groups, computed here from the
    parameter names with TAO's substring list: head at 10x lr, no-decay groups at 0."""
    model = tiny_segmentor(backbone, perturbed=False)
    constructor = TAO6OptimWrapperConstructor(dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05)))
    optimizer = constructor(model).optimizer
    groups = actual_groups(model, optimizer)
    assert groups == tao_groups(model, 0.002, 0.05)
    assert [(lr, wd) for _, lr, wd in groups] == [(0.002, 0.05), (0.002, 0.0),
                                                  (0.02, 0.05), (0.02, 0.0)]
    everything = [n for g, _, _ in groups for n in g]
    assert sorted(everything) == sorted(n for n, _ in model.named_parameters())
    decayed = groups[0][0] | groups[2][0]
    assert all(n in decayed for n in decay)
    assert not any(n in decayed for n in no_decay)


@pytest.mark.parametrize('optim, cls, extra', [
    ('sgd', torch.optim.SGD, dict(momentum=0.8)),
    ('adam', torch.optim.Adam, dict(betas=(0.9, 0.999))),
    ('adamw', torch.optim.AdamW, dict(betas=(0.9, 0.999))),
])
def test_tao6_optimizer_from_config(tmp_path, data10, optim, cls, extra):
    """The translated config builds TAO 6's optimizer (SGD with the spec's momentum, Adam,
    AdamW with betas 0.9, 0.999) over TAO's groups."""
    spec_d = base_spec(data10)
    spec_d['train']['optim'] = {'optim': optim, 'lr': 0.003, 'momentum': 0.8,
                                'weight_decay': 0.02}
    cfg = spec_to_config(load_spec(write_spec(tmp_path, spec_d), task='train'))
    assert cfg['optim_wrapper']['constructor'] == 'TAO6OptimWrapperConstructor'
    model = tiny_segmentor('mit_b0', perturbed=False)
    optimizer = build_optim(cfg, model).optimizer
    assert type(optimizer) is cls
    assert actual_groups(model, optimizer) == tao_groups(model, 0.003, 0.02)
    for group in optimizer.param_groups:
        for key, value in extra.items():
            assert group[key] == value, key


def test_freeze_backbone(tmp_path, data10):
    """model.backbone.freeze_backbone: backbone parameters get no gradient and are not
    optimised; the head keeps its two groups at 10x lr."""
    path = write_spec(tmp_path, base_spec(data10))
    cfg = spec_to_config(load_spec(path, ['model.backbone.freeze_backbone=true'], task='train'))
    assert cfg['optim_wrapper']['paramwise_cfg'] == {'freeze_backbone': True}
    model = tiny_segmentor('mit_b0', perturbed=False)
    optimizer = build_optim(cfg, model).optimizer
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.decode_head.parameters())
    groups = actual_groups(model, optimizer)
    assert groups == tao_groups(model, 6e-5, 0.01)
    assert len(groups) == 2 and all(n.startswith('decode_head.') for g in groups for n in g[0])


# --------------------------------------------------------------------------- 10. warnings
def test_spec_warnings_for_ignored_tao6_fields(tmp_path, data10):
    """Ignored TAO 6 fields are warned about when set away from TAO's default, not when
    left or written at the default; other tasks' sections only for those tasks."""
    spec_d = base_spec(data10)
    spec_d['train']['segment'] = {'weights': [0.5, 0.5, 0.5, 0.8, 1.0]}  # TAO's default
    spec_d['train']['num_nodes'] = 1
    spec_d['model']['decode_head']['feature_strides'] = [4, 8, 16, 32]
    assert spec_warnings(load_spec(write_spec(tmp_path, spec_d), task='train'), 'train') == []

    spec_d['train']['segment'] = {'weights': [1.0, 2.0]}
    spec_d['wandb'] = {'project': 'p'}
    spec_d['evaluate'] = {'trt_engine': '/e.engine'}
    spec = load_spec(write_spec(tmp_path, spec_d), task='train')
    warnings = spec_warnings(spec, 'train')
    assert len(warnings) == 2
    assert any(w.startswith('wandb (') and 'is ignored' in w for w in warnings)
    assert any(w.startswith('train.segment.weights ([1.0, 2.0]) is ignored') for w in warnings)
    assert any(w.startswith("evaluate.trt_engine ('/e.engine') is ignored")
               for w in spec_warnings(spec, 'evaluate'))


def test_tensorboard_enabled_adds_the_tensorboard_backend(tmp_path, data10):
    """train.tensorboard.enabled (TAO 6's default: false) adds mmengine's
    TensorboardVisBackend beside the LocalVisBackend, for the visualiser too; it is read,
    so setting it is no warning."""
    from mmengine.registry import VISBACKENDS
    local, board = dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')
    spec_d = base_spec(data10)
    cfg = spec_to_config(load_spec(write_spec(tmp_path, spec_d), task='train'))
    assert cfg['vis_backends'] == [local] and cfg['visualizer']['vis_backends'] == [local]
    spec_d['train']['tensorboard'] = {'enabled': True}
    spec = load_spec(write_spec(tmp_path, spec_d), task='train')
    cfg = spec_to_config(spec)
    assert cfg['vis_backends'] == [local, board]
    assert cfg['visualizer']['vis_backends'] == [local, board]
    assert VISBACKENDS.get('TensorboardVisBackend') is not None
    assert spec_warnings(spec, 'train') == []
    spec_d['train']['tensorboard']['infrequent_logging_frequency'] = 5
    warnings = spec_warnings(load_spec(write_spec(tmp_path, spec_d), task='train'), 'train')
    assert [w.split(' (')[0] for w in warnings] == [
        'train.tensorboard.infrequent_logging_frequency']


def test_palette_problems_name_the_tao6_keys(tmp_path, data10):
    """The palette, checked in TAO 5's form, is reported in the user's TAO 6 key paths."""
    spec_d = base_spec(data10)
    spec_d['dataset']['segment']['palette'] = [
        dict(label_id=0, seg_class='a', mapping_class='a', rgb=[0, 0, 0]),
        dict(label_id=1, seg_class='a', mapping_class='a', rgb=[1, 1, 1])]
    assert problems_of(write_spec(tmp_path, spec_d), task='train') == [
        "dataset.segment.palette[1].seg_class: 'a' is already defined by "
        'dataset.segment.palette[0]']


# --------------------------------------------------------------------------- 11. pairing
def _touch_pngs(folder, names):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(osp.join(folder, name))


def test_pair_sorted_pairs_by_order(tmp_path):
    """The n-th image goes with the n-th mask in sorted order, whatever the names."""
    img, ann = str(tmp_path / 'img'), str(tmp_path / 'ann')
    _touch_pngs(img, ['b.png', 'a.png'])
    _touch_pngs(ann, ['y.png', 'x.png'])
    pairs, problems = pair_sorted(img, ann)
    assert problems == []
    assert pairs == [(osp.join(img, 'a.png'), osp.join(ann, 'x.png')),
                     (osp.join(img, 'b.png'), osp.join(ann, 'y.png'))]
    dataset = TAOSegDataset(img_dirs=img, ann_dirs=ann, pairing='sorted', palette=[
        dict(seg_class='a', rgb=[0, 0, 0], label_id=0, mapping_class='a'),
        dict(seg_class='b', rgb=[1, 1, 1], label_id=1, mapping_class='b')])
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [(d['img_path'], d['seg_map_path']) for d in infos] == pairs


def test_pair_sorted_unequal_counts(tmp_path):
    """Unequal image and mask counts are a problem naming both counts, and no pairs."""
    img, ann = str(tmp_path / 'img'), str(tmp_path / 'ann')
    _touch_pngs(img, ['a.png', 'b.png'])
    _touch_pngs(ann, ['x.png', 'y.png', 'z.png'])
    pairs, problems = pair_sorted(img, ann)
    assert pairs == []
    assert len(problems) == 1
    assert f'2 image(s) in {img} but 3 mask(s) in {ann}' in problems[0]
