"""One source of truth per concept in mmseg_tao.spec: rules that say what they compute,
one TAO 5 <-> TAO 6 table driving both directions, ignored rows declared once, schemas
composed from shared field groups and readable without torch."""
import dataclasses
import os.path as osp
import subprocess
import sys

import pytest

from mmseg_tao.datasets.transforms.tao6_pipeline import TAO6_AUGMENTATION_DEFAULTS
from mmseg_tao.spec.correspondence import LINKS, TAO6_TO_TAO5
from mmseg_tao.spec.epochs import iters_per_epoch
from mmseg_tao.spec.fields import GpuFields, GpuNodeFields
from mmseg_tao.spec.gpus import process_count, reconcile_gpus
from mmseg_tao.spec.ignored import IGNORED, IGNORED_TAO6
from mmseg_tao.spec.links import Context, Convert, Custom, Link, to_tao5_form, to_tao6_form
from mmseg_tao.spec.rules import Rule, Whole
from mmseg_tao.spec.schema import (
    EvaluateSpec,
    ExperimentSpec,
    InferenceSpec,
    RunTaskSpec,
    TrainSpec,
)
from mmseg_tao.spec.tao5_mapping import MAPPING, mapping_table
from mmseg_tao.spec.tao6_mapping import MAPPING_TAO6
from mmseg_tao.spec.tao6_schema import Tao6Augmentation, Tao6Evaluate, Tao6Spec, Tao6Train
from mmseg_tao.spec.validation import get_path, set_path

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# --------------------------------------------------------------------------- rules
@pytest.mark.parametrize('rules', [MAPPING, MAPPING_TAO6], ids=['MAPPING', 'MAPPING_TAO6'])
def test_computed_rules_say_what_they_compute(rules):
    """A rule that does more than copy its one source has a note; the doc calls only
    copies 'copied'."""
    for rule in rules:
        assert rule.copies or rule.note, f'{rule.target}: computed without a note'
        if rule.copies:
            assert len(rule.sources) == 1 and rule.convert is None, rule.target
    rows = {target: note for target, _, note in mapping_table(rules)}
    for rule in rules:
        if rows[rule.target] == 'copied':
            assert rule.copies, f'{rule.target} is documented as a copy but computes'


def test_rule_refuses_an_unexplained_computation():
    with pytest.raises(ValueError, match='needs a note'):
        Rule('crop_size', ('model.input_height', 'model.input_width'), lambda h, w: (h, w))
    with pytest.raises(ValueError, match='needs a note'):
        Rule('work_dir', 'results_dir', Whole(lambda s: s.results_dir))
    with pytest.raises(ValueError, match='a copy reads one source'):
        Rule('crop_size', ('model.input_height', 'model.input_width'))


def test_a_rule_given_one_source_copies_it():
    rule = Rule('randomness.seed', 'train.exp_config.manual_seed')
    spec = ExperimentSpec()
    assert rule.sources == ('train.exp_config.manual_seed', ) and rule.copies
    assert rule.value(spec) == 49 and rule.row() == ('randomness.seed',
                                                     'train.exp_config.manual_seed', 'copied')
    spec.dataset.img_norm_cfg.mean = [1.0, 2.0, 3.0]
    copied = Rule('data_preprocessor.mean', 'dataset.img_norm_cfg.mean').value(spec)
    assert copied == [1.0, 2.0, 3.0] and copied is not spec.dataset.img_norm_cfg.mean


# --------------------------------------------------------------------------- TAO 5 <-> 6
def test_links_name_real_keys_of_both_schemas():
    """Every path of the correspondence table exists in its schema (the table is data the
    code runs, not prose)."""
    for link in LINKS:
        for path in link.tao6:
            get_path(Tao6Spec(), path)
        for path in link.tao5:
            get_path(ExperimentSpec(), path)


def test_one_doc_row_per_link():
    assert len(TAO6_TO_TAO5) == len(LINKS)
    for (tao6, tao5), link in zip(TAO6_TO_TAO5, LINKS):
        assert tao6 == ', '.join(link.tao6)
        assert (link.note in tao5) if link.note else ('note' not in tao5)


def test_link_refuses_an_unexplained_conversion():
    with pytest.raises(ValueError, match='needs a note'):
        Link('train.sync_batchnorm', 'model.decode_head.norm_cfg.type',
             Convert(str, str))
    with pytest.raises(ValueError, match='as many paths'):
        Link('dataset.segment.img_size', ('model.input_height', 'model.input_width'))


def _changed(value):
    """A value of the same type that differs from ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 3
    if isinstance(value, float):
        return value * 0.5
    if isinstance(value, list):
        return [_changed(v) for v in value]
    if isinstance(value, dict):  # quantize.backend_kwargs
        return {**value, 'changed': 1}
    return 'changed' if value is None else value + '_changed'


def test_copied_keys_survive_both_directions():
    """TAO 6 -> TAO 5 form -> TAO 6 returns every key the table copies or converts value
    by value (the custom rows are tested with their data in test_tao6_spec.py)."""
    from mmseg_tao.spec.tao6 import Tao6Experiment
    spec6 = Tao6Spec()
    spec6.dataset.segment.batch_size = 2
    values = {}
    for link in LINKS:
        if isinstance(link.convert, Custom):
            continue
        for path in link.tao6:
            values[path] = _changed(get_path(spec6, path))
            set_path(spec6, path, values[path])
    out5 = Tao6Experiment(tao6=spec6)
    to_tao5_form(LINKS, spec6, out5, Context(task='evaluate'))
    assert out5.dataset.img_norm_cfg.mean == [0.25 * 255] * 3  # the 0-255 scale
    assert out5.train.trainer.sf_optim.lr == spec6.train.optim.lr
    back = Tao6Spec()
    to_tao6_form(LINKS, out5, back, Context())
    for path, value in values.items():
        assert get_path(back, path) == value, path


# --------------------------------------------------------------------------- ignored
def test_ignored_rows_declared_once():
    """A row of both tables is one object used twice, not a copy; no table repeats a
    path."""
    for rows in (IGNORED, IGNORED_TAO6):
        assert len({r.source for r in rows}) == len(rows)
    for a in IGNORED:
        for b in IGNORED_TAO6:
            if a == b:
                assert a is b, f'{a.source} is written twice; declare it once'
    assert any(a is b for a in IGNORED for b in IGNORED_TAO6)


# --------------------------------------------------------------------------- schemas
def test_task_sections_compose_the_gpu_fields():
    for cls in (TrainSpec, EvaluateSpec, InferenceSpec, Tao6Train, Tao6Evaluate):
        assert issubclass(cls, GpuFields), cls
    assert issubclass(TrainSpec, GpuNodeFields) and issubclass(Tao6Train, GpuNodeFields)
    assert issubclass(EvaluateSpec, RunTaskSpec) and issubclass(InferenceSpec, RunTaskSpec)
    shared = {f.name for f in dataclasses.fields(RunTaskSpec)}
    assert shared == {'checkpoint', 'trt_engine', 'num_gpus', 'gpu_ids', 'gpu_id',
                      'batch_size', 'results_dir', 'encryption_key', 'exp_config'}


def test_tao6_augmentation_defaults_come_from_the_schema():
    assert TAO6_AUGMENTATION_DEFAULTS == dataclasses.asdict(Tao6Augmentation())


def test_schema_reads_a_spec_without_torch():
    """The schemas, validation, YAML reading and the epoch arithmetic (TAO 6's listing
    rule, shared with the datasets) import no torch / timm: a spec is read and checked by
    them alone. (``import mmseg_tao`` itself registers the models, which
    needs torch, so the child process gives ``mmseg_tao`` a bare package module and loads
    the spec modules from the source tree.)"""
    code = f'''
import sys, types
pkg = types.ModuleType('mmseg_tao')
pkg.__path__ = [{osp.join(ROOT, 'mmseg_tao')!r}]
sys.modules['mmseg_tao'] = pkg
import mmseg_tao.spec.schema, mmseg_tao.spec.tao6_schema, mmseg_tao.spec.backbones
from mmseg_tao.spec.epochs import count_images, iters_per_epoch  # TAO 6's epoch arithmetic
assert count_images({ROOT!r}, 'none') == 0
from mmseg_tao.spec.overrides import apply_overrides
from mmseg_tao.spec.validation import build
from mmseg_tao.spec.yaml_reader import read_yaml
data = apply_overrides(read_yaml({osp.join(ROOT, 'configs', 'tao_specs', 'segformer_isbi.yaml')!r}),
                       ['train.max_iters=7'])
spec = build(mmseg_tao.spec.schema.ExperimentSpec, data)
assert spec.train.max_iters == 7
heavy = sorted(m for m in ('torch', 'timm', 'mmcv', 'mmseg', 'mmengine') if m in sys.modules)
assert not heavy, heavy
'''
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_backbone_tables_use_the_spec_names():
    from mmseg_tao.models.backbones import FAN_ARCHS, MIT_ARCHS
    from mmseg_tao.spec.backbones import BACKBONES
    assert tuple(MIT_ARCHS) + tuple(FAN_ARCHS) == BACKBONES


# --------------------------------------------------------------------------- arithmetic
@pytest.mark.parametrize('images, procs, batch, expected',
                         [(10, 1, 4, 3), (8, 1, 4, 2), (10, 2, 4, 2), (10, 4, 2, 2),
                          (1, 4, 8, 1)])
def test_iters_per_epoch(images, procs, batch, expected):
    assert iters_per_epoch(images, procs, batch) == expected


def test_process_count_is_the_reconciled_count():
    for num, ids in ((1, [0]), (2, [0]), (1, [2, 3]), (3, []), (2, None)):
        assert process_count(num, ids) == reconcile_gpus(num, ids or [])[0]


def test_top_level_encryption_key_is_not_reported_as_ignored():
    """It decrypts TAO-encrypted checkpoints (NVIDIA's example specs set it): a warning that
    it does nothing would be false."""
    for rows in (IGNORED, IGNORED_TAO6):
        assert 'encryption_key' not in {row.source for row in rows}
    assert 'train.encryption_key' in {row.source for row in IGNORED}


@pytest.mark.parametrize('img_dir, ann_dir, expected', [
    ('/data/shapes/images/val', '/data/shapes/masks/val', ('/data/shapes', 'val')),
    (['/data/images/train'], ['/data/masks/train'], ('/data', 'train')),
    ('shapes/images/val', 'shapes/masks/val', ('shapes', 'val')),
    ('images/val', 'masks/val', ('.', 'val')),
    ('/data/images/val', '/data/masks/train', ('', '')),      # not one split
    ('/data/imgs/val', '/data/masks/val', ('', '')),          # not TAO 6's folder names
])
def test_tao6_root_from_tao5_dirs(img_dir, ann_dir, expected):
    # TAO 6 reads <root_dir>/images/<split> and <root_dir>/masks/<split>; an absolute TAO 5
    # folder keeps its leading '/' (it once became relative to the working directory).
    from mmseg_tao.spec.correspondence import split_root
    assert split_root(img_dir, ann_dir) == expected
