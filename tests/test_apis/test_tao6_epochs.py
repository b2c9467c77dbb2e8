"""A TAO 6/7 spec trains by epochs as TAO 6/7's Lightning trainer does, end to end.

10 training images, batch 4, 3 epochs, validation_interval 2, checkpoint_interval 2
(TAO 7.0.1: ``check_val_every_n_epoch``, ``ModelCheckpoint(every_n_epochs,
filename='model_{epoch:03d}_{step:05d}', save_last='link')``, ``drop_last=False``):
3 iterations per epoch with a last batch of 2; validation after epoch 2 only; one
checkpoint, ``model_epoch_001_step_00006.pth`` (Lightning's epoch 1, 0-based, after 6
steps), also ``segformer_model_latest.pth``, in TAO's layout; the run resumed from it
(the ``train`` task's auto-resume) trains the 3rd epoch only.
"""
import os
import os.path as osp

import numpy as np
import pytest
import torch
import yaml
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from PIL import Image

from mmseg_tao.apis.experiment import task_config
from mmseg_tao.spec import load_spec

pytestmark = pytest.mark.slow  # two short training runs


@HOOKS.register_module(force=True)
class EpochRecordHook(Hook):
    """Records what the loop does (class-level, read by the test)."""

    events: list = []
    weights: dict = {}

    def before_train(self, runner):
        scalars = runner.message_hub.log_scalars
        self.events.append(('start', runner.epoch, runner.iter, sorted(scalars)))

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.events.append(('iter', runner.epoch, runner.iter, len(data_batch['inputs'])))

    def after_train_epoch(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        type(self).weights[runner.epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    def after_val_epoch(self, runner, metrics=None):
        self.events.append(('val', runner.epoch, runner.iter, None))


def _write_split(root: str, split: str, n: int) -> None:
    for kind in ('images', 'masks'):
        os.makedirs(osp.join(root, kind, split), exist_ok=True)
    for i in range(n):
        mask = np.zeros((16, 16, 3), np.uint8)
        mask[:, 8:] = 255
        Image.fromarray(mask // 2 + 10 * i).save(osp.join(root, 'images', split, f'{i:02d}.png'))
        Image.fromarray(mask).save(osp.join(root, 'masks', split, f'{i:02d}.png'))


@pytest.fixture
def spec_path(tmp_path):
    root = str(tmp_path / 'data')
    _write_split(root, 'train', 10)
    _write_split(root, 'val', 3)
    spec = dict(
        results_dir=str(tmp_path / 'results'),
        model=dict(backbone=dict(type='mit_b0'),
                   decode_head=dict(decoder_params=dict(embed_dim=32))),
        dataset=dict(segment=dict(root_dir=root, batch_size=4, img_size=32, workers=0,
                                  label_transform='norm')),
        train=dict(num_epochs=3, validation_interval=2, checkpoint_interval=2))
    path = tmp_path / 'spec.yaml'
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _train(spec_path: str) -> list:
    """The train task's config (auto-resume included) in a Runner, with the recorder."""
    EpochRecordHook.events = []
    cfg = task_config(load_spec(spec_path, task='train'), 'train')
    cfg.custom_hooks.append(dict(type='EpochRecordHook'))
    Runner.from_cfg(cfg).train()
    return EpochRecordHook.events


def _iters(events):
    return [(e, i, n) for kind, e, i, n in events if kind == 'iter']


def test_epochs_validation_checkpoints_and_resume(spec_path, tmp_path):
    work = tmp_path / 'results' / 'train'
    events = _train(spec_path)
    # 3 epochs of ceil(10 / 4) = 3 iterations, the last batch short.
    assert _iters(events) == [(e, 3 * e + b, [4, 4, 2][b]) for e in range(3) for b in range(3)]
    # Validation after the 2nd epoch only (not also after the last, as mmengine's loop).
    assert [(e, i) for kind, e, i, _ in events if kind == 'val'] == [(2, 6)]
    names = sorted(n for n in os.listdir(work) if n.endswith('.pth'))
    assert names == ['model_epoch_001_step_00006.pth', 'segformer_model_latest.pth']
    ckpt = work / 'model_epoch_001_step_00006.pth'
    assert osp.samefile(work / 'segformer_model_latest.pth', ckpt)

    # TAO 6/7's layout, loadable as TAO 7 loads (weights_only), holding the model after
    # epoch 2 exactly (the fuse convolution's bias is 0; BatchNorm unchanged).
    saved = torch.load(ckpt, weights_only=True, map_location='cpu')
    assert (saved['epoch'], saved['global_step']) == (1, 6)
    assert 'pytorch-lightning_version' in saved
    assert all(k.startswith(('model.backbone.', 'model.decoder.')) for k in saved['state_dict'])
    after_2 = EpochRecordHook.weights[1]
    state = saved['state_dict']
    assert torch.equal(state['model.decoder.linear_pred.weight'],
                       after_2['decode_head.linear_pred.weight'])
    assert torch.equal(state['model.decoder.linear_fuse.1.running_mean'],
                       after_2['decode_head.linear_fuse.bn.running_mean'])
    assert not state['model.decoder.linear_fuse.0.bias'].any()

    # Resumed from it (the newest checkpoint of results/train): the 3rd epoch only, with
    # the weights and logged scalars restored; no checkpoint, no validation (3 is no
    # multiple of 2).
    EpochRecordHook.weights = {}
    events = _train(spec_path)
    kind, epoch, it, scalars = events[0]
    assert (kind, epoch, it) == ('start', 2, 6) and 'train/loss' in scalars
    assert _iters(events) == [(2, 6, 4), (2, 7, 4), (2, 8, 2)]
    assert not [e for e in events if e[0] == 'val']
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == names


def test_resumed_inside_an_epoch_finishes_it(spec_path, tmp_path):
    """Checkpoints every 4 steps (checkpoint_interval_unit step): the one after step 4,
    inside the 2nd epoch, is Lightning's epoch 1; resumed from it, the run trains that
    epoch's 2 remaining batches, then the 3rd epoch: 9 iterations in all."""
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    spec['train'].update(num_epochs=2, checkpoint_interval=4, checkpoint_interval_unit='step')
    with open(spec_path, 'w') as f:
        yaml.safe_dump(spec, f)
    work = tmp_path / 'results' / 'train'
    _train(spec_path)
    assert sorted(n for n in os.listdir(work) if n.startswith('model_')) == [
        'model_epoch_001_step_00004.pth']
    spec['train']['num_epochs'] = 3
    with open(spec_path, 'w') as f:
        yaml.safe_dump(spec, f)
    events = _train(spec_path)
    assert _iters(events) == [(1, 4, 4), (1, 5, 2), (2, 6, 4), (2, 7, 4), (2, 8, 2)]
    assert sorted(n for n in os.listdir(work) if n.startswith('model_')) == [
        'model_epoch_001_step_00004.pth', 'model_epoch_002_step_00008.pth']
