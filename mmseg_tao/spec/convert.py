"""Convert experiment specs between TAO 5.x's form and TAO 6.x / 7.x's form.

Each direction writes only what differs from the target form's defaults and lists every
setting that has no counterpart there (:class:`Conversion`). What the two forms share is
the experiment (:data:`~mmseg_tao.spec.correspondence.LINKS`, the table that also reads
TAO 6/7 specs); what one has and the other lacks is reported, never dropped silently.
"""
import copy
import dataclasses
from typing import Any, Dict, List, NamedTuple, Tuple

from .correspondence import LINKS
from .links import Context, to_tao6_form
from .schema import ExperimentSpec
from .tao6 import Tao6Experiment
from .tao6_schema import Tao6Spec
from .validation import get_path

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


def _differs(spec, default, path: str) -> bool:
    return get_path(spec, path) != get_path(default, path)


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


def to_tao6(spec: ExperimentSpec) -> Conversion:
    """The TAO 6/7 form of a loaded TAO 5 spec."""
    out, ctx = Tao6Spec(), Context()
    to_tao6_form(LINKS, spec, out, ctx)
    lost = ctx.lost + [f'{path}: {why}' for path, why in TAO5_ONLY
                       if _differs(spec, ExperimentSpec(), path)]
    return Conversion(_minimal(out, Tao6Spec()), lost)
