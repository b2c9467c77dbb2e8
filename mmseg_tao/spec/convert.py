"""Convert experiment specs between TAO 5.x's form and TAO 6.x / 7.x's form.

Each direction writes only what differs from the target form's defaults and lists every
setting that has no counterpart there (:class:`Conversion`). What the two forms share is
the experiment; what one has and the other lacks is reported, never dropped silently.
"""
import copy
import dataclasses
import math
import os.path as osp
from typing import Any, Dict, List, NamedTuple, Tuple

from .schema import ExperimentSpec
from .tao6 import Tao6Experiment, count_images
from .tao6_schema import Tao6PaletteEntry, Tao6Spec

# TAO 6 settings with no TAO 5 counterpart (path, what TAO 5 does instead); reported when
# they differ from TAO 6's defaults, or always when TAO 6's behaviour itself differs.
TAO6_ONLY: List[Tuple[str, str]] = [
    ('dataset.segment.augmentation', "TAO 5's pipeline is resize (ratio_range) -> random "
     'crop -> horizontal flip -> photometric distortion; rotation, vertical flip, blur and '
     'resized crops have no TAO 5 key'),
    ('dataset.segment.label_transform', 'TAO 5 reads masks as label_id values (grayscale: '
     'value / 255 > 0.5)'),
    ('dataset.segment.predict_split', 'TAO 5 segments dataset.test_dataset.img_dir'),
    ('train.optim.optim', 'TAO 5 trains with AdamW only'),
    ('train.optim.policy', 'TAO 5 uses warm-up + poly decay (train.trainer.lr_config)'),
    ('train.optim.momentum', 'TAO 5 trains with AdamW only'),
    ('train.checkpoint_interval_unit', 'TAO 5 counts iterations'),
    ('train.pretrained_model_path', 'TAO 5 starts from model.pretrained_model_path '
     '(backbone weights) or resumes'),
    ('model.backbone.freeze_backbone', 'TAO 5 has no frozen-backbone switch'),
]
# TAO 5 settings with no TAO 6 counterpart.
TAO5_ONLY: List[Tuple[str, str]] = [
    ('train.trainer.lr_config', 'TAO 6: policy linear (1% warm-up, linear decay) or step'),
    ('train.trainer.sf_optim.paramwise_cfg', 'TAO 6 fixes its parameter groups (head 10x '
     'lr, no decay for norms and biases)'),
    ('train.trainer.sf_optim.betas', 'TAO 6 fixes AdamW betas (0.9, 0.999)'),
    ('train.trainer.grad_clip', 'TAO 6 does not clip gradients'),
    ('train.logging_interval', 'TAO 6 logs every step'),
    ('train.max_keep_ckpts', 'TAO 6 keeps every checkpoint'),
    ('train.amp', 'TAO 6 trains in fp32'),
    ('model.test_cfg', 'TAO 6 evaluates whole images at img_size'),
    ('dataset.train_dataset.pipeline', "TAO 6's augmentation block differs (see "
     'dataset.segment.augmentation)'),
    ('dataset.test_dataset.pipeline', 'TAO 6 resizes test images to img_size'),
    ('dataset.repeat_data_times', 'TAO 6 counts epochs'),
    ('dataset.input_type', 'TAO 6 matches mask colours (see label_transform)'),
    ('dataset.img_norm_cfg.to_rgb', 'TAO 6 always feeds RGB'),
    ('evaluate.precision', 'TAO 6 evaluates in fp32'),
    ('inference.precision', 'TAO 6 runs in fp32'),
    ('inference.mode', 'TAO 6 resizes to img_size'),
    ('export.output', "TAO 6 exports float logits at 1/4 resolution (export.format 'tao6')"),
]


class Conversion(NamedTuple):
    """A converted spec (plain data, ready for YAML) and what has no counterpart."""
    data: Dict[str, Any]
    lost: List[str]


def _minimal(value, default) -> Any:
    """``value`` without the entries equal to ``default`` (dataclasses as dicts)."""
    if dataclasses.is_dataclass(value) and dataclasses.is_dataclass(default) and \
            type(value) is type(default):
        out = {}
        for f in dataclasses.fields(value):
            a, b = getattr(value, f.name), getattr(default, f.name)
            if a == b:
                continue
            sub = _minimal(a, b)
            if sub != {}:
                out[f.name] = sub
        return out
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    return value


def _get(obj, path: str):
    for part in path.split('.'):
        obj = getattr(obj, part)
    return obj


def _differs(spec, default, path: str) -> bool:
    return _get(spec, path) != _get(default, path)


def to_tao5(spec: Tao6Experiment) -> Conversion:
    """The TAO 5 form of a loaded TAO 6/7 spec (:func:`~mmseg_tao.spec.load_spec` made it,
    so epochs are already iterations)."""
    base = copy.deepcopy(ExperimentSpec(**{f.name: getattr(spec, f.name)
                                           for f in dataclasses.fields(ExperimentSpec)}))
    tao6, default6 = spec.tao6, Tao6Spec()
    norm = tao6.dataset.segment.label_transform == 'norm'
    if norm:  # 0/255 masks matched as 0/1 are TAO 5's grayscale binarisation
        base.dataset.input_type = 'grayscale'
        for e in base.dataset.palette:
            e.rgb = [255 * min(v, 1) for v in e.rgb]
    data = _minimal(base, ExperimentSpec())
    lost = [f'{path}: {why}' for path, why in TAO6_ONLY
            if path in ('dataset.segment.augmentation', 'dataset.segment.label_transform')
            or _differs(tao6, default6, path)]
    if tao6.train.optim.policy == 'linear':
        lost.append('train.optim.policy linear: written as TAO 5 warm-up (1% of the '
                    'iterations) + poly decay with power 1, which ends at 0 where TAO 6 '
                    'ends one step earlier')
    if norm:
        lost.append('dataset.segment.label_transform norm: written as TAO 5 input_type '
                    'grayscale (0/255 masks, value / 255 > 0.5) with the palette colours '
                    'x255; TAO 5 reads masks by label_id, so check that label_ids 0/1 are '
                    'the mask values 0/255')
    lost.append('pairing: TAO 6 pairs images and masks by sorted order, TAO 5 by file name')
    if data.get('export', {}).pop('format', None):
        lost.append("export: TAO 6's contract (float logits at 1/4 resolution) is mmseg-tao's "
                    "export.format 'tao6', not a TAO 5 key; TAO 5 exports the argmax")
    return Conversion(data, lost)


def _split_root(img_dir, ann_dir) -> Tuple[str, str]:
    """(root, split) when ``img_dir`` is ``root/images/split`` and ``ann_dir`` is
    ``root/masks/split``; else ('', '')."""
    if isinstance(img_dir, list) and isinstance(ann_dir, list) and len(img_dir) == 1 == \
            len(ann_dir):
        img_dir, ann_dir = img_dir[0], ann_dir[0]
    if not isinstance(img_dir, str) or not isinstance(ann_dir, str):
        return '', ''
    img = osp.normpath(img_dir).split(osp.sep)
    ann = osp.normpath(ann_dir).split(osp.sep)
    if len(img) >= 2 and img[-2] == 'images' and ann[-2:] == ['masks', img[-1]] and \
            img[:-2] == ann[:-2]:
        return osp.join(*img[:-2]) if len(img) > 2 else '.', img[-1]
    return '', ''


def to_tao6(spec: ExperimentSpec) -> Conversion:
    """The TAO 6/7 form of a loaded TAO 5 spec."""
    out, lost = Tao6Spec(), []
    default5 = ExperimentSpec()
    out.results_dir = spec.results_dir or ''
    b = out.model.backbone
    b.type = spec.model.backbone.type
    b.feat_downsample = spec.model.backbone.feat_downsample
    b.pretrained_backbone_path = spec.model.pretrained_model_path
    h = out.model.decode_head
    h.decoder_params.embed_dim = spec.model.decode_head.decoder_params.embed_dim
    h.align_corners = spec.model.decode_head.align_corners

    d, seg = spec.dataset, out.dataset.segment
    if spec.model.input_height != spec.model.input_width:
        lost.append(f'model.input_height/width {spec.model.input_height}x'
                    f'{spec.model.input_width}: TAO 6 has one square img_size (the height '
                    'is used)')
    seg.img_size = spec.model.input_height
    splits = {}
    for name, key in (('train', 'train_split'), ('val', 'validation_split'),
                      ('test', 'test_split')):
        s = getattr(d, f'{name}_dataset')
        root, split = _split_root(s.img_dir, s.ann_dir)
        if s.img_dir and not root:
            lost.append(f'dataset.{name}_dataset.img_dir/ann_dir ({s.img_dir}, {s.ann_dir}): '
                        'TAO 6 reads <root_dir>/images/<split> and <root_dir>/masks/<split>')
        if root:
            splits[key] = (osp.join(d.data_root, root) if d.data_root else root, split)
    roots = {r for r, _ in splits.values()}
    if len(roots) > 1:
        lost.append(f'dataset splits under several roots {sorted(roots)}: TAO 6 has one '
                    'root_dir (the training one is used)')
    if splits:
        seg.root_dir = osp.normpath(
            splits.get('train_split', next(iter(splits.values())))[0])
        for key, (_, split) in splits.items():
            setattr(seg, key, split)
        seg.predict_split = seg.test_split
    grayscale = d.input_type == 'grayscale'
    seg.label_transform = 'norm' if grayscale else None
    seg.palette = [Tao6PaletteEntry(
        label_id=e.label_id, mapping_class=e.mapping_class,
        rgb=[min(e.label_id, 1)] * 3 if grayscale else list(e.rgb), seg_class=e.seg_class)
        for e in d.palette or []]
    if grayscale:
        lost.append('dataset.input_type grayscale: written as label_transform norm with '
                    'rgb [0,0,0]/[1,1,1] (0/255 masks)')
    else:
        lost.append('dataset.palette: TAO 6 matches mask colours (rgb); masks that hold '
                    'label_id values need rgb [id, id, id]')
    seg.num_classes = len({e.mapping_class for e in d.palette or []}) or seg.num_classes
    seg.batch_size, seg.workers, seg.shuffle = d.batch_size, d.workers_per_gpu, d.shuffle
    seg.augmentation.mean = [round(v / 255, 6) for v in d.img_norm_cfg.mean]
    seg.augmentation.std = [round(v / 255, 6) for v in d.img_norm_cfg.std]

    t5, t = spec.train, out.train
    t.num_gpus, t.gpu_ids, t.num_nodes = t5.num_gpus, list(t5.gpu_ids), t5.num_nodes
    t.seed = t5.exp_config.manual_seed if t5.exp_config.manual_seed is not None else t.seed
    t.cudnn.deterministic = t5.exp_config.deterministic
    t.cudnn.benchmark = t5.exp_config.env_cfg.cudnn_benchmark
    t.results_dir = t5.results_dir
    t.resume_training_checkpoint_path = t5.resume_training_checkpoint_path
    t.optim.lr = t5.trainer.sf_optim.lr
    t.optim.weight_decay = t5.trainer.sf_optim.weight_decay
    t.sync_batchnorm = spec.model.decode_head.norm_cfg.type == 'SyncBN'
    t.checkpoint_interval_unit = 'step'
    t.checkpoint_interval = t5.checkpoint_interval
    images = count_images(seg.root_dir, seg.train_split) if seg.root_dir else 0
    if images and seg.batch_size > 0:
        per_epoch = math.ceil(math.ceil(images / max(t5.num_gpus, len(t5.gpu_ids))) /
                              seg.batch_size)
        t.num_epochs = max(1, math.ceil(t5.max_iters / per_epoch))
        t.validation_interval = max(1, round((t5.validation_interval or t5.max_iters) /
                                             per_epoch))
        if t.num_epochs * per_epoch != t5.max_iters:
            lost.append(f'train.max_iters {t5.max_iters}: TAO 6 counts epochs of '
                        f'{per_epoch} iterations; {t.num_epochs} epochs = '
                        f'{t.num_epochs * per_epoch} iterations')
    else:
        lost.append(f'train.max_iters {t5.max_iters}: TAO 6 counts epochs; the training '
                    'images were not found to convert (train.num_epochs left at its default)')

    for name in ('evaluate', 'inference'):
        src, dst = getattr(spec, name), getattr(out, name)
        dst.checkpoint, dst.results_dir = src.checkpoint, src.results_dir
        dst.num_gpus, dst.gpu_ids = src.num_gpus, list(src.gpu_ids)
        dst.batch_size = src.batch_size or -1
    e5, e = spec.export, out.export
    e.checkpoint, e.onnx_file, e.results_dir = e5.checkpoint, e5.onnx_file, e5.results_dir
    e.input_channel, e.input_width, e.input_height = (e5.input_channel, e5.input_width,
                                                      e5.input_height)
    e.opset_version, e.batch_size, e.verbose = e5.opset_version, e5.batch_size, e5.verbose
    if e5.format != 'tao6':
        lost.append("export: TAO 6 exports float logits at 1/4 resolution, not TAO 5's "
                    'argmax (DeepStream parser NvDsInferParseCustomSegformerTAO2)')
    lost += [f'{path}: {why}' for path, why in TAO5_ONLY if _differs(spec, default5, path)]
    return Conversion(_minimal(out, Tao6Spec()), lost)
