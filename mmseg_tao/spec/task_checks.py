"""What each task needs from a spec beyond its schema, for TAO 5's and TAO 6's forms."""
from typing import List, Optional, Sequence

from ..datasets.palette import Palette, PaletteError
from .validation import get_path

TASKS = ('train', 'evaluate', 'inference', 'export', 'quantize')

# What each task needs that the schema cannot default: (spec path, why).
TASK_REQUIREMENTS = {
    'train': [('dataset.train_dataset.img_dir', 'training images'),
              ('dataset.train_dataset.ann_dir', 'training masks'),
              ('dataset.palette', 'the classes')],
    'evaluate': [('evaluate.checkpoint', 'the model to evaluate'),
                 ('dataset.test_dataset.img_dir', 'test images'),
                 ('dataset.test_dataset.ann_dir', 'test masks'),
                 ('dataset.palette', 'the classes')],
    'inference': [('inference.checkpoint', 'the model to run'),
                  ('dataset.test_dataset.img_dir', 'images to segment'),
                  ('dataset.palette', 'the classes')],
    'export': [('export.checkpoint', 'the model to export'),
               ('dataset.palette', 'the number of classes')],
    # The model (quantize.model_path, else export.checkpoint) is checked by the task.
    'quantize': [('dataset.palette', 'the number of classes')],
}
VALIDATION_REQUIREMENTS = [('dataset.val_dataset.img_dir', 'validation images'),
                           ('dataset.val_dataset.ann_dir', 'validation masks')]
# What each task needs from a TAO 6/7 spec: (spec path, why).
TAO6_REQUIREMENTS = {
    'train': [('dataset.segment.root_dir', 'the images/<split> and masks/<split> folders')],
    'evaluate': [('evaluate.checkpoint', 'the model to evaluate'),
                 ('dataset.segment.root_dir', 'the test images and masks')],
    'inference': [('inference.checkpoint', 'the model to run'),
                  ('dataset.segment.root_dir', 'the images to segment')],
    'export': [('export.checkpoint', 'the model to export')],
}


def check_palette(entries: Optional[Sequence], where: str = 'dataset.palette') -> List[str]:
    """The problems of a palette (none when it is valid or not set).

    Args:
        entries: Palette entries (the spec's ``PaletteEntry`` dataclasses).
        where: The key path the messages name (the user's, e.g. TAO 6's
            ``dataset.segment.palette``).
    """
    if not entries:
        return []
    try:
        Palette.of(entries, where)
    except PaletteError as err:
        return list(err.problems)
    return []


def check_for_task(spec, task: Optional[str]) -> List[str]:
    """Problems that make a TAO 5 form ``spec`` unusable for ``task`` (None: any task)."""
    problems: List[str] = []
    requirements = list(TASK_REQUIREMENTS.get(task, []))
    if task == 'train' and spec.train.validate:
        requirements += VALIDATION_REQUIREMENTS
    for path, why in requirements:
        value = get_path(spec, path)
        if value in (None, '', []):
            extra = (' (or set train.validate: false)' if path.startswith('dataset.val_')
                     else '')
            problems.append(f'{path}: required for {task} ({why}) but missing{extra}')
    for split in ('train_dataset', 'val_dataset', 'test_dataset'):
        s = getattr(spec.dataset, split)
        imgs = [s.img_dir] if isinstance(s.img_dir, str) else (s.img_dir or [])
        anns = [s.ann_dir] if isinstance(s.ann_dir, str) else (s.ann_dir or [])
        if anns and len(anns) != len(imgs):
            problems.append(f'dataset.{split}.ann_dir: {len(anns)} entries but img_dir has '
                            f'{len(imgs)}; directories are paired one to one')
    problems += check_palette(spec.dataset.palette)
    t = spec.train
    if t.validate and t.validation_interval is None:
        problems.append('train.validation_interval: required when train.validate is true')
    return problems


def check_tao6_for_task(spec, task: Optional[str]) -> List[str]:
    """Problems (in TAO 6 key paths) that make a TAO 6/7 ``spec`` unusable for ``task``."""
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
    t = spec.train
    if task in (None, 'train'):  # TAO's initialize_train_experiment asserts these
        if t.checkpoint_interval_unit == 'epoch' and t.checkpoint_interval > t.num_epochs:
            problems.append(f'train.checkpoint_interval: {t.checkpoint_interval} epochs is '
                            f'more than train.num_epochs ({t.num_epochs}); no checkpoint '
                            f'would be saved (TAO refuses it too)')
        if t.validation_interval > t.num_epochs:
            problems.append(f'train.validation_interval: {t.validation_interval} epochs is '
                            f'more than train.num_epochs ({t.num_epochs}); the model would '
                            f'never be validated (TAO refuses it too)')
    if spec.train.segment.loss != 'ce' and task in (None, 'train'):
        problems.append(f"train.segment.loss: {spec.train.segment.loss!r} is not available in "
                        "mmseg-tao; use 'ce' (cross-entropy, TAO 6's default)")
    return problems
