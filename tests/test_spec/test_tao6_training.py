"""A TAO 6/7 spec's config trains as TAO 6/7's Lightning trainer: by epochs, validation
and checkpoints at interval multiples only, TAO's checkpoint names and layout, short last
batches, TAO 7.0.1's deterministic mode; images read without EXIF rotation; the epoch
length by TAO's listing rule. (TAO facts: tao-pytorch 7.0.1 d99ff77,
``core/lightning/tao_lightning_module.py``, ``core/initialize_experiments.py``,
``cv/segformer/dataloader/``.)
"""
import os
import os.path as osp
import re

import pytest
from test_tao6_spec import base_spec, write_spec, write_split

from mmseg_tao.cli.spec2cfg import mapping_doc
from mmseg_tao.spec import load_spec, spec_to_config
from mmseg_tao.spec.epochs import count_images
from seg_data import write_isbi_spec

UNROTATED = dict(type='LoadImageFromFile', color_type='color_ignore_orientation')


@pytest.fixture
def data10(tmp_path):
    root = str(tmp_path / 'data')
    write_split(root, 'train', 10)
    write_split(root, 'val', 3)
    return root


def tao6_cfg(tmp_path, root, **train) -> dict:
    spec = base_spec(root, num_epochs=3, batch_size=4, checkpoint_interval=2,
                     validation_interval=2)
    spec['train'].update(train)
    return spec_to_config(load_spec(write_spec(tmp_path, spec), task='train'))


def test_trains_by_epochs(tmp_path, data10):
    """num_epochs 3, validation_interval 2: TAOEpochBasedTrainLoop (validation after epoch
    2 only); the schedule's 3 x ceil(10 / 4) iterations recorded for the loop's check."""
    cfg = tao6_cfg(tmp_path, data10)
    assert cfg['train_cfg'] == dict(type='TAOEpochBasedTrainLoop', max_epochs=3,
                                    val_interval=2, max_iters=9)
    assert cfg['val_cfg'] == dict(type='ValLoop')
    assert cfg['param_scheduler'][-1]['end'] == 9  # the schedules stay per iteration
    assert cfg['log_processor']['by_epoch'] is True
    assert cfg['default_hooks']['logger']['interval'] == 3  # min(50, iterations / epoch)


def test_last_batch_is_short(tmp_path, data10):
    """TAO's BatchSampler(drop_last=False): one shuffled pass per epoch, 4 + 4 + 2."""
    loader = tao6_cfg(tmp_path, data10)['train_dataloader']
    assert loader['sampler'] == dict(type='DefaultSampler', shuffle=True)
    assert loader['drop_last'] is False and loader['batch_size'] == 4
    assert loader['dataset']['type'] == 'TAOSegDataset'  # no RepeatDataset


@pytest.mark.parametrize('unit, by_epoch', [('epoch', True), ('step', False)])
def test_checkpoints_as_tao(tmp_path, data10, unit, by_epoch):
    """Every checkpoint_interval epochs (or steps), at multiples only (save_last false),
    every one kept, named and laid out as TAO 6/7's, the newest also
    segformer_model_latest.pth."""
    hook = tao6_cfg(tmp_path, data10, checkpoint_interval_unit=unit)['default_hooks'][
        'checkpoint']
    assert hook == dict(type='AtomicCheckpointHook', by_epoch=by_epoch, interval=2,
                        max_keep_ckpts=-1, save_last=False,
                        filename_tmpl='model_epoch_{epoch:03d}_step_{step:05d}.pth',
                        latest_name='segformer_model_latest.pth', layout='tao6')


def test_tao5_specs_keep_iterations(tmp_path):
    """A TAO 5 spec still trains by iterations with mmengine's names (iter_N.pth)."""
    cfg = spec_to_config(load_spec(write_isbi_spec(tmp_path, dict(
        max_iters=6, checkpoint_interval=2, logging_interval=1)), task='train'))
    assert cfg['train_cfg']['type'] == 'IterBasedTrainLoop'
    hook = cfg['default_hooks']['checkpoint']
    assert 'filename_tmpl' not in hook and 'layout' not in hook and not hook['by_epoch']
    assert cfg['train_dataloader']['sampler']['type'] == 'InfiniteSampler'


@pytest.mark.parametrize('deterministic', [True, False])
def test_deterministic_mode_is_taos(tmp_path, data10, deterministic):
    """train.cudnn.deterministic (TAO 6's default true) goes to TAODeterminismHook (TAO
    7.0.1's warn-only mode), never to mmengine's strict randomness.deterministic."""
    cfg = tao6_cfg(tmp_path, data10, cudnn=dict(deterministic=deterministic))
    assert cfg['randomness']['deterministic'] is False
    hooks = {h['type']: h for h in cfg['custom_hooks']}
    assert hooks['TAODeterminismHook'] == dict(type='TAODeterminismHook',
                                               deterministic=deterministic)
    assert cfg['env_cfg']['cudnn_benchmark'] is False  # TAO 6's default benchmark


def test_tao5_deterministic_goes_to_the_hook(tmp_path):
    cfg = spec_to_config(load_spec(write_isbi_spec(tmp_path, dict(
        max_iters=2, exp_config=dict(deterministic=True))), task='train'))
    assert cfg['randomness']['deterministic'] is False
    assert cfg['custom_hooks'][2] == dict(type='TAODeterminismHook', deterministic=True)


def test_images_are_read_unrotated(tmp_path, data10):
    """Every image-loading step written (TAO 5 and TAO 6 train / test / TTA pipelines)
    ignores EXIF orientation, so that mmseg's inference and mmdeploy, which rebuild
    test_pipeline from the config, read images as training did."""
    six = tao6_cfg(tmp_path, data10)
    five = spec_to_config(load_spec(write_isbi_spec(tmp_path / 'five', dict(max_iters=2)),
                                    task='train'))
    for cfg in (six, five):
        for name in ('train_pipeline', 'test_pipeline', 'tta_pipeline'):
            loads = [t for t in cfg[name] if 'LoadImage' in t['type']]
            assert loads == [UNROTATED], name
        assert cfg['train_dataloader']['dataset']['pipeline'][0] == UNROTATED


def test_tao6_datasets_check_their_files(tmp_path, data10):
    """Train and val files are checked (TAO 6's mask rule) before the first iteration;
    the test split too lazily, as TAO 5's."""
    cfg = tao6_cfg(tmp_path, data10)
    assert cfg['train_dataloader']['dataset']['check_data'] is True
    assert cfg['val_dataloader']['dataset']['check_data'] is True
    assert cfg['train_dataloader']['dataset']['pairing'] == 'sorted'


def test_epoch_length_is_taos_listing(tmp_path):
    """TAO's epoch is len(os.listdir(images/<split>)): every entry, no suffix filter, no
    recursion (what TAO's dataset pairs and loads)."""
    root = str(tmp_path / 'data')
    write_split(root, 'train', 3)
    folder = osp.join(root, 'images', 'train')
    open(osp.join(folder, 'notes.txt'), 'w').close()
    os.makedirs(osp.join(folder, 'sub'))
    open(osp.join(folder, 'sub', 'x.png'), 'w').close()
    assert count_images(root, 'train') == len(os.listdir(folder)) == 5
    assert count_images(root, 'missing') == 0


def test_tao6_intervals_within_the_epochs(tmp_path, data10):
    """TAO asserts validation_interval <= num_epochs and, in epochs, checkpoint_interval
    <= num_epochs (initialize_train_experiment); otherwise the run would never validate
    or save."""
    spec = base_spec(data10, num_epochs=3, checkpoint_interval=4, validation_interval=5)
    from mmseg_tao.spec import SpecError
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, spec), task='train')
    assert [p.split(':')[0] for p in err.value.problems] == [
        'train.checkpoint_interval', 'train.validation_interval']
    spec['train'].update(checkpoint_interval_unit='step', validation_interval=3)
    load_spec(write_spec(tmp_path, spec), task='train')  # steps: any count


def test_mapping_doc_names_the_modules():
    doc = mapping_doc()
    assert 'spec/translate.py' not in doc and 'in the same file' not in doc
    for name in ('mmseg_tao/spec/tao5_mapping.py', 'mmseg_tao/spec/tao6_mapping.py',
                 'mmseg_tao/spec/ignored.py', '`LINKS` in `mmseg_tao/spec/correspondence.py`'):
        assert name in doc, name
    assert re.search(r'model_epoch_001_step_00006\.pth', doc)
