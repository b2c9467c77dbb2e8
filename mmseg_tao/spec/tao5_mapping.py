"""TAO 5 spec -> config: the rules (:data:`MAPPING`) and the values they compute.

Where TAO 5.x is broken the rule says so and does better: every train directory is used,
the palette's label map is applied (by the dataset), PolyLR ends at ``max_iters``,
``validate: false`` disables validation cleanly, ``pretrained_model_path`` is loaded, AMP is
a choice and SyncBN is used only when several GPU processes train.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from . import dataloaders as data
from .gpus import num_processes
from .rules import Rule, Whole, rule_rows
from .schema import ExperimentSpec


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
    """``<task>.results_dir``, else ``<results_dir>/<task>``, else ``work_dirs/<task>``."""
    sub = getattr(spec, task).results_dir
    if sub:
        return sub
    return osp.join(spec.results_dir, task) if spec.results_dir else osp.join('work_dirs', task)


# mmengine cannot chain from a factor of 0 (LinearLR divides by it): the smallest start.
_MIN_WARMUP_RATIO = 1e-12


def _schedulers(spec: ExperimentSpec) -> List[dict]:
    """TAO 5's poly schedule with linear warm-up, per iteration, as mmcv 1.x ran it
    (TAO 5.0 - 5.3, ``LrUpdaterHook``): at iteration i < T = max_iters the rate is
    ``poly(i) = (lr - min_lr) * (1 - i / T) ** power + min_lr`` and, while i < w =
    warmup_iters, ``poly(i) * (1 - (1 - i / w) * (1 - warmup_ratio))``.

    mmengine's schedulers multiply the same rate step by step: PolyLR over T + 1 steps has
    the factor ``(1 - i / T) ** power`` at step i (it reaches its end at step ``end - 1``),
    and LinearLR from warmup_ratio over w + 1 steps reaches 1 at i = w. (TAO 5.5 writes
    ``LinearLR(end=w)``, which for w = 1 never steps: the rate stays warmup_ratio x lr and
    PolyLR decays from there.) Exact with ``min_lr`` 0, TAO's default; with ``min_lr`` > 0
    the warm-up's steps scale ``min_lr`` too, which moves the rate by about
    ``min_lr * power * w * ln(w) / T`` at most (chained schedulers cannot add a constant).
    """
    lr, total = spec.train.trainer.lr_config, spec.train.max_iters
    out = []
    if lr.warmup_iters > 0:
        out.append(dict(type='LinearLR', start_factor=max(lr.warmup_ratio, _MIN_WARMUP_RATIO),
                        end_factor=1.0, by_epoch=False, begin=0, end=lr.warmup_iters + 1))
    out.append(dict(type='PolyLR', eta_min=lr.min_lr, power=lr.power, by_epoch=False,
                    begin=0, end=total + 1))
    return out


def _pretrained(path: Optional[str]) -> Optional[dict]:
    return dict(type='Pretrained', checkpoint=path) if path else None


def _custom_keys(pw) -> dict:
    return {k: dict(lr_mult=getattr(pw, k).lr_mult, decay_mult=getattr(pw, k).decay_mult)
            for k in ('pos_block', 'norm', 'head')}


def _sync_bn(spec: ExperimentSpec) -> Optional[str]:
    several = num_processes(spec) > 1
    return 'torch' if spec.model.decode_head.norm_cfg.type == 'SyncBN' and several else None


def _pair(h: int, w: int) -> Tuple[int, int]:
    return (h, w)


AUG = 'dataset.train_dataset.pipeline.augmentation_config'
TEST_RESIZE = 'dataset.test_dataset.pipeline.augmentation_config.resize'
R = Rule
MAPPING: List[Rule] = [
    # ---- environment
    R('randomness.seed', 'train.exp_config.manual_seed'),
    R('custom_hooks[TAODeterminismHook].deterministic', 'train.exp_config.deterministic',
      note="TAO 7.0.1's deterministic mode (TAODeterminismHook, when training starts): "
      'cudnn.deterministic, torch.use_deterministic_algorithms(True, warn_only=True), '
      'CUBLAS_WORKSPACE_CONFIG :4096:8 unless set, the math attention kernel; not '
      "mmengine's randomness.deterministic, torch's strict mode, with which bilinear "
      "upsampling's backward raises on CUDA at the first step (TAO 5.5 uses it)"),
    R('env_cfg.cudnn_benchmark', 'train.exp_config.env_cfg.cudnn_benchmark',
      note='cuDNN autotuning of convolution algorithms'),
    R('log_level', 'train.exp_config.log_level'),
    R('work_dir', ('train.results_dir', 'results_dir'), Whole(lambda s: results_dir(s, 'train')),
      'train.results_dir, else <results_dir>/train'),
    # ---- model
    R('crop_size', ('model.input_height', 'model.input_width'), _pair,
      'the model input (H, W): training crop and batch padding size'),
    R('data_preprocessor.mean', 'dataset.img_norm_cfg.mean'),
    R('data_preprocessor.std', 'dataset.img_norm_cfg.std'),
    R('data_preprocessor.bgr_to_rgb', 'dataset.img_norm_cfg.to_rgb'),
    R('data_preprocessor.pad_val', 'dataset.img_norm_cfg.pad_val',
      note='TAO 5.x pads with img_norm_cfg values; pipeline.Pad is accepted and unused, as in '
      'TAO'),
    R('data_preprocessor.seg_pad_val', 'dataset.img_norm_cfg.seg_pad_val'),
    R('data_preprocessor.size', ('model.input_height', 'model.input_width'), _pair,
      'batches padded to the model input (H, W)'),
    R('model.backbone.type', 'model.backbone.type',
      note='decode-head in_channels follow from the backbone (TAOEncoderDecoder)'),
    R('model.backbone.init_cfg', 'model.pretrained_model_path', _pretrained,
      'really loaded, in any known layout (TAO never loads it)'),
    R('model.decode_head.embed_dim', 'model.decode_head.decoder_params.embed_dim'),
    R('model.decode_head.dropout_ratio', 'model.decode_head.dropout_ratio'),
    R('model.decode_head.align_corners', 'model.decode_head.align_corners'),
    R('model.decode_head.num_classes', 'dataset.palette', Whole(data.num_classes),
      'number of distinct mapping_class targets of the palette'),
    R('model.decode_head.loss_decode.loss_weight', 'model.decode_head.loss_decode.loss_weight'),
    R('model.decode_head.norm_cfg.requires_grad', 'model.decode_head.norm_cfg.requires_grad'),
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
      (f'{AUG}.resize.img_scale', 'model.input_height', 'model.input_width'),
      Whole(img_scale), 'img_scale, else (min(H, W), 1024 if min(H, W) < 1024 else 2048)'),
    R('train_pipeline[RandomResize].ratio_range', f'{AUG}.resize.ratio_range', tuple,
      'as a tuple (low, high)'),
    R('train_pipeline[RandomResize].keep_ratio', f'{AUG}.resize.keep_ratio'),
    R('train_pipeline[RandomCrop].crop_size',
      (f'{AUG}.random_crop.crop_size', 'model.input_height', 'model.input_width'),
      lambda c, h, w: tuple(c) if c else (h, w), 'crop_size, else the model input size'),
    R('train_pipeline[RandomCrop].cat_max_ratio', f'{AUG}.random_crop.cat_max_ratio'),
    R('train_pipeline[RandomFlip].prob', f'{AUG}.random_flip.prob'),
    R('test_pipeline[Resize].scale',
      ('dataset.test_dataset.pipeline.multi_scale', f'{AUG}.resize.img_scale',
       'model.input_height', 'model.input_width'),
      Whole(test_scale), "val/test resize: test_dataset.pipeline.multi_scale (TAO's "
      'MultiScaleFlipAug scale), else the training img_scale'),
    R('tta_pipeline[TestTimeAug].transforms[0][Resize].scale',
      ('dataset.test_dataset.pipeline.multi_scale', f'{AUG}.resize.img_scale'),
      Whole(test_scale), "tools/test.py --tta: TAO's MultiScaleFlipAug (that one scale, no "
      'flip) as mmseg TestTimeAug + SegTTAModel'),
    R('tta_pipeline[TestTimeAug].transforms[0][Resize].keep_ratio', f'{TEST_RESIZE}.keep_ratio'),
    R('test_pipeline[Resize].keep_ratio', f'{TEST_RESIZE}.keep_ratio'),
    R('tao_palette', 'dataset.palette', Whole(data.palette_entries),
      'the palette, once; every dataset refers to it'),
    R('tao_metainfo', 'dataset.palette', Whole(data.metainfo),
      "mmseg's dataset metainfo (class names and colours by training id), once; every "
      'dataset refers to it, so tools that read a dataset config (mmdeploy, mmseg '
      'analysis tools) find the classes'),
    R('train_dataloader', ('dataset.train_dataset', 'dataset.repeat_data_times',
                           'dataset.batch_size', 'dataset.workers_per_gpu', 'dataset.palette'),
      Whole(data.train_dataloader), 'every img_dir/ann_dir pair (TAO uses the first only); '
      'RepeatDataset with '
      'repeat_data_times (no effect with an infinite sampler, as in TAO; a changed value '
      'is warned about); batch_size per process; every file checked '
      'before training (check_data)'),
    R('val_dataloader', ('dataset.val_dataset', 'train.validate'), Whole(data.val_dataloader),
      'None when train.validate is false (TAO crashes); batch size 1'),
    R('val_evaluator', 'train.validate', lambda v: data.iou_metric() if v else None,
      'TAOIoUMetric (mIoU, per-class IoU / Acc) when validating'),
    R('val_cfg', 'train.validate', lambda v: dict(type='ValLoop') if v else None,
      "dict(type='ValLoop') when validating"),
    R('test_dataloader', ('dataset.test_dataset', 'dataset.val_dataset', 'evaluate.batch_size'),
      Whole(data.test_dataloader),
      'test_dataset, else val_dataset (so tools/test.py works on a training spec); '
      'batch size evaluate.batch_size (default 1; images of different sizes are run in '
      'groups of equal size)'),
    R('test_evaluator', ('dataset.test_dataset', 'dataset.val_dataset'),
      Whole(data.test_evaluator), 'TAOIoUMetric when there is a test dataloader'),
    R('test_cfg', ('dataset.test_dataset', 'dataset.val_dataset'), Whole(data.test_loop),
      "dict(type='TestLoop') when there is a test dataloader"),
    # ---- schedule
    R('train_cfg.max_iters', 'train.max_iters'),
    R('train_cfg.val_interval', ('train.validation_interval', 'train.max_iters'),
      lambda v, m: v or m, 'validation_interval, else max_iters (once, at the end)'),
    R('optim_wrapper.type', 'train.amp',
      lambda a: 'TAOAmpOptimWrapper' if a else 'OptimWrapper',
      'mixed precision only when asked (TAO always uses fp16): bfloat16 on GPUs that have it '
      '(no loss scaling), float16 with dynamic loss scaling on older GPUs, bfloat16 '
      'autocast on the CPU'),
    R('optim_wrapper.optimizer.lr', 'train.trainer.sf_optim.lr'),
    R('optim_wrapper.optimizer.betas', 'train.trainer.sf_optim.betas', tuple,
      'as a tuple (beta1, beta2)'),
    R('optim_wrapper.optimizer.weight_decay', 'train.trainer.sf_optim.weight_decay'),
    R('optim_wrapper.paramwise_cfg.custom_keys', 'train.trainer.sf_optim.paramwise_cfg',
      _custom_keys, 'pos_block, norm, head multipliers'),
    R('optim_wrapper.clip_grad', 'train.trainer.grad_clip',
      lambda g: dict(max_norm=g, norm_type=2) if g else None,
      'gradient-norm clipping when > 0 (TAO ignores grad_clip)'),
    R('param_scheduler', ('train.trainer.lr_config', 'train.max_iters'), Whole(_schedulers),
      "mmcv 1.x's poly schedule with linear warm-up (TAO 5.0 - 5.3), per iteration: PolyLR "
      'from iteration 0 over max_iters + 1 steps (factor (1 - i / max_iters)^power; TAO 5.5: '
      'a fixed end of 160000), times a LinearLR warm-up from warmup_ratio that reaches 1 at '
      'warmup_iters (TAO 5.5\'s LinearLR(end=warmup_iters) never steps for warmup_iters 1 '
      'and keeps the rate at warmup_ratio x lr)'),
    R('default_hooks.checkpoint.interval', 'train.checkpoint_interval'),
    R('default_hooks.checkpoint.max_keep_ckpts', 'train.max_keep_ckpts',
      lambda s: -1 if s is None else s, 'null (every checkpoint kept) is -1'),
    R('default_hooks.logger.interval', 'train.logging_interval'),
    R('custom_hooks[0].interval', 'train.logging_interval',
      note="TAO's status.json (TAOStatusLoggerHook); checkpoints are written atomically "
      '(AtomicCheckpointHook); the resolved spec and class mapping are saved '
      '(ExperimentRecordHook); losses reach the logs without a host-device '
      'synchronisation per iteration (DeferredRuntimeInfoHook); loss, learning rate and '
      'mIoU are drawn into <work_dir>/curves.png when training ends (TrainingCurvesHook)'),
    R('find_unused_parameters', 'train.trainer.find_unused_parameters'),
    R('load_from', 'train.resume_training_checkpoint_path',
      note='resume from this checkpoint (the TAO command also resumes from the newest '
      'complete checkpoint in the results dir: iter_N.pth, or TAO 6/7\'s '
      'model_epoch_E_step_S.pth)'),
    R('resume', ('train.resume_training_checkpoint_path', 'train.resume'),
      lambda p, r: bool(p) or r, 'true when resume_training_checkpoint_path is set, else '
      'train.resume'),
]


def mapping_table(rules: Optional[List[Rule]] = None) -> List[Tuple[str, str, str]]:
    """(config path, spec paths, rule) rows for the documentation (default: MAPPING)."""
    return rule_rows(MAPPING if rules is None else rules)
