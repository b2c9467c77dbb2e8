"""Load a TAO experiment spec: read, override, resolve, validate, check for a task.

The steps live in their own modules (:mod:`~mmseg_tao.spec.yaml_reader`,
:mod:`~mmseg_tao.spec.overrides`, :mod:`~mmseg_tao.spec.interpolation`,
:mod:`~mmseg_tao.spec.aliases`, :mod:`~mmseg_tao.spec.gpus`,
:mod:`~mmseg_tao.spec.task_checks`); :func:`load_spec` runs them for the spec's TAO
version. Their names stay importable from here.
"""
from typing import Iterable, List, Optional

from .aliases import DOC_ALIASES, resolve_aliases
from .gpus import GPU_SECTIONS, reconcile_gpus, reconcile_sections
from .interpolation import MISSING, resolve_interpolations
from .overrides import apply_overrides, parse_override
from .schema import ExperimentSpec
from .tao6 import detect_version, from_tao6, unsupported_backbone
from .tao6_schema import Tao6Spec
from .task_checks import (
    TASK_REQUIREMENTS,
    TASKS,
    VALIDATION_REQUIREMENTS,
    check_for_task,
    check_palette,
    check_tao6_for_task,
)
from .validation import SpecError, build
from .yaml_reader import read_yaml

__all__ = ['DOC_ALIASES', 'GPU_SECTIONS', 'MISSING', 'TASKS', 'TASK_REQUIREMENTS',
           'VALIDATION_REQUIREMENTS', 'apply_overrides', 'check_for_task', 'load_spec',
           'parse_override', 'read_yaml', 'reconcile_gpus', 'resolve_aliases',
           'resolve_interpolations']


def load_spec(path: str, overrides: Iterable[str] = (), task: Optional[str] = None,
              notes: Optional[List[str]] = None,
              tao_version: Optional[int] = None) -> ExperimentSpec:
    """Read, override, validate and check a spec; every problem is reported at once.

    TAO 5.x specs and TAO 6.x / 7.x specs are both read: a spec with ``dataset.segment`` or
    ``train.num_epochs`` is TAO 6/7's (:func:`~mmseg_tao.spec.tao6.detect_version`); it is
    validated against the TAO 6 schema and returned in TAO 5's form
    (:class:`~mmseg_tao.spec.tao6.Tao6Experiment`, whose ``tao6`` is the TAO 6 spec).

    Args:
        path: The YAML spec.
        overrides: ``key=value`` strings (dotted paths of the spec's own schema).
        task: ``train``, ``evaluate``, ``inference`` or ``export`` to check what the task
            needs; None checks the spec alone.
        notes: If given, receives what the loader resolved on the user's behalf (e.g. the
            reconciled ``num_gpus`` / ``gpu_ids``, TAO 6 epochs as iterations), for the
            caller to show.
        tao_version: 5 or 6 to force a schema; None tells them apart.

    Raises:
        SpecError: listing every problem, each with its key path.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f'task must be one of {TASKS}, got {task!r}')
    if tao_version not in (None, 5, 6, 7):
        raise ValueError(f'tao_version must be 5 or 6 (7 reads as 6), got {tao_version!r}')
    data = read_yaml(path)
    version = 6 if tao_version in (6, 7) else tao_version or detect_version(data)
    try:
        apply_overrides(data, overrides, Tao6Spec if version == 6 else ExperimentSpec)
    except SpecError as err:
        raise SpecError(err.problems, source=path) from None
    problems = resolve_interpolations(data)
    notes = notes if notes is not None else []
    load = _load_tao6 if version == 6 else _load_tao5
    spec = load(data, task, notes, problems)
    if problems:
        raise SpecError(problems, source=path)
    return spec


def _load_tao5(data: dict, task: Optional[str], notes: List[str],
               problems: List[str]) -> ExperimentSpec:
    resolve_aliases(data, notes, problems)
    spec = build(ExperimentSpec, data, '', problems)
    if not problems:
        reconcile_sections(spec, notes, raw=data)
        problems += check_for_task(spec, task)
    return spec


def _load_tao6(data: dict, task: Optional[str], notes: List[str],
               problems: List[str]) -> ExperimentSpec:
    backbone = unsupported_backbone(data)
    if backbone:
        problems.append(backbone)
        # The backbone is reported above; validate the rest.
        data['model']['backbone'] = {k: v for k, v in data['model']['backbone'].items()
                                     if k != 'type'}
    spec6 = build(Tao6Spec, data, '', problems)
    if problems:
        return spec6
    reconcile_sections(spec6, notes)
    problems += check_tao6_for_task(spec6, task)
    if problems:
        return spec6
    spec = from_tao6(spec6, task, notes, problems)
    # The palette in TAO 5's form (label_ids as classes) is checked once, in the user's terms.
    problems += check_palette(spec.dataset.palette, where='dataset.segment.palette')
    return spec
