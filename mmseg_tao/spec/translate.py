"""Translate a loaded TAO experiment spec into an mmengine / mmseg config.

The config is a fixed skeleton (:func:`~mmseg_tao.spec.skeleton.skeleton`) whose values
are set by tables of rules (:mod:`mmseg_tao.spec.rules`): each rule names the config path
it sets, the spec paths it reads and the conversion. :data:`MAPPING` serves every spec
(a TAO 6/7 spec in its TAO 5 form, :mod:`mmseg_tao.spec.tao6`), then :data:`MAPPING_TAO6`
what only TAO 6/7 has. docs/spec_mapping.md is generated from the same tables
(``python tools/spec2cfg.py --mapping-doc``), so code and documentation cannot disagree.
Fields accepted so that TAO specs load but without effect are listed in :data:`IGNORED` /
:data:`IGNORED_TAO6` and reported when set (:func:`spec_warnings`).

The names other modules import from here are re-exported from the modules that define
them.
"""
import copy
import dataclasses
from typing import Any, Dict, List

from . import tao6_mapping
from .correspondence import TAO6_TO_TAO5
from .dataloaders import metainfo, palette_entries, split_dataset
from .gpus import num_processes
from .ignored import IGNORED, IGNORED_TAO6, ignored_settings, ignored_table, ignored_table_tao6
from .rules import Ignored, Rule, Whole, apply_rules
from .schema import ExperimentSpec
from .skeleton import skeleton
from .spec_warnings import spec_warnings
from .tao5_mapping import MAPPING, img_scale, mapping_table, results_dir, slide_test_cfg, test_scale
from .tao6 import tao6_of
from .tao6_mapping import MAPPING_TAO6
from .writer import resolve_refs

__all__ = ['IGNORED', 'IGNORED_TAO6', 'MAPPING', 'MAPPING_TAO6', 'TAO6_TO_TAO5', 'Ignored',
           'Rule', 'Whole', 'ignored_settings', 'ignored_table', 'ignored_table_tao6',
           'img_scale', 'mapping_table', 'metainfo', 'num_processes', 'palette_entries',
           'recorded_spec', 'results_dir', 'skeleton', 'slide_test_cfg', 'spec_to_config',
           'spec_warnings', 'split_dataset', 'test_pipeline_of', 'test_scale']


def test_pipeline_of(spec: ExperimentSpec) -> List[dict]:
    """The test pipeline a spec's config gets (what loads its masks)."""
    tao6 = tao6_of(spec)
    if tao6 is not None:
        return tao6_mapping.test_pipeline(tao6)
    return copy.deepcopy(skeleton()['test_pipeline'])


def recorded_spec(spec: ExperimentSpec) -> Dict[str, Any]:
    """The resolved spec as data, in the user's own form (a TAO 6/7 spec as TAO 6)."""
    tao6 = tao6_of(spec)
    return dataclasses.asdict(tao6 if tao6 is not None else spec)


def spec_to_config(spec: ExperimentSpec, resolve: bool = True) -> Dict[str, Any]:
    """The mmengine config (a plain dict) for a validated spec.

    Args:
        spec: A validated spec.
        resolve: Replace :class:`~mmseg_tao.spec.writer.Ref` entries (e.g. the pipeline
            inside each dataset) by copies of what they name; False keeps them, for writing
            a config file in which they become references to the top-level variables.
    """
    cfg = skeleton()
    apply_rules(cfg, MAPPING, spec)
    if tao6_of(spec) is not None:
        apply_rules(cfg, MAPPING_TAO6, spec)
    if resolve:
        cfg = resolve_refs(cfg, cfg)
    cfg['custom_imports'] = dict(imports=['mmseg_tao'], allow_failed_imports=False)
    # The resolved spec, as data, for ExperimentRecordHook and the TAO-style command.
    cfg['tao_spec'] = recorded_spec(spec)
    return cfg
