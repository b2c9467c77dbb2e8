"""The TAO 5 <-> TAO 6/7 correspondence, declared once.

:data:`LINKS` says which TAO 6/7 keys are which TAO 5 keys and how values convert. It
drives both directions: :func:`~mmseg_tao.spec.tao6.from_tao6` (a TAO 6/7 spec in TAO 5's
form, which the translator reads) and :func:`~mmseg_tao.spec.convert.to_tao6`, and is the
table "TAO 6 keys read through TAO 5 keys" of docs/spec_mapping.md (:data:`TAO6_TO_TAO5`).
Rows run in order: a custom row may read what an earlier row wrote (the schedule needs
the TAO 6 root, split and batch size).
"""
import math
import os.path as osp
from typing import List, Tuple

from ..datasets.transforms.tao6_pipeline import tao6_norm_cfg
from .epochs import count_images, iters_per_epoch
from .gpus import process_count
from .links import Context, Convert, Custom, Link, doc_rows
from .schema import PaletteEntry
from .tao6_schema import Tao6PaletteEntry, Tao6Train

SPLITS = (('train', 'train_split'), ('val', 'validation_split'), ('test', 'test_split'))


# --------------------------------------------------------------------------- input size
def _size_to5(spec6, out, ctx: Context) -> None:
    out.model.input_height = out.model.input_width = spec6.dataset.segment.img_size


def _size_to6(spec5, out6, ctx: Context) -> None:
    h, w = spec5.model.input_height, spec5.model.input_width
    if h != w:
        ctx.lost.append(f'model.input_height/width {h}x{w}: TAO 6 has one square img_size '
                        '(the height is used)')
    out6.dataset.segment.img_size = h


# --------------------------------------------------------------------------- splits
def _splits_to5(spec6, out, ctx: Context) -> None:
    seg, d = spec6.dataset.segment, out.dataset
    d.data_root = seg.root_dir
    for name, key in SPLITS:
        s = getattr(d, f'{name}_dataset')
        s.img_dir, s.ann_dir = f'images/{getattr(seg, key)}', f'masks/{getattr(seg, key)}'
    if ctx.task == 'inference':
        d.test_dataset.img_dir = f'images/{seg.predict_split}'
        d.test_dataset.ann_dir = None


def split_root(img_dir, ann_dir) -> Tuple[str, str]:
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
        # dirname keeps an absolute path's leading separator (a join of the parts drops it)
        return osp.dirname(osp.dirname(osp.normpath(img_dir))) or '.', img[-1]
    return '', ''


def _splits_to6(spec5, out6, ctx: Context) -> None:
    d, seg = spec5.dataset, out6.dataset.segment
    splits = {}
    for name, key in SPLITS:
        s = getattr(d, f'{name}_dataset')
        root, split = split_root(s.img_dir, s.ann_dir)
        if s.img_dir and not root:
            ctx.lost.append(f'dataset.{name}_dataset.img_dir/ann_dir ({s.img_dir}, '
                            f'{s.ann_dir}): TAO 6 reads <root_dir>/images/<split> and '
                            '<root_dir>/masks/<split>')
        if root:
            splits[key] = (osp.join(d.data_root, root) if d.data_root else root, split)
    roots = {r for r, _ in splits.values()}
    if len(roots) > 1:
        ctx.lost.append(f'dataset splits under several roots {sorted(roots)}: TAO 6 has one '
                        'root_dir (the training one is used)')
    if splits:
        seg.root_dir = osp.normpath(
            splits.get('train_split', next(iter(splits.values())))[0])
        for key, (_, split) in splits.items():
            setattr(seg, key, split)
        seg.predict_split = seg.test_split


# --------------------------------------------------------------------------- masks
def _masks_to5(spec6, out, ctx: Context) -> None:
    """TAO 6 trains each entry's ``label_id`` as its class id (255 is ignored): in TAO 5's
    form every class maps to itself. The mask rule (label_transform) and num_classes stay
    TAO 6's: the TAO 6 rules of the translator read them from the TAO 6 spec."""
    entries, seen = [], set()
    for e in spec6.dataset.segment.palette:
        if e.label_id == 255 or e.label_id in seen:
            continue
        seen.add(e.label_id)
        entries.append(PaletteEntry(seg_class=e.seg_class, rgb=list(e.rgb),
                                    label_id=e.label_id, mapping_class=e.seg_class))
    out.dataset.palette = sorted(entries, key=lambda e: e.label_id)


def _masks_to6(spec5, out6, ctx: Context) -> None:
    d, seg = spec5.dataset, out6.dataset.segment
    grayscale = d.input_type == 'grayscale'
    seg.label_transform = 'norm' if grayscale else None
    seg.palette = [Tao6PaletteEntry(
        label_id=e.label_id, mapping_class=e.mapping_class,
        rgb=[min(e.label_id, 1)] * 3 if grayscale else list(e.rgb), seg_class=e.seg_class)
        for e in d.palette or []]
    if grayscale:
        ctx.lost.append('dataset.input_type grayscale: written as label_transform norm with '
                        'rgb [0,0,0]/[1,1,1] (0/255 masks)')
    else:
        ctx.lost.append('dataset.palette: TAO 6 matches mask colours (rgb); masks that hold '
                        'label_id values need rgb [id, id, id]')
    seg.num_classes = len({e.mapping_class for e in d.palette or []}) or seg.num_classes


def _norm_to5(mean, std) -> tuple:
    return (*tao6_norm_cfg(dict(mean=mean, std=std)), True)


def _norm_to6(mean, std, to_rgb) -> tuple:
    return [round(v / 255, 6) for v in mean], [round(v / 255, 6) for v in std]


# --------------------------------------------------------------------------- schedule
def _schedule_to5(spec6, out, ctx: Context) -> None:
    """Epochs -> iterations from the number of training images when the task trains (or is
    None, as for ``spec2cfg``); the arithmetic goes to the notes."""
    t6, seg, t = spec6.train, spec6.dataset.segment, out.train
    t.validate = True
    out.dataset.repeat_data_times = 1
    if ctx.task not in (None, 'train'):
        # Not training: the schedule is unused; keep the counts valid.
        t.max_iters = t6.num_epochs
        return
    if not seg.root_dir or seg.batch_size < 1:
        return  # reported by check_tao6_for_task
    images = count_images(seg.root_dir, seg.train_split)
    if not images:
        ctx.problems.append(f'dataset.segment.root_dir: no images in '
                            f'{osp.join(seg.root_dir, "images", seg.train_split)}; they are '
                            'needed to turn train.num_epochs into iterations')
        return
    # Every process of every node draws its shard of each epoch.
    procs = process_count(t6.num_gpus, t6.gpu_ids) * t6.num_nodes
    per_epoch = iters_per_epoch(images, procs, seg.batch_size)
    out.iters_per_epoch = per_epoch
    t.max_iters = t6.num_epochs * per_epoch
    step = t6.checkpoint_interval_unit == 'step'
    t.checkpoint_interval = t6.checkpoint_interval * (1 if step else per_epoch)
    t.validation_interval = t6.validation_interval * per_epoch
    t.logging_interval = min(50, t.max_iters)
    t.trainer.lr_config.warmup_iters = t.max_iters // 100 if t6.optim.policy == 'linear' else 0
    unit = 'step' if step else 'epoch'
    ctx.notes.append(
        f'train.num_epochs {t6.num_epochs} x {per_epoch} iterations per epoch ({images} '
        f'training images / (batch {seg.batch_size} x {procs} process(es)), rounded up) = '
        f'{t.max_iters} iterations (the learning-rate schedule); validation every '
        f'{t6.validation_interval} epoch(s), checkpoints every {t6.checkpoint_interval} '
        f'{unit}(s)')


def _schedule_to6(spec5, out6, ctx: Context) -> None:
    t5, t, seg = spec5.train, out6.train, out6.dataset.segment
    t.checkpoint_interval_unit = 'step'
    t.checkpoint_interval = t5.checkpoint_interval
    images = count_images(seg.root_dir, seg.train_split) if seg.root_dir else 0
    if not images or seg.batch_size < 1:
        ctx.lost.append(f'train.max_iters {t5.max_iters}: TAO 6 counts epochs; the training '
                        'images were not found to convert (train.num_epochs left at its '
                        'default)')
        return
    per_epoch = iters_per_epoch(images, process_count(t5.num_gpus, t5.gpu_ids) * t5.num_nodes,
                                seg.batch_size)
    t.num_epochs = max(1, math.ceil(t5.max_iters / per_epoch))
    t.validation_interval = max(1, round((t5.validation_interval or t5.max_iters) / per_epoch))
    if t.num_epochs * per_epoch != t5.max_iters:
        ctx.lost.append(f'train.max_iters {t5.max_iters}: TAO 6 counts epochs of '
                        f'{per_epoch} iterations; {t.num_epochs} epochs = '
                        f'{t.num_epochs * per_epoch} iterations')


# --------------------------------------------------------------------------- export
def _export_format_to5(spec6, out, ctx: Context) -> None:
    out.export.format = 'tao6'


def _export_format_to6(spec5, out6, ctx: Context) -> None:
    if spec5.export.format != 'tao6':
        ctx.lost.append("export: TAO 6 exports float logits at 1/4 resolution, not TAO 5's "
                        'argmax (DeepStream parser NvDsInferParseCustomSegformerTAO2)')


def _same(section: str, *keys: str) -> Link:
    """Keys of one section that both forms spell the same way, copied."""
    paths = tuple(f'{section}.{k}' for k in keys)
    return Link(paths, paths)


def _batch_to5(batch_size: int):
    return None if batch_size < 1 else batch_size


def _batch_to6(batch_size):
    return batch_size or -1


def _seed_to6(seed):
    return Tao6Train.seed if seed is None else seed


def _unset_to5(path):
    return path or None


def _unset_to6(path):
    return path or ''


def _sync_bn_to5(sync: bool) -> str:
    return 'SyncBN' if sync else 'BN'


def _sync_bn_to6(norm: str) -> bool:
    return norm == 'SyncBN'


LINKS: List[Link] = [
    # ---- model
    _same('model.backbone', 'type', 'feat_downsample'),
    Link('model.backbone.pretrained_backbone_path', 'model.pretrained_model_path'),
    _same('model.decode_head', 'decoder_params.embed_dim', 'align_corners'),
    Link('dataset.segment.img_size', ('model.input_height', 'model.input_width'),
         Custom(_size_to5, _size_to6), 'one square size; TAO 5 -> 6 takes the height'),
    # ---- dataset
    Link(('dataset.segment.root_dir', 'dataset.segment.train_split',
          'dataset.segment.validation_split', 'dataset.segment.test_split',
          'dataset.segment.predict_split'),
         ('dataset.data_root', 'dataset.train_dataset.img_dir', 'dataset.train_dataset.ann_dir',
          'dataset.val_dataset.img_dir', 'dataset.val_dataset.ann_dir',
          'dataset.test_dataset.img_dir', 'dataset.test_dataset.ann_dir'),
         Custom(_splits_to5, _splits_to6),
         'images/<split> and masks/<split> under the root; inference segments '
         'images/<predict_split>; TAO 5 -> 6 needs one root with that layout'),
    Link(('dataset.segment.palette', 'dataset.segment.label_transform',
          'dataset.segment.num_classes'), ('dataset.palette', 'dataset.input_type'),
         Custom(_masks_to5, _masks_to6),
         'label_id as class id, 255 dropped; the mask rule and num_classes are read from '
         'the TAO 6 spec (MAPPING_TAO6); TAO 5 -> 6: grayscale is label_transform norm '
         'with rgb [0,0,0]/[1,1,1], else rgb as given'),
    Link(('dataset.segment.augmentation.mean', 'dataset.segment.augmentation.std'),
         ('dataset.img_norm_cfg.mean', 'dataset.img_norm_cfg.std',
          'dataset.img_norm_cfg.to_rgb'), Convert(_norm_to5, _norm_to6),
         '0-1 scale x 255; to_rgb true (TAO 6 feeds RGB)'),
    Link(('dataset.segment.batch_size', 'dataset.segment.workers', 'dataset.segment.shuffle'),
         ('dataset.batch_size', 'dataset.workers_per_gpu', 'dataset.shuffle')),
    # ---- train
    _same('train', 'num_gpus', 'gpu_ids', 'num_nodes'),
    Link('train.seed', 'train.exp_config.manual_seed', Convert(to6=_seed_to6),
         "TAO 5's null (a random seed) becomes TAO 6's default seed"),
    Link(('train.cudnn.deterministic', 'train.cudnn.benchmark'),
         ('train.exp_config.deterministic', 'train.exp_config.env_cfg.cudnn_benchmark')),
    Link('train.sync_batchnorm', 'model.decode_head.norm_cfg.type',
         Convert(_sync_bn_to5, _sync_bn_to6), "true: 'SyncBN', false: 'BN'"),
    _same('train', 'results_dir', 'resume_training_checkpoint_path'),
    Link(('train.optim.lr', 'train.optim.weight_decay'),
         ('train.trainer.sf_optim.lr', 'train.trainer.sf_optim.weight_decay')),
    Link(('train.num_epochs', 'train.checkpoint_interval', 'train.checkpoint_interval_unit',
          'train.validation_interval', 'train.optim.policy'),
         ('train.max_iters', 'train.checkpoint_interval', 'train.validation_interval',
          'train.validate', 'train.logging_interval', 'train.trainer.lr_config.warmup_iters',
          'dataset.repeat_data_times'),
         Custom(_schedule_to5, _schedule_to6),
         'max_iters = num_epochs x ceil(ceil(images / processes) / batch_size) (printed); '
         'intervals in epochs x iterations per epoch (checkpoints: or steps); validate true; '
         'logging every min(50, max_iters); warm-up 1% of the iterations for policy linear; '
         'repeat_data_times 1. TAO 5 -> 6: epochs from the images under root_dir, '
         'checkpoints in steps'),
    Link('results_dir', 'results_dir', Convert(lambda d: d or None, lambda d: d or ''),
         "TAO 6's '' and TAO 5's null both mean unset"),
    # ---- tasks
    _same('evaluate', 'checkpoint', 'results_dir', 'num_gpus', 'gpu_ids'),
    Link('evaluate.batch_size', 'evaluate.batch_size', Convert(_batch_to5, _batch_to6),
         "TAO 6's -1 and TAO 5's null both mean 1 image per pass"),
    _same('inference', 'checkpoint', 'results_dir', 'num_gpus', 'gpu_ids'),
    Link('inference.batch_size', 'inference.batch_size', Convert(_batch_to5, _batch_to6),
         "TAO 6's -1 and TAO 5's null both mean 1 image per pass"),
    _same('export', 'checkpoint', 'onnx_file', 'results_dir', 'input_channel', 'input_width',
          'input_height', 'opset_version', 'batch_size', 'verbose'),
    Link('export.format', 'export.format', Custom(_export_format_to5, _export_format_to6),
         "TAO 6's onnx contract (float logits at 1/4 resolution) is mmseg-tao's "
         "format 'tao6'"),
    _same('quantize', 'backend', 'mode', 'algorithm', 'layers', 'skip_names', 'model_path',
          'results_dir', 'backend_kwargs', 'device'),
    Link('dataset.segment.quant_calibration_dataset.images_dir',
         'dataset.quant_calibration_dataset.img_dir', Convert(_unset_to5, _unset_to6),
         "the calibration images; TAO 6's '' and TAO 5's null both mean unset "
         '(TAO 5 has no quantize task: its section is an mmseg-tao addition)'),
]

# (TAO 6/7 paths, TAO 5 form) rows of docs/spec_mapping.md.
TAO6_TO_TAO5: List[Tuple[str, str]] = doc_rows(LINKS)
