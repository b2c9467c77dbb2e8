"""Golden checks of the spec -> config mapping."""
import textwrap

import pytest
from mmengine.config import Config
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401
from mmseg_tao.spec import load_spec, spec_to_config, write_config

SPEC = """
model:
  input_height: 256
  input_width: 320
  pretrained_model_path: /weights/mit_b2.pth
  backbone: {type: mit_b2}
  decode_head: {decoder_params: {embed_dim: 256}, dropout_ratio: 0.2}
dataset:
  data_root: /data
  img_norm_cfg: {mean: [1, 2, 3], std: [4, 5, 6], to_rgb: false}
  train_dataset:
    img_dir: [a/img, b/img]
    ann_dir: [a/ann, b/ann]
    pipeline:
      augmentation_config:
        random_crop: {cat_max_ratio: 0.5}
        resize: {ratio_range: [0.75, 1.5]}
        random_flip: {prob: 0.25}
  val_dataset: {img_dir: v/img, ann_dir: v/ann}
  palette:
    - {seg_class: road, rgb: [1, 1, 1], label_id: 7, mapping_class: road}
    - {seg_class: lane, rgb: [2, 2, 2], label_id: 3, mapping_class: road}
    - {seg_class: car, rgb: [3, 3, 3], label_id: 5, mapping_class: car}
    - {seg_class: truck, rgb: [4, 4, 4], label_id: 9, mapping_class: car}
    - {seg_class: sky, rgb: [5, 5, 5], label_id: 1, mapping_class: sky}
  repeat_data_times: 3
  batch_size: 6
  workers_per_gpu: 2
train:
  max_iters: 4000
  checkpoint_interval: 500
  logging_interval: 20
  validate: true
  validation_interval: 1000
  trainer:
    sf_optim: {lr: 0.0001, weight_decay: 0.01}
    lr_config: {warmup_iters: 300, warmup_ratio: 0.001, power: 0.9, min_lr: 1.0e-7}
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / 'spec.yaml'
    path.write_text(textwrap.dedent(SPEC))
    return spec_to_config(load_spec(str(path), task='train'))


def test_optimizer_and_schedule(cfg):
    opt = cfg['optim_wrapper']
    assert opt['type'] == 'OptimWrapper'  # no AMP unless asked
    assert opt['optimizer'] == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                                    weight_decay=0.01)
    assert opt['paramwise_cfg']['custom_keys'] == dict(
        pos_block=dict(lr_mult=1.0, decay_mult=0.0), norm=dict(lr_mult=1.0, decay_mult=0.0),
        head=dict(lr_mult=10.0, decay_mult=1.0))
    # mmcv 1.x's poly schedule from iteration 0 with a linear warm-up reaching 1 at 300
    # (test_tao5_schedule.py steps them).
    assert cfg['param_scheduler'] == [
        dict(type='LinearLR', start_factor=0.001, end_factor=1.0, by_epoch=False, begin=0,
             end=301),
        dict(type='PolyLR', eta_min=1e-7, power=0.9, by_epoch=False, begin=0, end=4001)]
    assert cfg['train_cfg'] == dict(type='IterBasedTrainLoop', max_iters=4000, val_interval=1000)
    assert cfg['default_hooks']['checkpoint']['interval'] == 500
    assert cfg['default_hooks']['logger']['interval'] == 20


def test_pipeline_order_and_parameters(cfg):
    assert [t['type'] for t in cfg['train_pipeline']] == [
        'LoadImageFromFile', 'LoadTAOAnnotations', 'RandomResize', 'RandomCrop', 'RandomFlip',
        'PhotoMetricDistortion', 'PackSegInputs']
    resize, crop, flip = cfg['train_pipeline'][2:5]
    # No img_scale: TAO's default (min(H, W), 1024) for a 256x320 input.
    assert resize == dict(type='RandomResize', scale=(256, 1024), ratio_range=(0.75, 1.5),
                          keep_ratio=True)
    assert crop == dict(type='RandomCrop', crop_size=(256, 320), cat_max_ratio=0.5)
    assert flip == dict(type='RandomFlip', prob=0.25)
    assert [t['type'] for t in cfg['test_pipeline']] == [
        'LoadImageFromFile', 'Resize', 'LoadTAOAnnotations', 'PackSegInputs']
    assert cfg['test_pipeline'][1]['scale'] == (256, 1024)
    pre = cfg['model']['data_preprocessor']
    assert pre == dict(type='SegDataPreProcessor', mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0],
                       bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size=(256, 320))


def test_data(cfg):
    loader = cfg['train_dataloader']
    assert loader['batch_size'] == 6 and loader['num_workers'] == 2
    assert loader['dataset']['type'] == 'RepeatDataset' and loader['dataset']['times'] == 3
    inner = loader['dataset']['dataset']
    assert inner['img_dirs'] == ['a/img', 'b/img'] and inner['ann_dirs'] == ['a/ann', 'b/ann']
    assert inner['data_root'] == '/data' and inner['ignore_index'] == 255
    assert cfg['val_dataloader']['dataset']['img_dirs'] == ['v/img']
    assert cfg['val_evaluator']['type'] == 'TAOIoUMetric'
    # No test_dataset: tools/test.py uses the validation data.
    assert cfg['test_dataloader']['dataset']['img_dirs'] == ['v/img']


def test_model(cfg):
    head = cfg['model']['decode_head']
    # road+lane, car+truck, sky: 3 classes after mapping_class merges.
    assert head['num_classes'] == 3
    assert head['embed_dim'] == 256 and head['dropout_ratio'] == 0.2
    assert head['ignore_index'] == 255 and head['norm_cfg']['type'] == 'BN'
    assert cfg['model']['backbone'] == dict(
        type='mit_b2', init_cfg=dict(type='Pretrained', checkpoint='/weights/mit_b2.pth'))
    assert cfg['sync_bn'] is None  # one process


def test_sync_bn_only_with_several_processes(tmp_path):
    path = tmp_path / 'spec.yaml'
    path.write_text(textwrap.dedent(SPEC))
    assert spec_to_config(load_spec(str(path), ['train.num_gpus=2']))['sync_bn'] == 'torch'
    assert spec_to_config(load_spec(str(path), ['train.gpu_ids=[0, 1, 2]']))['sync_bn'] == 'torch'
    cfg = spec_to_config(load_spec(str(path), ['train.num_gpus=2',
                                               'model.decode_head.norm_cfg.type=BN']))
    assert cfg['sync_bn'] is None


def test_validate_false_and_short_runs(tmp_path):
    path = tmp_path / 'spec.yaml'
    path.write_text(textwrap.dedent(SPEC))
    cfg = spec_to_config(load_spec(str(path), ['train.validate=false', 'train.max_iters=200',
                                               'dataset.repeat_data_times=1', 'train.amp=true']))
    assert cfg['val_dataloader'] is None and cfg['val_cfg'] is None
    assert cfg['val_evaluator'] is None
    # Warm-up longer than the run: the run ends inside it, as mmcv's.
    assert cfg['param_scheduler'] == [
        dict(type='LinearLR', start_factor=0.001, end_factor=1.0, by_epoch=False, begin=0,
             end=301),
        dict(type='PolyLR', eta_min=1e-7, power=0.9, by_epoch=False, begin=0, end=201)]
    assert cfg['train_dataloader']['dataset']['type'] == 'TAOSegDataset'
    assert cfg['optim_wrapper']['type'] == 'TAOAmpOptimWrapper'


IN_CHANNELS = {  # TAO's table (REFERENCE.md / TAO channels_map)
    'mit_b0': [32, 64, 160, 256], 'mit_b1': [64, 128, 320, 512],
    'mit_b3': [64, 128, 320, 512], 'mit_b5': [64, 128, 320, 512],
    'fan_tiny_8_p4_hybrid': [128, 256, 192, 192], 'fan_small_12_p4_hybrid': [128, 256, 384, 384],
    'fan_base_16_p4_hybrid': [128, 256, 448, 448], 'fan_large_16_p4_hybrid': [128, 256, 480, 480],
}


@pytest.mark.parametrize('backbone', sorted(IN_CHANNELS))
def test_in_channels_by_backbone(backbone, tmp_path):
    path = tmp_path / 'spec.yaml'
    path.write_text(textwrap.dedent(SPEC))
    cfg = spec_to_config(load_spec(str(path), [f'model.backbone.type={backbone}',
                                               'model.pretrained_model_path=null']))
    out = str(tmp_path / 'cfg.py')
    write_config(cfg, out)
    model = MODELS.build(Config.fromfile(out).model)
    assert model.decode_head.in_channels == IN_CHANNELS[backbone]
    assert model.decode_head.num_classes == 3


def test_ignored_fields_are_reported_when_set(tmp_path):
    """Accepted for TAO's sake, without effect: said when set, for the task that reads them,
    and listed in docs/spec_mapping.md (generated from the same table)."""
    from mmseg_tao.spec.translate import IGNORED, spec_warnings
    path = tmp_path / 'spec.yaml'
    path.write_text(textwrap.dedent(SPEC))
    quiet = load_spec(str(path), ['dataset.repeat_data_times=1'])
    assert not [w for w in spec_warnings(quiet) if 'ignored' in w or 'repeat' in w]
    spec = load_spec(str(path), [
        'train.num_nodes=2', 'export.simplify=true', 'dataset.reduce_zero_label=true',
        'model.backbone.feat_downsample=true', 'dataset.repeat_data_times=500'])
    train = spec_warnings(spec, 'train')
    assert not any(w.startswith('train.num_nodes') for w in train)  # honoured (several nodes)
    assert 'model.backbone.feat_downsample (True) is ignored: the backbones return ' \
        "TAO's feature maps as they are" in train
    assert any(w.startswith('dataset.reduce_zero_label (True) is ignored') for w in train)
    assert any(w.startswith('dataset.repeat_data_times (500) changes nothing') for w in train)
    assert not any(w.startswith('export.') for w in train)  # another task's section
    export = spec_warnings(spec, 'export')
    assert 'export.simplify (True) is ignored: onnx-simplifier is not run' in export
    assert not any(w.startswith(('train.', 'dataset.repeat')) for w in export)
    assert len({row.source for row in IGNORED}) == len(IGNORED)


def test_slide_and_multi_scale(tmp_path):
    """model.test_cfg slide gets its window (default: the model input, 2/3 stride);
    test_dataset.pipeline.multi_scale is the test resize and the --tta pipeline's scale,
    as TAO's MultiScaleFlipAug(img_scale=multi_scale, flip=False)."""
    path = tmp_path / 'spec.yaml'
    path.write_text(textwrap.dedent(SPEC))
    cfg = spec_to_config(load_spec(str(path), ['model.test_cfg.mode=slide']))
    h, w = cfg['crop_size']
    assert cfg['model']['test_cfg'] == dict(mode='slide', crop_size=(h, w),
                                            stride=(2 * h // 3, 2 * w // 3))
    cfg = spec_to_config(load_spec(str(path), [
        'model.test_cfg.mode=slide', 'model.test_cfg.crop_size=[256, 512]',
        'model.test_cfg.stride=[128, 256]',
        'dataset.test_dataset.pipeline.multi_scale=[2048, 1024]']))
    assert cfg['model']['test_cfg'] == dict(mode='slide', crop_size=(256, 512),
                                            stride=(128, 256))
    assert cfg['test_pipeline'][1]['scale'] == (2048, 1024)
    tta = cfg['tta_pipeline'][1]
    assert tta['type'] == 'TestTimeAug' and cfg['tta_model'] == dict(type='SegTTAModel')
    assert tta['transforms'][0] == [dict(type='Resize', scale=(2048, 1024), keep_ratio=True)]
    assert tta['transforms'][1] == [dict(type='RandomFlip', prob=0.0, direction='horizontal')]


def test_training_configs_draw_their_curves(cfg, tmp_path):
    """Every generated config ends its custom hooks with TrainingCurvesHook (curves.png
    in the work dir when training ends), after the status and record hooks; the written
    file keeps it and the hook is registered."""
    from mmengine.registry import HOOKS
    assert [h['type'] for h in cfg['custom_hooks']] == [
        'TAOStatusLoggerHook', 'ExperimentRecordHook', 'TAODeterminismHook',
        'TrainingCurvesHook']
    assert cfg['custom_hooks'][-1] == dict(type='TrainingCurvesHook')
    out = str(tmp_path / 'cfg.py')
    write_config(cfg, out)
    assert Config.fromfile(out).custom_hooks[-1] == dict(type='TrainingCurvesHook')
    assert HOOKS.get('TrainingCurvesHook') is not None
