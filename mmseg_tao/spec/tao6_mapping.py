"""TAO 6/7 spec -> config: the rules for what only TAO 6/7 has (:data:`MAPPING_TAO6`).

A TAO 6/7 spec reaches the config in TAO 5's form first (the correspondence table and
:data:`~mmseg_tao.spec.tao5_mapping.MAPPING`); these rules, run after, read the TAO 6 spec
itself (``tao6.*``): its augmentation, mask rule, optimizers, and its training by epochs
(:mod:`~mmseg_tao.spec.tao6_training`: loop, data loader, checkpoints, schedules).
"""
import dataclasses
from typing import List, Optional

from ..datasets.transforms.tao6_pipeline import tao6_test_pipeline, tao6_train_pipeline
from . import tao6_training as training
from .rules import Rule, Whole
from .skeleton import LOAD_IMAGE


def _colors(spec) -> List[list]:
    """TAO 6's colour -> class id map as (label_id, colour) pairs: each entry trains as its
    own label_id (255: ignored) and is matched by the colour of its mapping_class
    (build_target_class_list in TAO 6's dataloader/utils.py)."""
    palette = spec.dataset.segment.palette
    by_class = {e.seg_class: list(e.rgb) for e in palette}
    return [[e.label_id, by_class.get(e.mapping_class, list(e.rgb))] for e in palette]


def _label_transform(value: Optional[str]) -> Optional[str]:
    # TAO's example specs write the string 'None' for "no transform".
    return None if value in (None, 'None') else value


def _load_annotations(spec) -> dict:
    seg = spec.dataset.segment
    return dict(type='LoadTAO6Annotations', colors=_colors(spec),
                label_transform=_label_transform(seg.label_transform))


def train_pipeline(spec) -> List[dict]:
    """The training pipeline of a TAO 6/7 spec (``Tao6Spec``)."""
    seg = spec.dataset.segment
    return [dict(LOAD_IMAGE), _load_annotations(spec),
            *tao6_train_pipeline(dataclasses.asdict(seg.augmentation), seg.img_size)]


def test_pipeline(spec) -> List[dict]:
    """The test pipeline of a TAO 6/7 spec (``Tao6Spec``)."""
    return [dict(LOAD_IMAGE), _load_annotations(spec),
            *tao6_test_pipeline(spec.dataset.segment.img_size)]


def _tta_pipeline(spec) -> List[dict]:
    test = test_pipeline(spec)
    return [test[0], dict(type='TestTimeAug', transforms=[[t] for t in test[1:]])]


def _optimizer(optim) -> dict:
    """TAO 6's optimizers: AdamW (betas 0.9, 0.999), Adam, SGD with momentum."""
    if optim.optim == 'sgd':
        return dict(type='SGD', lr=optim.lr, momentum=optim.momentum,
                    weight_decay=optim.weight_decay)
    return dict(type='AdamW' if optim.optim == 'adamw' else 'Adam', lr=optim.lr,
                betas=(0.9, 0.999), weight_decay=optim.weight_decay)


def _vis_backends(tensorboard: bool) -> List[dict]:
    backends = [dict(type='LocalVisBackend')]
    if tensorboard:
        backends.append(dict(type='TensorboardVisBackend'))
    return backends


R = Rule
# Read from the TAO 6 spec (``tao6.*``) after MAPPING; a target both set is TAO 6's.
MAPPING_TAO6: List[Rule] = [
    R('train_pipeline', ('tao6.dataset.segment.augmentation', 'tao6.dataset.segment.img_size',
                         'tao6.dataset.segment.palette',
                         'tao6.dataset.segment.label_transform'),
      Whole(lambda s: train_pipeline(s.tao6)),
      "images read as stored (no EXIF rotation, as TAO 6's PIL loading); TAO 6's order: "
      'resize to img_size square, flips (each its own probability), '
      'rotation by an angle of angle_list, scale + random crop, blur, colour jitter; masks '
      'decoded as TAO 6 does (label_transform norm: value // 255; colours matched to '
      'label_id; unmatched colours class 0; label_id 255 ignored); images and masks paired '
      'by sorted file order'),
    R('test_pipeline', 'tao6.dataset.segment.img_size', Whole(lambda s: test_pipeline(s.tao6)),
      'resize image and mask to img_size square; metrics and predictions at that size, as '
      'TAO 6'),
    R('tta_pipeline', 'tao6.dataset.segment.img_size', Whole(lambda s: _tta_pipeline(s.tao6)),
      'tools/test.py --tta: the test pipeline (TAO 6 has no test-time augmentation)'),
    R('model.decode_head.num_classes', 'tao6.dataset.segment.num_classes',
      note='label_ids 0..num_classes-1 of the palette are the classes'),
    R('optim_wrapper.optimizer', ('tao6.train.optim.optim', 'tao6.train.optim.lr',
                                  'tao6.train.optim.momentum',
                                  'tao6.train.optim.weight_decay'),
      Whole(lambda s: _optimizer(s.tao6.train.optim)),
      'adamw (betas 0.9, 0.999), adam, or sgd with momentum'),
    R('optim_wrapper.constructor', 'tao6.train.optim.optim',
      lambda _: 'TAO6OptimWrapperConstructor',
      "TAO 6's parameter groups: decode head at 10x lr; no weight decay for biases, norms, "
      'layer scales, tokens (TAO 6\'s name substrings)'),
    R('optim_wrapper.paramwise_cfg', 'tao6.model.backbone.freeze_backbone',
      lambda f: dict(freeze_backbone=f), 'freeze_backbone: the backbone gets no gradient'),
    R('param_scheduler', ('tao6.train.optim.policy', 'tao6.train.num_epochs'),
      Whole(training.schedulers),
      'linear: LinearLR warm-up from 1e-6 over 1% of the iterations, then linear decay '
      "exactly as TAO 6's lambda; step: StepLR x0.1 every num_epochs // 3 epochs (both in "
      'iterations: epochs x iterations per epoch)'),
    R('train_cfg', ('tao6.train.num_epochs', 'tao6.train.validation_interval'),
      Whole(training.train_loop),
      'TAOEpochBasedTrainLoop: max_epochs num_epochs; validation after each epoch that is '
      "a multiple of validation_interval and never added at the end (Lightning's "
      'check_val_every_n_epoch; mmengine\'s loop also validates after the last epoch); '
      'max_iters: the iterations the schedule assumes, checked against the data loader'),
    R('train_dataloader', ('tao6.dataset.segment.batch_size', 'tao6.dataset.segment.shuffle'),
      Whole(training.train_dataloader),
      "one pass per epoch (DefaultSampler); drop_last false: the epoch's last batch is "
      "short, as TAO's"),
    R('default_hooks.checkpoint', ('tao6.train.checkpoint_interval',
                                   'tao6.train.checkpoint_interval_unit'),
      Whole(training.checkpoint_hook),
      'every checkpoint_interval epochs (or steps: checkpoint_interval_unit step), at '
      "multiples only, every one kept; named as TAO 6/7's Lightning ModelCheckpoint: "
      'model_epoch_<epoch, 0-based, 3 digits>_step_<optimizer steps, 5 digits>.pth '
      '(model_epoch_001_step_00006.pth after 2 epochs of 3 iterations); the newest also '
      "<train results>/segformer_model_latest.pth, which TAO 6's specs point evaluate, "
      "inference and export at; in TAO 6/7's layout (state_dict with model.* keys, which "
      "TAO 6/7 loads), with mmengine's resume state beside it as plain data"),
    R('default_hooks.logger.interval', ('tao6.dataset.segment.root_dir',
                                        'tao6.dataset.segment.batch_size'),
      Whole(training.logging_interval),
      "every 50 iterations (Lightning's log_every_n_steps), at most an epoch; and at the "
      'end of each epoch'),
    R('log_processor.by_epoch', 'tao6.train.num_epochs', lambda _: True,
      'log lines count epochs: Epoch(train) [epoch][iteration/iterations per epoch]'),
    R('load_from', ('tao6.train.resume_training_checkpoint_path',
                    'tao6.train.pretrained_model_path'), lambda r, p: r or p,
      'resume from resume_training_checkpoint_path, else start from the whole-model '
      'weights of pretrained_model_path'),
    R('vis_backends', 'tao6.train.tensorboard.enabled', _vis_backends,
      "enabled: mmengine's TensorboardVisBackend beside the LocalVisBackend (event files "
      'under <work_dir>/<timestamp>/vis_data)'),
]
