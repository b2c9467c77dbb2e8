"""Translate a TAO experiment spec into an mmengine / mmseg config.

The config is a fixed skeleton (:func:`skeleton`) whose values are filled by one table,
:data:`MAPPING`: each :class:`Rule` names the config path it sets, the spec paths it reads
and the conversion. ``docs/spec_mapping.md`` is generated from the same table
(``python tools/spec2cfg.py --mapping-doc``), so code and documentation cannot disagree.

Where TAO 5.x is broken the rule says so and does better: every train directory is used,
the palette's label map is applied (by the dataset), PolyLR ends at ``max_iters``,
``validate: false`` disables validation cleanly, ``pretrained_model_path`` is loaded, AMP is
a choice and SyncBN is used only when several GPU processes train. Fields accepted so that
TAO specs load but without effect here are listed in :data:`IGNORED` and reported when set.
"""
import copy
import dataclasses
import os.path as osp
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..datasets.palette import IGNORE_INDEX, Palette
from .schema import ExperimentSpec
from .validation import get_path
from .writer import Ref, resolve_refs


class Whole(NamedTuple):
    """A conversion that takes the whole spec (values derived from several sections);
    the rule's sources then document what it reads."""
    fn: Callable


class Rule(NamedTuple):
    """Config path <- conversion(spec values)."""
    target: str
    sources: Tuple[str, ...]
    convert: Callable
    note: str


class Ignored(NamedTuple):
    """A spec field accepted so that TAO specs load, with no effect here; setting it to
    anything but its default is reported (:func:`spec_warnings`)."""
    source: str
    why: str


def _split_dirs(value) -> List[str]:
    return [value] if isinstance(value, str) else list(value or [])


def palette_entries(spec: ExperimentSpec) -> List[dict]:
    return [dataclasses.asdict(e) for e in spec.dataset.palette or []]


def metainfo(spec: ExperimentSpec) -> Optional[dict]:
    """mmseg's ``metainfo``: class names and colours by training id."""
    palette = _palette(spec)
    if palette is None:
        return None
    return dict(classes=tuple(palette.classes), palette=[list(c) for c in palette.colors])


def _palette(spec: ExperimentSpec) -> Optional[Palette]:
    return Palette.of(spec.dataset.palette) if spec.dataset.palette else None


def num_processes(spec: ExperimentSpec, task: str = 'train') -> int:
    """TAO's rule: num_gpus and gpu_ids are reconciled to the larger."""
    t = getattr(spec, task)
    return max(t.num_gpus, len(t.gpu_ids or []))


def img_scale(spec: ExperimentSpec) -> Tuple[int, int]:
    """``resize.img_scale``, else TAO's default (min(H, W), 1024 or 2048)."""
    scale = spec.dataset.train_dataset.pipeline.augmentation_config.resize.img_scale
    if scale:
        return tuple(scale)
    short = min(spec.model.input_height, spec.model.input_width)
    return (short, 1024 if short < 1024 else 2048)


def test_scale(spec: ExperimentSpec) -> Tuple[int, int]:
    """The test resize scale: ``test_dataset.pipeline.multi_scale`` (the scale of TAO's
    MultiScaleFlipAug), else :func:`img_scale`."""
    scale = spec.dataset.test_dataset.pipeline.multi_scale
    return tuple(scale) if scale else img_scale(spec)


def slide_test_cfg(crop: Sequence[int], stride: Optional[Sequence[int]] = None) -> dict:
    """mmseg's sliding-window ``test_cfg``; the stride defaults to 2/3 of the crop."""
    crop = tuple(crop)
    stride = tuple(stride or (max(1, 2 * crop[0] // 3), max(1, 2 * crop[1] // 3)))
    return dict(mode='slide', crop_size=crop, stride=stride)


def _test_cfg(spec: ExperimentSpec) -> dict:
    t = spec.model.test_cfg
    if t.mode == 'whole':
        return dict(mode='whole')
    return slide_test_cfg(t.crop_size or (spec.model.input_height, spec.model.input_width),
                          t.stride)


def results_dir(spec: ExperimentSpec, task: str = 'train') -> str:
    sub = getattr(spec, task).results_dir
    if sub:
        return sub
    return osp.join(spec.results_dir, task) if spec.results_dir else osp.join('work_dirs', task)


def _warmup_end(spec: ExperimentSpec) -> int:
    return min(spec.train.trainer.lr_config.warmup_iters, spec.train.max_iters)


def _schedulers(spec: ExperimentSpec) -> List[dict]:
    lr = spec.train.trainer.lr_config
    end = _warmup_end(spec)
    out = []
    if end > 0:
        out.append(dict(type='LinearLR', start_factor=lr.warmup_ratio, by_epoch=False,
                        begin=0, end=end))
    if end < spec.train.max_iters:
        out.append(dict(type='PolyLR', eta_min=lr.min_lr, power=lr.power, by_epoch=False,
                        begin=end, end=spec.train.max_iters))
    return out


def _pretrained(path):
    return dict(type='Pretrained', checkpoint=path) if path else None


def _custom_keys(pw) -> dict:
    return {k: dict(lr_mult=getattr(pw, k).lr_mult, decay_mult=getattr(pw, k).decay_mult)
            for k in ('pos_block', 'norm', 'head')}


def split_dataset(spec: ExperimentSpec, split: str, pipeline: str) -> Optional[dict]:
    s = getattr(spec.dataset, f'{split}_dataset')
    if not s.img_dir:
        return None
    d = spec.dataset
    out = dict(
        type='TAOSegDataset', data_root=d.data_root, img_dirs=_split_dirs(s.img_dir),
        ann_dirs=_split_dirs(s.ann_dir) or None, palette=Ref('tao_palette'),
        metainfo=Ref('tao_metainfo'),
        input_type=d.input_type, img_suffix=d.img_suffix, seg_map_suffix=d.seg_map_suffix,
        unknown_label=d.unknown_label, ignore_index=IGNORE_INDEX,
        check_data=split != 'test', pipeline=pipeline)
    if _tao6(spec):
        # TAO 6 pairs images and masks by sorted order and decodes masks itself
        # (LoadTAO6Annotations): colours outside the palette are class 0, not errors.
        out.update(pairing='sorted', check_data=False)
    return out


def _tao6(spec: ExperimentSpec):
    """The TAO 6/7 spec a :class:`~mmseg_tao.spec.tao6.Tao6Experiment` came from, or None."""
    return getattr(spec, 'tao6', None)


def _train_dataset(spec: ExperimentSpec) -> Optional[dict]:
    inner = split_dataset(spec, 'train', Ref('train_pipeline'))
    if inner is None:
        return None
    times = spec.dataset.repeat_data_times
    return inner if times == 1 else dict(type='RepeatDataset', times=times, dataset=inner)


def _loader(spec: ExperimentSpec, dataset: Optional[dict], train: bool,
            batch_size: int = 1) -> Optional[dict]:
    if dataset is None:
        return None
    workers = spec.dataset.workers_per_gpu
    return dict(
        batch_size=spec.dataset.batch_size if train else batch_size,
        num_workers=workers, persistent_workers=workers > 0,
        sampler=dict(type='InfiniteSampler', shuffle=spec.dataset.shuffle) if train
        else dict(type='DefaultSampler', shuffle=False),
        dataset=dataset)


def _val_loader(spec):
    if not spec.train.validate:
        return None
    return _loader(spec, split_dataset(spec, 'val', Ref('test_pipeline')), train=False)


def _test_dataset(spec):
    return (split_dataset(spec, 'test', Ref('test_pipeline'))
            or split_dataset(spec, 'val', Ref('test_pipeline')))


def _iou_metric():
    return dict(type='TAOIoUMetric', iou_metrics=['mIoU'], ignore_index=IGNORE_INDEX)


def _num_classes(spec):
    palette = _palette(spec)
    return palette.num_classes if palette else 2


def _sync_bn(spec):
    several = num_processes(spec) > 1
    return 'torch' if spec.model.decode_head.norm_cfg.type == 'SyncBN' and several else None


def _train_loader(spec):
    return _loader(spec, _train_dataset(spec), train=True)


R = Rule
MAPPING: List[Rule] = [
    # ---- environment
    R('randomness.seed', ('train.exp_config.manual_seed', ), lambda s: s, ''),
    R('randomness.deterministic', ('train.exp_config.deterministic', ), lambda s: s, ''),
    R('env_cfg.cudnn_benchmark', ('train.exp_config.env_cfg.cudnn_benchmark', ), bool,
      'cuDNN autotuning of convolution algorithms'),
    R('log_level', ('train.exp_config.log_level', ), lambda s: s, ''),
    R('work_dir', ('train.results_dir', 'results_dir'), Whole(lambda s: results_dir(s, 'train')),
      'train.results_dir, else <results_dir>/train'),
    # ---- model
    R('crop_size', ('model.input_height', 'model.input_width'), lambda h, w: (h, w),
      'the model input (H, W): training crop and batch padding size'),
    R('data_preprocessor.mean', ('dataset.img_norm_cfg.mean', ), list, ''),
    R('data_preprocessor.std', ('dataset.img_norm_cfg.std', ), list, ''),
    R('data_preprocessor.bgr_to_rgb', ('dataset.img_norm_cfg.to_rgb', ), bool, ''),
    R('data_preprocessor.pad_val', ('dataset.img_norm_cfg.pad_val', ), int,
      'TAO 5.x pads with img_norm_cfg values; pipeline.Pad is accepted and unused, as in TAO'),
    R('data_preprocessor.seg_pad_val', ('dataset.img_norm_cfg.seg_pad_val', ), int, ''),
    R('data_preprocessor.size', ('model.input_height', 'model.input_width'),
      lambda h, w: (h, w), ''),
    R('model.backbone.type', ('model.backbone.type', ), lambda s: s,
      'decode-head in_channels follow from the backbone (TAOEncoderDecoder)'),
    R('model.backbone.init_cfg', ('model.pretrained_model_path', ), _pretrained,
      'really loaded, in any known layout (TAO never loads it)'),
    R('model.decode_head.embed_dim', ('model.decode_head.decoder_params.embed_dim', ),
      lambda s: s, ''),
    R('model.decode_head.dropout_ratio', ('model.decode_head.dropout_ratio', ), lambda s: s, ''),
    R('model.decode_head.align_corners', ('model.decode_head.align_corners', ),
      lambda s: s, ''),
    R('model.decode_head.num_classes', ('dataset.palette', ), Whole(_num_classes),
      'number of distinct mapping_class targets of the palette'),
    R('model.decode_head.loss_decode.loss_weight', ('model.decode_head.loss_decode.loss_weight', ),
      lambda s: s, ''),
    R('model.decode_head.norm_cfg.requires_grad', ('model.decode_head.norm_cfg.requires_grad', ),
      lambda s: s, ''),
    R('sync_bn', ('model.decode_head.norm_cfg.type', 'train.num_gpus', 'train.gpu_ids'),
      Whole(_sync_bn),
      "'torch' (BN -> SyncBN by the Runner) only when norm_cfg.type is SyncBN and more than "
      'one process trains; single-process and CPU runs keep BN'),
    R('model.test_cfg', ('model.test_cfg.mode', 'model.test_cfg.crop_size',
                         'model.test_cfg.stride', 'model.input_height', 'model.input_width'),
      Whole(_test_cfg), "whole; or slide with crop_size (default: the model input) and "
      'stride (default: 2/3 of the crop)'),
    # ---- data
    R('train_pipeline[RandomResize].scale',
      ('dataset.train_dataset.pipeline.augmentation_config.resize.img_scale',
       'model.input_height', 'model.input_width'),
      Whole(img_scale), 'img_scale, else (min(H, W), 1024 if min(H, W) < 1024 else 2048)'),
    R('train_pipeline[RandomResize].ratio_range',
      ('dataset.train_dataset.pipeline.augmentation_config.resize.ratio_range', ), tuple, ''),
    R('train_pipeline[RandomResize].keep_ratio',
      ('dataset.train_dataset.pipeline.augmentation_config.resize.keep_ratio', ),
      lambda s: s, ''),
    R('train_pipeline[RandomCrop].crop_size',
      ('dataset.train_dataset.pipeline.augmentation_config.random_crop.crop_size',
       'model.input_height', 'model.input_width'),
      lambda c, h, w: tuple(c) if c else (h, w), 'crop_size, else the model input size'),
    R('train_pipeline[RandomCrop].cat_max_ratio',
      ('dataset.train_dataset.pipeline.augmentation_config.random_crop.cat_max_ratio', ),
      lambda s: s, ''),
    R('train_pipeline[RandomFlip].prob',
      ('dataset.train_dataset.pipeline.augmentation_config.random_flip.prob', ),
      lambda s: s, ''),
    R('test_pipeline[Resize].scale',
      ('dataset.test_dataset.pipeline.multi_scale',
       'dataset.train_dataset.pipeline.augmentation_config.resize.img_scale',
       'model.input_height', 'model.input_width'),
      Whole(test_scale), "val/test resize: test_dataset.pipeline.multi_scale (TAO's "
      'MultiScaleFlipAug scale), else the training img_scale'),
    R('tta_pipeline[TestTimeAug].transforms[0][Resize].scale',
      ('dataset.test_dataset.pipeline.multi_scale',
       'dataset.train_dataset.pipeline.augmentation_config.resize.img_scale'),
      Whole(test_scale), "tools/test.py --tta: TAO's MultiScaleFlipAug (that one scale, no "
      'flip) as mmseg TestTimeAug + SegTTAModel'),
    R('tta_pipeline[TestTimeAug].transforms[0][Resize].keep_ratio',
      ('dataset.test_dataset.pipeline.augmentation_config.resize.keep_ratio', ),
      lambda s: s, ''),
    R('test_pipeline[Resize].keep_ratio',
      ('dataset.test_dataset.pipeline.augmentation_config.resize.keep_ratio', ),
      lambda s: s, ''),
    R('tao_palette', ('dataset.palette', ), Whole(palette_entries),
      'the palette, once; every dataset refers to it'),
    R('tao_metainfo', ('dataset.palette', ), Whole(metainfo),
      "mmseg's dataset metainfo (class names and colours by training id), once; every "
      'dataset refers to it, so tools that read a dataset config (mmdeploy, mmseg '
      'analysis tools) find the classes'),
    R('train_dataloader', ('dataset.train_dataset', 'dataset.repeat_data_times',
                           'dataset.batch_size', 'dataset.workers_per_gpu', 'dataset.palette'),
      Whole(_train_loader), 'every img_dir/ann_dir pair (TAO uses the first only); '
      'RepeatDataset with '
      'repeat_data_times (no effect with an infinite sampler, as in TAO; a changed value '
      'is warned about); batch_size per process; every file checked '
      'before training (check_data)'),
    R('val_dataloader', ('dataset.val_dataset', 'train.validate'), Whole(_val_loader),
      'None when train.validate is false (TAO crashes); batch size 1'),
    R('val_evaluator', ('train.validate', ), lambda v: _iou_metric() if v else None,
      'TAOIoUMetric (mIoU, per-class IoU / Acc) when validating'),
    R('val_cfg', ('train.validate', ), lambda v: dict(type='ValLoop') if v else None,
      "dict(type='ValLoop') when validating"),
    R('test_dataloader', ('dataset.test_dataset', 'dataset.val_dataset', 'evaluate.batch_size'),
      Whole(lambda s: _loader(s, _test_dataset(s), train=False,
                              batch_size=s.evaluate.batch_size or 1)),
      'test_dataset, else val_dataset (so tools/test.py works on a training spec); '
      'batch size evaluate.batch_size (default 1; images of different sizes are run in '
      'groups of equal size)'),
    R('test_evaluator', ('dataset.test_dataset', 'dataset.val_dataset'),
      Whole(lambda s: _iou_metric() if _test_dataset(s) else None),
      'TAOIoUMetric when there is a test dataloader'),
    R('test_cfg', ('dataset.test_dataset', 'dataset.val_dataset'),
      Whole(lambda s: dict(type='TestLoop') if _test_dataset(s) else None),
      "dict(type='TestLoop') when there is a test dataloader"),
    # ---- schedule
    R('train_cfg.max_iters', ('train.max_iters', ), lambda s: s, ''),
    R('train_cfg.val_interval', ('train.validation_interval', 'train.max_iters'),
      lambda v, m: v or m, ''),
    R('optim_wrapper.type', ('train.amp', ),
      lambda a: 'TAOAmpOptimWrapper' if a else 'OptimWrapper',
      'mixed precision only when asked (TAO always uses fp16): bfloat16 on GPUs that have it '
      '(no loss scaling), float16 with dynamic loss scaling on older GPUs, bfloat16 '
      'autocast on the CPU'),
    R('optim_wrapper.optimizer.lr', ('train.trainer.sf_optim.lr', ), lambda s: s, ''),
    R('optim_wrapper.optimizer.betas', ('train.trainer.sf_optim.betas', ), tuple, ''),
    R('optim_wrapper.optimizer.weight_decay', ('train.trainer.sf_optim.weight_decay', ),
      lambda s: s, ''),
    R('optim_wrapper.paramwise_cfg.custom_keys', ('train.trainer.sf_optim.paramwise_cfg', ),
      _custom_keys, 'pos_block, norm, head multipliers'),
    R('optim_wrapper.clip_grad', ('train.trainer.grad_clip', ),
      lambda g: dict(max_norm=g, norm_type=2) if g else None,
      'gradient-norm clipping when > 0 (TAO ignores grad_clip)'),
    R('param_scheduler', ('train.trainer.lr_config', 'train.max_iters'), Whole(_schedulers),
      'LinearLR warm-up (start_factor warmup_ratio) to min(warmup_iters, max_iters), then '
      'PolyLR to max_iters (TAO: fixed end 160000)'),
    R('default_hooks.checkpoint.interval', ('train.checkpoint_interval', ), lambda s: s, ''),
    R('default_hooks.checkpoint.max_keep_ckpts', ('train.max_keep_ckpts', ),
      lambda s: -1 if s is None else s, ''),
    R('default_hooks.logger.interval', ('train.logging_interval', ), lambda s: s, ''),
    R('custom_hooks[0].interval', ('train.logging_interval', ), lambda s: s,
      "TAO's status.json (TAOStatusLoggerHook); checkpoints are written atomically "
      '(AtomicCheckpointHook); the resolved spec and class mapping are saved '
      '(ExperimentRecordHook); losses reach the logs without a host-device '
      'synchronisation per iteration (DeferredRuntimeInfoHook)'),
    R('find_unused_parameters', ('train.trainer.find_unused_parameters', ), lambda s: s, ''),
    R('load_from', ('train.resume_training_checkpoint_path', ), lambda s: s,
      'resume from this checkpoint (the TAO command also resumes from the newest '
      'iter_N.pth in the results dir)'),
    R('resume', ('train.resume_training_checkpoint_path', 'train.resume'),
      lambda p, r: bool(p) or r, ''),
]


def _tao6_colors(spec) -> List[list]:
    """TAO 6's colour -> class id map as (label_id, colour) pairs: each entry trains as its
    own label_id (255: ignored) and is matched by the colour of its mapping_class
    (build_target_class_list in TAO 6's dataloader/utils.py)."""
    palette = spec.dataset.segment.palette
    by_class = {e.seg_class: list(e.rgb) for e in palette}
    return [[e.label_id, by_class.get(e.mapping_class, list(e.rgb))] for e in palette]


def _tao6_label_transform(value: Optional[str]) -> Optional[str]:
    return None if value in (None, 'None') else value


def _tao6_load_annotations(spec) -> dict:
    seg = spec.dataset.segment
    return dict(type='LoadTAO6Annotations', colors=_tao6_colors(spec),
                label_transform=_tao6_label_transform(seg.label_transform))


def _tao6_train_pipeline(spec) -> List[dict]:
    from ..datasets.transforms.tao6_pipeline import tao6_train_pipeline
    seg = spec.dataset.segment
    return [dict(type='LoadImageFromFile'), _tao6_load_annotations(spec),
            *tao6_train_pipeline(dataclasses.asdict(seg.augmentation), seg.img_size)]


def _tao6_test_pipeline(spec) -> List[dict]:
    from ..datasets.transforms.tao6_pipeline import tao6_test_pipeline
    return [dict(type='LoadImageFromFile'), _tao6_load_annotations(spec),
            *tao6_test_pipeline(spec.dataset.segment.img_size)]


def test_pipeline_of(spec: ExperimentSpec) -> List[dict]:
    """The test pipeline a spec's config gets (what loads its masks)."""
    if _tao6(spec):
        return _tao6_test_pipeline(spec.tao6)
    return copy.deepcopy(skeleton()['test_pipeline'])


def _tao6_tta_pipeline(spec) -> List[dict]:
    test = _tao6_test_pipeline(spec)
    return [test[0], dict(type='TestTimeAug', transforms=[[t] for t in test[1:]])]


def _tao6_optimizer(optim) -> dict:
    """TAO 6's optimizers: AdamW (betas 0.9, 0.999), Adam, SGD with momentum."""
    if optim.optim == 'sgd':
        return dict(type='SGD', lr=optim.lr, momentum=optim.momentum,
                    weight_decay=optim.weight_decay)
    return dict(type='AdamW' if optim.optim == 'adamw' else 'Adam', lr=optim.lr,
                betas=(0.9, 0.999), weight_decay=optim.weight_decay)


def _tao6_schedulers(spec) -> List[dict]:
    """TAO 6's schedules. ``linear`` (per iteration): factor 1e-6 + (1 - 1e-6) * i / w for
    i < w = total // 100, then 1 - (i - w) / (T + 1) for the T = total - w others. mmengine's
    LinearLR reaches ``end_factor`` at step ``end - 1``, so the warm-up ends at w + 1 (factor 1
    at i = w, where the decay starts) and the decay ends at 2 / (T + 1) at i = total - 1.
    ``step``: x0.1 every num_epochs // 3 epochs."""
    total = spec.train.max_iters
    if spec.tao6.train.optim.policy == 'step':
        epochs = max(1, spec.tao6.train.num_epochs // 3)
        return [dict(type='StepLR', step_size=epochs * (spec.iters_per_epoch or 1), gamma=0.1,
                     by_epoch=False, begin=0, end=total)]
    warm = total // 100
    out = [dict(type='LinearLR', start_factor=1e-6, end_factor=1.0, by_epoch=False, begin=0,
                end=warm + 1)] if warm else []
    rest = total - warm
    return out + [dict(type='LinearLR', start_factor=1.0, end_factor=2.0 / (rest + 1),
                       by_epoch=False, begin=warm, end=total)]


# Settings only TAO 6/7 specs have, read from the TAO 6 spec (``tao6.*``) after MAPPING.
MAPPING_TAO6: List[Rule] = [
    R('train_pipeline', ('tao6.dataset.segment.augmentation', 'tao6.dataset.segment.img_size',
                         'tao6.dataset.segment.palette',
                         'tao6.dataset.segment.label_transform'),
      Whole(lambda s: _tao6_train_pipeline(s.tao6)),
      "TAO 6's order: resize to img_size square, flips (each its own probability), "
      'rotation by an angle of angle_list, scale + random crop, blur, colour jitter; masks '
      'decoded as TAO 6 does (label_transform norm: value // 255; colours matched to '
      'label_id; unmatched colours class 0; label_id 255 ignored); images and masks paired '
      'by sorted file order'),
    R('test_pipeline', ('tao6.dataset.segment.img_size', ), Whole(
        lambda s: _tao6_test_pipeline(s.tao6)),
      'resize image and mask to img_size square; metrics and predictions at that size, as '
      'TAO 6'),
    R('tta_pipeline', ('tao6.dataset.segment.img_size', ),
      Whole(lambda s: _tao6_tta_pipeline(s.tao6)),
      'tools/test.py --tta: the test pipeline (TAO 6 has no test-time augmentation)'),
    R('model.decode_head.num_classes', ('tao6.dataset.segment.num_classes', ), lambda n: n,
      'label_ids 0..num_classes-1 of the palette are the classes'),
    R('optim_wrapper.optimizer', ('tao6.train.optim.optim', 'tao6.train.optim.lr',
                                  'tao6.train.optim.momentum',
                                  'tao6.train.optim.weight_decay'),
      Whole(lambda s: _tao6_optimizer(s.tao6.train.optim)),
      'adamw (betas 0.9, 0.999), adam, or sgd with momentum'),
    R('optim_wrapper.constructor', ('tao6.train.optim.optim', ),
      lambda _: 'TAO6OptimWrapperConstructor',
      "TAO 6's parameter groups: decode head at 10x lr; no weight decay for biases, norms, "
      'layer scales, tokens (TAO 6\'s name substrings)'),
    R('optim_wrapper.paramwise_cfg', ('tao6.model.backbone.freeze_backbone', ),
      lambda f: dict(freeze_backbone=f), 'freeze_backbone: the backbone gets no gradient'),
    R('param_scheduler', ('tao6.train.optim.policy', 'tao6.train.num_epochs'),
      Whole(_tao6_schedulers),
      'linear: LinearLR warm-up from 1e-6 over 1% of the iterations, then linear decay '
      "exactly as TAO 6's lambda; step: StepLR x0.1 every num_epochs // 3 epochs"),
    R('default_hooks.checkpoint.latest_name', ('tao6.train.checkpoint_interval', ),
      lambda _: 'segformer_model_latest.pth',
      "also <train results>/segformer_model_latest.pth, the newest checkpoint, which TAO 6's "
      'specs point evaluate, inference and export at'),
    R('load_from', ('tao6.train.resume_training_checkpoint_path',
                    'tao6.train.pretrained_model_path'), lambda r, p: r or p,
      'resume from resume_training_checkpoint_path, else start from the whole-model '
      'weights of pretrained_model_path'),
]
# How TAO 6/7 keys reach the config through TAO 5's keys (documentation of from_tao6).
TAO6_TO_TAO5: List[Tuple[str, str]] = [
    ('model.backbone.type', 'model.backbone.type'),
    ('model.backbone.pretrained_backbone_path', 'model.pretrained_model_path'),
    ('model.decode_head.decoder_params.embed_dim',
     'model.decode_head.decoder_params.embed_dim'),
    ('model.decode_head.align_corners', 'model.decode_head.align_corners'),
    ('dataset.segment.img_size', 'model.input_height, model.input_width'),
    ('dataset.segment.root_dir, *_split', 'dataset.data_root, dataset.*_dataset.img_dir / '
     'ann_dir (images/<split>, masks/<split>; inference: predict_split)'),
    ('dataset.segment.palette', 'dataset.palette (label_id as class id, 255 dropped)'),
    ('dataset.segment.augmentation.mean, std',
     'dataset.img_norm_cfg.mean, std (0-1 scale x 255), to_rgb true'),
    ('dataset.segment.batch_size, workers, shuffle',
     'dataset.batch_size, workers_per_gpu, shuffle'),
    ('train.num_epochs', 'train.max_iters = num_epochs x ceil(ceil(images / processes) / '
     'batch_size) (printed)'),
    ('train.checkpoint_interval, checkpoint_interval_unit',
     'train.checkpoint_interval (epochs x iterations per epoch, or steps)'),
    ('train.validation_interval', 'train.validation_interval (epochs x iterations per '
     'epoch); train.validate true'),
    ('train.seed, cudnn.deterministic, cudnn.benchmark',
     'train.exp_config.manual_seed, deterministic, env_cfg.cudnn_benchmark'),
    ('train.sync_batchnorm', "model.decode_head.norm_cfg.type ('SyncBN' / 'BN')"),
    ('train.num_gpus, gpu_ids, results_dir, resume_training_checkpoint_path',
     'the same keys of train'),
    ('train.optim.lr, weight_decay', 'train.trainer.sf_optim.lr, weight_decay'),
    ('evaluate.*, inference.* (checkpoint, num_gpus, gpu_ids, results_dir, batch_size)',
     'the same keys (batch_size -1: 1)'),
    ('export.* (checkpoint, onnx_file, input_*, opset_version, batch_size, results_dir)',
     "the same keys; export.format 'tao6' (TAO 6's contract)"),
]
IGNORED_TAO6: List[Ignored] = [
    Ignored('model_name', 'the model is named by model.backbone.type'),
    Ignored('encryption_key', 'checkpoints are plain .pth files'),
    Ignored('wandb', 'logs go to the work dir (add a WandbVisBackend to the config)'),
    Ignored('model.backbone.feat_downsample', "the backbones return TAO's feature maps as "
            'they are'),
    Ignored('model.decode_head.in_channels', "taken from the backbone, as TAO's own table "
            'does'),
    Ignored('model.decode_head.in_index', 'every backbone level feeds the head'),
    Ignored('model.decode_head.feature_strides', 'fixed by the backbone'),
    Ignored('dataset.segment.quant_calibration_dataset', 'quantisation is out of scope'),
    Ignored('train.num_nodes', 'one machine per run (several GPUs of it)'),
    Ignored('train.segment.weights', 'TAO 6 stores these and never uses them'),
    Ignored('train.optim.monitor_name', 'checkpoints are kept by interval'),
    Ignored('train.tensorboard', 'logs go to the work dir (add a TensorboardVisBackend to '
            'the config)'),
    Ignored('train.use_distributed_sampler', 'mmengine shards data across processes'),
    Ignored('train.checkpointer', 'checkpoints are written by AtomicCheckpointHook'),
    Ignored('train.enable_lr_monitor', 'the learning rate is always logged'),
    Ignored('evaluate.num_nodes', 'one machine per run'),
    Ignored('evaluate.trt_engine', 'TensorRT engines are out of scope; the checkpoint is '
            'evaluated'),
    Ignored('evaluate.vis_after_n_batches', 'evaluate writes metrics; inference writes '
            'every mask and overlay'),
    Ignored('inference.num_nodes', 'one machine per run'),
    Ignored('inference.trt_engine', 'TensorRT engines are out of scope; the checkpoint is '
            'run'),
    Ignored('inference.vis_after_n_batches', 'every image gets a mask and an overlay'),
    Ignored('export.gpu_id', 'the export runs on the CPU'),
    Ignored('export.on_cpu', 'the export runs on the CPU'),
    Ignored('export.serialize_nvdsinfer', 'the DeepStream nvinfer config is always written '
            'beside the ONNX file'),
    Ignored('gen_trt_engine', 'TensorRT engines are out of scope (use trtexec on the ONNX '
            'file)'),
    Ignored('quantize', 'quantisation is out of scope'),
]


IGNORED: List[Ignored] = [
    Ignored('model.backbone.init_cfg', 'pretrained weights come from '
            'model.pretrained_model_path'),
    Ignored('model.backbone.feat_downsample', 'the backbones return TAO\'s feature maps as '
            'they are'),
    Ignored('model.decode_head.in_channels', 'taken from the backbone, as TAO\'s own table '
            'does'),
    Ignored('model.decode_head.in_index', 'every backbone level feeds the head'),
    Ignored('model.decode_head.feature_strides', 'fixed by the backbone'),
    Ignored('model.decode_head.num_classes', 'the number of classes comes from the palette'),
    Ignored('dataset.seg_class_default', 'mask values outside the palette follow '
            'dataset.unknown_label'),
    Ignored('dataset.reduce_zero_label', 'map classes with the palette (label_id -> '
            'mapping_class) instead'),
    Ignored('dataset.train_dataset.pipeline.multi_scale', 'TAO reads the test dataset\'s '
            'multi_scale only'),
    Ignored('dataset.val_dataset.pipeline.multi_scale', 'validation runs the test pipeline '
            '(test_dataset.pipeline.multi_scale)'),
    Ignored('train.exp_config.distributed', 'processes follow train.num_gpus / gpu_ids'),
    Ignored('train.exp_config.MASTER_ADDR', 'processes of one machine use 127.0.0.1'),
    Ignored('train.exp_config.MASTER_PORT', 'a free port is chosen for each launch'),
    Ignored('train.exp_config.env_cfg.mp_cfg', 'dataloader workers fork; OpenCV threads off'),
    Ignored('train.exp_config.env_cfg.dist_cfg', 'NCCL on GPUs, gloo on CPU'),
    Ignored('train.num_nodes', 'one machine per run (several GPUs of it)'),
    Ignored('train.param_scheduler', 'the schedule comes from train.trainer.lr_config and '
            'train.max_iters'),
    Ignored('train.default_hooks', 'hooks come from the train section\'s intervals'),
    Ignored('train.encryption_key', 'checkpoints are plain .pth files'),
    Ignored('encryption_key', 'checkpoints are plain .pth files'),
    Ignored('evaluate.trt_engine', 'TensorRT engines are out of scope; the checkpoint is '
            'evaluated'),
    Ignored('inference.trt_engine', 'TensorRT engines are out of scope; the checkpoint is '
            'run'),
    Ignored('export.simplify', 'onnx-simplifier is not run'),
    Ignored('export.verbose', 'the exporter runs quietly'),
    Ignored('export.trt_engine', 'TensorRT engines are out of scope'),
    Ignored('export.trt_config', 'TensorRT engines are out of scope'),
    Ignored('export.onnx_config', 'the ONNX settings come from the export section'),
    Ignored('export.codebase_config', 'the mmdeploy codebase settings are fixed'),
    Ignored('gen_trt_engine', 'TensorRT engines are out of scope (use trtexec on the ONNX '
            'file)'),
]


TASK_SECTIONS = ('train', 'evaluate', 'inference', 'export', 'gen_trt_engine')


def ignored_settings(spec: ExperimentSpec, task: Optional[str] = None) -> List[str]:
    """The :data:`IGNORED` fields (:data:`IGNORED_TAO6` for a TAO 6/7 spec) that ``spec``
    sets to something other than TAO's default (for ``task``: leaving out the other tasks'
    sections)."""
    from .tao6_schema import Tao6Spec
    tao6 = _tao6(spec)
    spec, default, rows = ((tao6, Tao6Spec(), IGNORED_TAO6) if tao6 is not None
                           else (spec, ExperimentSpec(), IGNORED))
    out = []
    for row in rows:
        section = row.source.split('.')[0]
        if task is not None and section in TASK_SECTIONS and section != task:
            continue
        value = get_path(spec, row.source)
        if value != get_path(default, row.source):
            shown = 'set' if dataclasses.is_dataclass(value) else f'{value!r}'
            out.append(f'{row.source} ({shown}) is ignored: {row.why}')
    return out


def skeleton() -> Dict[str, Any]:
    """The config's fixed structure; :data:`MAPPING` fills in the values."""
    return dict(
        default_scope='mmseg',
        env_cfg=dict(cudnn_benchmark=True,
                     mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
                     dist_cfg=dict(backend='nccl')),
        randomness=dict(seed=None, deterministic=False),
        log_level='INFO',
        work_dir=None,
        crop_size=None,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=None, std=None,
                               bgr_to_rgb=True, pad_val=0, seg_pad_val=IGNORE_INDEX,
                               size=None),
        model=dict(
            type='TAOEncoderDecoder',
            data_preprocessor=Ref('data_preprocessor'),
            backbone=dict(type=None, init_cfg=None),
            decode_head=dict(
                type='TAOSegFormerHead', embed_dim=None, num_classes=None,
                dropout_ratio=None, align_corners=False,
                norm_cfg=dict(type='BN', requires_grad=True), ignore_index=IGNORE_INDEX,
                loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                 loss_weight=1.0)),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')),
        sync_bn=None,
        train_pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadTAOAnnotations'),
            dict(type='RandomResize', scale=None, ratio_range=None, keep_ratio=True),
            dict(type='RandomCrop', crop_size=None, cat_max_ratio=None),
            dict(type='RandomFlip', prob=None),
            dict(type='PhotoMetricDistortion'),
            dict(type='PackSegInputs'),
        ],
        test_pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=None, keep_ratio=True),
            dict(type='LoadTAOAnnotations'),
            dict(type='PackSegInputs'),
        ],
        tta_model=dict(type='SegTTAModel'),
        tta_pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='TestTimeAug', transforms=[
                [dict(type='Resize', scale=None, keep_ratio=True)],
                [dict(type='RandomFlip', prob=0.0, direction='horizontal')],
                [dict(type='LoadTAOAnnotations')],
                [dict(type='PackSegInputs')]]),
        ],
        tao_palette=None,
        tao_metainfo=None,
        train_dataloader=None,
        val_dataloader=None,
        test_dataloader=None,
        val_evaluator=None,
        test_evaluator=None,
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=None, betas=None, weight_decay=None),
            paramwise_cfg=dict(custom_keys=None),
            clip_grad=None),
        param_scheduler=None,
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=None, val_interval=None),
        val_cfg=None,
        test_cfg=None,
        default_hooks=dict(
            runtime_info=dict(type='DeferredRuntimeInfoHook'),
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=None, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=None,
                            max_keep_ckpts=-1),
            sampler_seed=dict(type='DistSamplerSeedHook'),
            visualization=dict(type='SegVisualizationHook')),
        custom_hooks=[dict(type='TAOStatusLoggerHook', interval=None),
                      dict(type='ExperimentRecordHook')],
        log_processor=dict(by_epoch=False),
        vis_backends=[dict(type='LocalVisBackend')],
        visualizer=dict(type='SegLocalVisualizer', vis_backends=Ref('vis_backends'),
                        name='visualizer'),
        find_unused_parameters=None,
        load_from=None,
        resume=False,
    )


def _set(cfg: dict, path: str, value) -> None:
    """``cfg[path] = value``; ``[N]`` indexes a list, ``[Type]`` is the list's step of that
    ``type`` (pipeline steps are addressed by what they are, not where they are)."""
    node, parts = cfg, path.replace('[', '.[').split('.')
    for i, part in enumerate(parts):
        key: Any = part
        if part.startswith('['):
            inner = part[1:-1]
            key = int(inner) if inner.isdigit() else next(
                j for j, step in enumerate(node) if step.get('type') == inner)
        if i == len(parts) - 1:
            node[key] = value
        else:
            node = node[key]


def recorded_spec(spec: ExperimentSpec) -> Dict[str, Any]:
    """The resolved spec as data, in the user's own form (a TAO 6/7 spec as TAO 6)."""
    tao6 = _tao6(spec)
    return dataclasses.asdict(tao6 if tao6 is not None else spec)


def spec_to_config(spec: ExperimentSpec, resolve: bool = True) -> Dict[str, Any]:
    """The mmengine config (a plain dict) for a validated spec.

    Args:
        spec: A validated spec.
        resolve: Replace :class:`Ref` entries (e.g. the pipeline inside each dataset) by
            copies of what they name; False keeps them, for writing a config file in which
            they become references to the top-level variables.
    """
    cfg = skeleton()
    for rule in MAPPING + (MAPPING_TAO6 if _tao6(spec) else []):
        if isinstance(rule.convert, Whole):
            value = rule.convert.fn(spec)
        else:
            value = rule.convert(*(get_path(spec, p) for p in rule.sources))
        _set(cfg, rule.target, value)
    if resolve:
        cfg = resolve_refs(cfg, cfg)
    cfg['custom_imports'] = dict(imports=['mmseg_tao'], allow_failed_imports=False)
    # The resolved spec, as data, for ExperimentRecordHook and the TAO-style command.
    cfg['tao_spec'] = recorded_spec(spec)
    return cfg


def spec_warnings(spec: ExperimentSpec, task: Optional[str] = None) -> List[str]:
    """Legal settings that probably do not do what the user wants, and accepted fields
    that are set but have no effect here (for ``task``, or any)."""
    out = ignored_settings(spec, task)
    if _tao6(spec):
        return out
    times = spec.dataset.repeat_data_times
    if times > ExperimentSpec().dataset.repeat_data_times and task in (None, 'train'):
        out.append(f'dataset.repeat_data_times ({times}) changes nothing in iteration-based '
                   'training (as in TAO): each image is drawn equally often either way; '
                   'train longer with train.max_iters')
    if task not in (None, 'train'):
        return out
    lr = spec.train.trainer.lr_config
    if lr.warmup_iters >= spec.train.max_iters:
        out.append(f'train.trainer.lr_config.warmup_iters ({lr.warmup_iters}) >= '
                   f'train.max_iters ({spec.train.max_iters}): the whole run is warm-up, the '
                   'learning rate never reaches train.trainer.sf_optim.lr nor decays')
    if spec.train.validate and spec.train.validation_interval and \
            spec.train.validation_interval > spec.train.max_iters:
        out.append(f'train.validation_interval ({spec.train.validation_interval}) > '
                   f'train.max_iters ({spec.train.max_iters}): validation never runs')
    return out


def ignored_table() -> List[Tuple[str, str]]:
    """(spec path, why) rows of the accepted fields without effect."""
    return [(row.source, row.why) for row in IGNORED]


def ignored_table_tao6() -> List[Tuple[str, str]]:
    """(TAO 6 spec path, why) rows of the accepted TAO 6/7 fields without effect."""
    return [(row.source, row.why) for row in IGNORED_TAO6]


def mapping_table(rules: Optional[List[Rule]] = None) -> List[Tuple[str, str, str]]:
    """(config path, spec paths, rule) rows for the documentation (default: MAPPING)."""
    rows = []
    for rule in MAPPING if rules is None else rules:
        rows.append((rule.target, ', '.join(rule.sources), rule.note or 'copied'))
    return rows
