"""The data part of a generated config: palette, datasets, dataloaders, evaluators."""
import dataclasses
from typing import List, Optional

from ..datasets.palette import IGNORE_INDEX, Palette
from .schema import ExperimentSpec
from .tao6 import tao6_of
from .writer import Ref


def palette_entries(spec: ExperimentSpec) -> List[dict]:
    """The spec's palette entries as plain dicts (the config's ``tao_palette``)."""
    return [dataclasses.asdict(e) for e in spec.dataset.palette or []]


def palette_of(spec: ExperimentSpec) -> Optional[Palette]:
    """The validated palette of a spec, or None without one."""
    return Palette.of(spec.dataset.palette) if spec.dataset.palette else None


def metainfo(spec: ExperimentSpec) -> Optional[dict]:
    """mmseg's ``metainfo``: class names and colours by training id."""
    palette = palette_of(spec)
    if palette is None:
        return None
    return dict(classes=tuple(palette.classes), palette=[list(c) for c in palette.colors])


def num_classes(spec: ExperimentSpec) -> int:
    """Distinct training classes of the palette (2 without one)."""
    palette = palette_of(spec)
    return palette.num_classes if palette else 2


def _split_dirs(value) -> List[str]:
    return [value] if isinstance(value, str) else list(value or [])


def split_dataset(spec: ExperimentSpec, split: str, pipeline) -> Optional[dict]:
    """The ``TAOSegDataset`` of ``dataset.<split>_dataset``, or None without images.

    Args:
        spec: The spec.
        split: ``train``, ``val`` or ``test``.
        pipeline: The dataset's pipeline (a :class:`Ref` to a top-level one).
    """
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
    if tao6_of(spec):
        # TAO 6 pairs images and masks by sorted order; every file is still checked before
        # the first iteration, masks by TAO 6's rule (LoadTAO6Annotations in the pipeline:
        # colours outside the palette are class 0, not errors).
        out.update(pairing='sorted')
    return out


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


def train_dataloader(spec: ExperimentSpec) -> Optional[dict]:
    """Every train img_dir/ann_dir pair, repeated ``repeat_data_times``, infinitely
    sampled."""
    inner = split_dataset(spec, 'train', Ref('train_pipeline'))
    times = spec.dataset.repeat_data_times
    if inner is not None and times != 1:
        inner = dict(type='RepeatDataset', times=times, dataset=inner)
    return _loader(spec, inner, train=True)


def val_dataloader(spec: ExperimentSpec) -> Optional[dict]:
    """The val split through the test pipeline, when ``train.validate``."""
    if not spec.train.validate:
        return None
    return _loader(spec, split_dataset(spec, 'val', Ref('test_pipeline')), train=False)


def test_dataset(spec: ExperimentSpec) -> Optional[dict]:
    """The test split, else the val split (so tools/test.py works on a training spec)."""
    return (split_dataset(spec, 'test', Ref('test_pipeline'))
            or split_dataset(spec, 'val', Ref('test_pipeline')))


def test_dataloader(spec: ExperimentSpec) -> Optional[dict]:
    """:func:`test_dataset` in batches of ``evaluate.batch_size`` (default 1)."""
    return _loader(spec, test_dataset(spec), train=False,
                   batch_size=spec.evaluate.batch_size or 1)


def iou_metric() -> dict:
    """The evaluator of validation and test."""
    return dict(type='TAOIoUMetric', iou_metrics=['mIoU'], ignore_index=IGNORE_INDEX)


def test_evaluator(spec: ExperimentSpec) -> Optional[dict]:
    """:func:`iou_metric` when there is a test dataset."""
    return iou_metric() if test_dataset(spec) else None


def test_loop(spec: ExperimentSpec) -> Optional[dict]:
    """The test loop when there is a test dataset."""
    return dict(type='TestLoop') if test_dataset(spec) else None
