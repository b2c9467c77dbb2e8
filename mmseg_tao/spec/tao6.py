"""TAO 6.x / 7.x specs: telling the schemas apart, and the TAO 5 form the translator reads.

A TAO 6/7 spec is validated against :class:`~mmseg_tao.spec.tao6_schema.Tao6Spec`, then
converted (:func:`from_tao6`) into a :class:`Tao6Experiment`: the TAO 5 spec of the same
experiment (every setting the two schemas share, in TAO 5's terms, so the one translator
handles both) carrying the TAO 6 spec itself for what only TAO 6 has (its augmentation,
mask rule, epochs, optimizers, schedules), which :data:`~mmseg_tao.spec.translate.MAPPING_TAO6`
reads.
"""
import dataclasses
import math
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional

from ..datasets.tao_dataset import IMG_SUFFIXES, scan_dir
from ..datasets.transforms.tao6_pipeline import tao6_norm_cfg
from .schema import ExperimentSpec, PaletteEntry
from .tao6_schema import TAO6_ONLY_BACKBONES, Tao6Spec

# Keys only a TAO 6/7 spec has (TAO 5 has neither).
TAO6_MARKERS = ('dataset.segment', 'train.num_epochs')
# What each task needs from a TAO 6/7 spec: (spec path, why).
TAO6_REQUIREMENTS = {
    'train': [('dataset.segment.root_dir', 'the images/<split> and masks/<split> folders')],
    'evaluate': [('evaluate.checkpoint', 'the model to evaluate'),
                 ('dataset.segment.root_dir', 'the test images and masks')],
    'inference': [('inference.checkpoint', 'the model to run'),
                  ('dataset.segment.root_dir', 'the images to segment')],
    'export': [('export.checkpoint', 'the model to export')],
}


def detect_version(data: dict) -> int:
    """6 when the raw spec has ``dataset.segment`` or ``train.num_epochs``, else 5."""
    for path in TAO6_MARKERS:
        node = data
        for part in path.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return 6
    return 5


@dataclass
class Tao6Experiment(ExperimentSpec):
    """A TAO 6/7 spec in TAO 5's form, with the TAO 6 spec (``tao6``) it came from.

    ``iters_per_epoch`` is the iteration count of one epoch (training images / (batch size x
    processes), rounded up as TAO's sampler does); None when the task does not train.
    """
    tao6: Optional[Tao6Spec] = None
    iters_per_epoch: Optional[int] = None


def unsupported_backbone(data: dict) -> Optional[str]:
    """The problem message for a TAO 6/7 backbone this package does not have, or None."""
    backbone = ((data.get('model') or {}).get('backbone') or {}) \
        if isinstance(data.get('model'), dict) else {}
    name = backbone.get('type') if isinstance(backbone, dict) else None
    if name not in TAO6_ONLY_BACKBONES:
        return None
    from .schema import BACKBONES
    return (f'model.backbone.type: {name!r} ({TAO6_ONLY_BACKBONES[name]}) is a TAO 6/7 '
            f'backbone that mmseg-tao does not provide; supported: {", ".join(BACKBONES)}')


def check_tao6_for_task(spec: Tao6Spec, task: Optional[str]) -> List[str]:
    """Problems (in TAO 6 key paths) that make ``spec`` unusable for ``task``."""
    from .validation import get_path
    problems = []
    for path, why in TAO6_REQUIREMENTS.get(task, []):
        if get_path(spec, path) in (None, ''):
            problems.append(f'{path}: required for {task} ({why}) but missing')
    seg = spec.dataset.segment
    if task == 'train' and seg.batch_size < 1:
        problems.append(f'dataset.segment.batch_size: {seg.batch_size} (unset); training needs '
                        'the images per GPU, e.g. 8')
    ids = sorted({e.label_id for e in seg.palette if e.label_id != 255})
    if ids != list(range(seg.num_classes)):
        problems.append(f'dataset.segment.palette: label_ids {ids} (255 aside, which is '
                        f'ignored) must be 0..{seg.num_classes - 1}, one per class of '
                        f'dataset.segment.num_classes ({seg.num_classes}): TAO 6 trains '
                        'label_ids as class ids')
    if spec.train.segment.loss != 'ce' and task in (None, 'train'):
        problems.append(f"train.segment.loss: {spec.train.segment.loss!r} is not available in "
                        "mmseg-tao; use 'ce' (cross-entropy, TAO 6's default)")
    return problems


def count_images(root: str, split: str) -> int:
    """Images in ``root/images/split`` (what TAO 6 lists for an epoch)."""
    folder = osp.join(root, 'images', split)
    if not osp.isdir(folder):
        return 0
    return len(scan_dir(folder, IMG_SUFFIXES))


def _palette(spec: Tao6Spec) -> List[PaletteEntry]:
    """TAO 6 trains each entry's ``label_id`` as its class id (255 is ignored): in TAO 5's
    form every class maps to itself."""
    entries, seen = [], set()
    for e in spec.dataset.segment.palette:
        if e.label_id == 255 or e.label_id in seen:
            continue
        seen.add(e.label_id)
        entries.append(PaletteEntry(seg_class=e.seg_class, rgb=list(e.rgb),
                                    label_id=e.label_id, mapping_class=e.seg_class))
    return sorted(entries, key=lambda e: e.label_id)


def from_tao6(spec: Tao6Spec, task: Optional[str], notes: List[str],
              problems: List[str]) -> Tao6Experiment:
    """The TAO 5 form of a validated TAO 6/7 spec (see the module docstring).

    Epochs become iterations from the number of training images when ``task`` trains (or
    is None, as for ``spec2cfg``); the arithmetic is added to ``notes``.
    """
    seg, t6 = spec.dataset.segment, spec.train
    out = Tao6Experiment(tao6=spec)
    m = out.model
    m.backbone.type = spec.model.backbone.type
    m.backbone.feat_downsample = spec.model.backbone.feat_downsample
    m.decode_head.decoder_params.embed_dim = spec.model.decode_head.decoder_params.embed_dim
    m.decode_head.align_corners = spec.model.decode_head.align_corners
    m.decode_head.norm_cfg.type = 'SyncBN' if t6.sync_batchnorm else 'BN'
    m.input_height = m.input_width = seg.img_size
    m.pretrained_model_path = spec.model.backbone.pretrained_backbone_path

    d = out.dataset
    d.data_root = seg.root_dir
    d.train_dataset.img_dir = f'images/{seg.train_split}'
    d.train_dataset.ann_dir = f'masks/{seg.train_split}'
    d.val_dataset.img_dir = f'images/{seg.validation_split}'
    d.val_dataset.ann_dir = f'masks/{seg.validation_split}'
    if task == 'inference':
        d.test_dataset.img_dir = f'images/{seg.predict_split}'
    else:
        d.test_dataset.img_dir = f'images/{seg.test_split}'
        d.test_dataset.ann_dir = f'masks/{seg.test_split}'
    d.palette = _palette(spec)
    d.img_norm_cfg.mean, d.img_norm_cfg.std = tao6_norm_cfg(
        dataclasses.asdict(seg.augmentation))
    d.img_norm_cfg.to_rgb = True
    d.batch_size = seg.batch_size
    d.workers_per_gpu = seg.workers
    d.shuffle = seg.shuffle
    d.repeat_data_times = 1

    t = out.train
    t.num_gpus, t.gpu_ids, t.num_nodes = t6.num_gpus, list(t6.gpu_ids), t6.num_nodes
    t.exp_config.manual_seed = t6.seed
    t.exp_config.deterministic = t6.cudnn.deterministic
    t.exp_config.env_cfg.cudnn_benchmark = t6.cudnn.benchmark
    t.results_dir = t6.results_dir
    t.resume_training_checkpoint_path = t6.resume_training_checkpoint_path
    t.trainer.sf_optim.lr = t6.optim.lr
    t.trainer.sf_optim.weight_decay = t6.optim.weight_decay
    t.validate = True
    out.results_dir = spec.results_dir or None
    _epochs_to_iterations(spec, out, task, notes, problems)

    for name in ('evaluate', 'inference'):
        src, dst = getattr(spec, name), getattr(out, name)
        dst.checkpoint, dst.results_dir = src.checkpoint, src.results_dir
        dst.num_gpus, dst.gpu_ids = src.num_gpus, list(src.gpu_ids)
        dst.batch_size = None if src.batch_size < 1 else src.batch_size
    e6, e = spec.export, out.export
    e.checkpoint, e.onnx_file, e.results_dir = e6.checkpoint, e6.onnx_file, e6.results_dir
    e.input_channel, e.input_width, e.input_height = (e6.input_channel, e6.input_width,
                                                      e6.input_height)
    e.opset_version, e.batch_size, e.verbose = e6.opset_version, e6.batch_size, e6.verbose
    e.format = 'tao6'
    return out


def _epochs_to_iterations(spec: Tao6Spec, out: Tao6Experiment, task: Optional[str],
                          notes: List[str], problems: List[str]) -> None:
    t6, seg = spec.train, spec.dataset.segment
    t = out.train
    if task not in (None, 'train'):
        # Not training: the schedule is unused; keep the counts valid.
        t.max_iters = t6.num_epochs
        return
    if not seg.root_dir or seg.batch_size < 1:
        return  # reported by check_tao6_for_task
    root = seg.root_dir
    images = count_images(root, seg.train_split)
    if not images:
        problems.append(f'dataset.segment.root_dir: no images in '
                        f'{osp.join(root, "images", seg.train_split)}; they are needed to '
                        'turn train.num_epochs into iterations')
        return
    procs = max(t6.num_gpus, len(t6.gpu_ids))
    per_epoch = math.ceil(math.ceil(images / procs) / seg.batch_size)
    out.iters_per_epoch = per_epoch
    t.max_iters = t6.num_epochs * per_epoch
    step = t6.checkpoint_interval_unit == 'step'
    t.checkpoint_interval = t6.checkpoint_interval * (1 if step else per_epoch)
    t.validation_interval = t6.validation_interval * per_epoch
    t.logging_interval = min(50, t.max_iters)
    t.trainer.lr_config.warmup_iters = t.max_iters // 100 if t6.optim.policy == 'linear' else 0
    notes.append(
        f'train.num_epochs {t6.num_epochs} x {per_epoch} iterations per epoch ({images} '
        f'training images / (batch {seg.batch_size} x {procs} process(es)), rounded up) = '
        f'{t.max_iters} iterations; checkpoints every {t.checkpoint_interval}, validation '
        f'every {t.validation_interval} iterations')

