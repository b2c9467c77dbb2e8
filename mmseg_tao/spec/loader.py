"""Read a TAO experiment spec (YAML, as data only), apply overrides, check it for a task."""
import dataclasses
import os.path as osp
import re
import typing
from typing import Iterable, List, Optional, Sequence, Tuple

import yaml

from ..datasets.palette import Palette, PaletteError
from .schema import ExperimentSpec
from .tao6 import check_tao6_for_task, detect_version, from_tao6, unsupported_backbone
from .tao6_schema import Tao6Spec
from .validation import SpecError, build, get_path

TASKS = ('train', 'evaluate', 'inference', 'export')

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
}
# Spellings of TAO's documentation that its code does not read: (section path, documented
# key, key in TAO's code and specs).
DOC_ALIASES = [('model.decode_head.decoder_params', 'embed_dims', 'embed_dim')]
# Sections with num_gpus / gpu_ids (export runs on one device).
GPU_SECTIONS = ('train', 'evaluate', 'inference')
VALIDATION_REQUIREMENTS = [('dataset.val_dataset.img_dir', 'validation images'),
                           ('dataset.val_dataset.ann_dir', 'validation masks')]


def read_yaml(path: str) -> dict:
    """Parse a spec file with ``yaml.safe_load`` (no tags, no code)."""
    if not osp.isfile(path):
        raise SpecError([f'{path}: no such file'])
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' (line {mark.line + 1}, column {mark.column + 1})' if mark else ''
        problem = getattr(err, 'problem', None) or str(err)
        raise SpecError([f'not valid YAML{where}: {problem}'], source=path) from None
    except UnicodeDecodeError as err:
        raise SpecError([f'not UTF-8 text: {err}'], source=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError([f'the top level is {type(data).__name__}, expected a mapping of '
                         'sections (model, dataset, train, ...)'], source=path)
    return data


_INTERPOLATION = re.compile(r'\$\{([^}]*)\}')
MISSING = '???'


def resolve_interpolations(data: dict) -> List[str]:
    """Resolve OmegaConf-style references in place, as TAO's Hydra loader does:
    ``${results_dir}/train`` takes another key's value (a string that is exactly one
    reference keeps that value's type); ``???`` (OmegaConf's MISSING) becomes null, so a task
    that needs the key says so. Resolvers (``${oc.env:HOME}``) are refused: specs are data.

    Returns:
        One message per reference that cannot be resolved.
    """
    problems: List[str] = []

    def lookup(path: str):
        node = data
        for part in path.split('.'):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(path)
            node = node[part]
        return node

    def resolve(value, where: str, seen: Tuple[str, ...]):
        if isinstance(value, dict):
            return {k: resolve(v, f'{where}.{k}' if where else str(k), seen)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, f'{where}[{i}]', seen) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        if value.strip() == MISSING:
            return None
        refs = list(_INTERPOLATION.finditer(value))
        if not refs:
            return value
        parts = {}
        for m in refs:
            ref = m.group(1).strip()
            if ':' in ref:
                problems.append(f'{where}: {value!r} uses a resolver ({ref.split(":")[0]}); '
                                'specs are data, only ${key.path} references are resolved')
                return value
            if ref in seen:
                problems.append(f'{where}: {value!r} refers to itself through '
                                f'{" -> ".join(seen + (ref, ))}')
                return value
            try:
                target = lookup(ref)
            except KeyError:
                problems.append(f'{where}: {value!r} refers to {ref}, which the spec does '
                                'not set')
                return value
            parts[m.group(0)] = resolve(target, ref, seen + (ref, ))
        if len(refs) == 1 and refs[0].group(0) == value.strip():
            return parts[refs[0].group(0)]
        for text, target in parts.items():
            if target is None:
                problems.append(f'{where}: {value!r} refers to {text[2:-1]}, which is not '
                                'set (null or ???)')
                return value
            value = value.replace(text, str(target))
        return value

    data.update(resolve(data, '', ()))
    # A key that several values refer to is resolved (and its problem found) once per
    # reference; report each problem once.
    return list(dict.fromkeys(problems))


def _field_type(path: str, root=ExperimentSpec):
    """Schema type of a dotted spec path, or None if the path is unknown."""
    tp = root
    for part in path.split('.'):
        while typing.get_origin(tp) is typing.Union:
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if not dataclasses.is_dataclass(tp):
            return None
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return None
        tp = hints[part]
    return tp


def _is_str_type(tp) -> bool:
    if tp is str:
        return True
    return typing.get_origin(tp) is typing.Union and str in typing.get_args(tp) and not any(
        typing.get_origin(a) in (list, typing.List) for a in typing.get_args(tp))


def parse_override(text: str, root=ExperimentSpec) -> Tuple[str, object]:
    """``'a.b.c=value'`` -> (``'a.b.c'``, typed value).

    The value is YAML (numbers, true/false, null, ``[1, 2]``) except for string fields,
    which take the text as it is (``results_dir=123`` is the directory ``'123'``).
    """
    if '=' not in text:
        raise SpecError([f'override {text!r}: expected key=value, e.g. train.max_iters=100'])
    key, raw = text.split('=', 1)
    key = key.strip()
    if not key or any(not p for p in key.split('.')):
        raise SpecError([f'override {text!r}: {key!r} is not a dotted key path'])
    if _is_str_type(_field_type(key, root)) and raw.strip().lower() not in ('null', 'none', '~'):
        return key, raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else ''
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(data: dict, overrides: Iterable[str], root=ExperimentSpec) -> dict:
    """Set each ``key=value`` into the raw spec (validated with the rest); ``root`` is the
    schema that types the values (TAO 5's or TAO 6's)."""
    problems = []
    for text in overrides:
        try:
            key, value = parse_override(text, root)
        except SpecError as err:
            problems += err.problems
            continue
        node = data
        parts = key.split('.')
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f'override {text!r}: {".".join(parts[:i + 1])} is '
                                f'{child!r}, not a section')
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise SpecError(problems)
    return data


def reconcile_gpus(num_gpus: int, gpu_ids: Sequence[int]) -> Tuple[int, List[int]]:
    """TAO's launcher rule (``nvidia_tao_pytorch`` entrypoint, 5.x): when the two disagree,
    the count is ``max(num_gpus, len(gpu_ids))`` and a list of another length becomes
    ``range(count)``.

    >>> reconcile_gpus(2, [0])
    (2, [0, 1])
    >>> reconcile_gpus(1, [2, 3])
    (2, [2, 3])
    """
    ids = list(gpu_ids or [])
    if num_gpus == len(ids):
        return num_gpus, ids
    num = max(num_gpus, len(ids))
    return num, ids if len(ids) == num else list(range(num))


def _resolve_aliases(data: dict, notes: List[str], problems: List[str]) -> None:
    """Accept the documented spellings in :data:`DOC_ALIASES` for the code's keys."""
    for section, alias, key in DOC_ALIASES:
        node = data
        for part in section.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or alias not in node:
            continue
        if key in node and node[key] != node[alias]:
            problems.append(f'{section}.{alias}: {node[alias]!r} disagrees with '
                            f'{section}.{key}: {node[key]!r}; they are one setting '
                            f'(TAO reads {key})')
            continue
        node[key] = node.pop(alias)
        notes.append(f'{section}.{alias} read as {section}.{key} (the spelling of TAO\'s '
                     'documentation; TAO\'s code reads the latter)')


def _resolve_gpus(data: dict, spec: ExperimentSpec, notes: List[str]) -> None:
    """Apply TAO's gpu rules to the built spec: ``gpu_id`` (TAO < 5.5) stands for
    ``gpu_ids: [gpu_id]`` when ``gpu_ids`` is not given, then :func:`reconcile_gpus`."""
    for task in GPU_SECTIONS:
        section = getattr(spec, task)
        raw = data.get(task) if isinstance(data.get(task), dict) else {}
        if getattr(section, 'gpu_id', None) is not None and 'gpu_ids' not in raw:
            section.gpu_ids = [section.gpu_id]
        _reconcile_section(task, section, notes)


def _reconcile_section(task: str, section, notes: List[str]) -> None:
    """:func:`reconcile_gpus` on a task section, noting what changed."""
    num, ids = reconcile_gpus(section.num_gpus, section.gpu_ids)
    if (num, ids) != (section.num_gpus, section.gpu_ids):
        notes.append(f'{task}.num_gpus ({section.num_gpus}) and {task}.gpu_ids '
                     f'({section.gpu_ids}) disagree: using num_gpus {num}, gpu_ids {ids} '
                     "(TAO's rule)")
        section.num_gpus, section.gpu_ids = num, ids


def check_for_task(spec: ExperimentSpec, task: Optional[str]) -> List[str]:
    """Problems that make ``spec`` unusable for ``task`` (None: any task)."""
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
    if spec.dataset.palette:
        try:
            Palette.of(spec.dataset.palette)
        except PaletteError as err:
            problems += err.problems
    t = spec.train
    if t.validate and t.validation_interval is None:
        problems.append('train.validation_interval: required when train.validate is true')
    return problems


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
    root = Tao6Spec if version == 6 else ExperimentSpec
    try:
        apply_overrides(data, overrides, root)
    except SpecError as err:
        raise SpecError(err.problems, source=path) from None
    problems = resolve_interpolations(data)
    notes = notes if notes is not None else []
    if version == 6:
        spec = _load_tao6(data, task, notes, problems)
    else:
        _resolve_aliases(data, notes, problems)
        spec = build(ExperimentSpec, data, '', problems)
        if not problems:
            _resolve_gpus(data, spec, notes)
            problems += check_for_task(spec, task)
    if problems:
        raise SpecError(problems, source=path)
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
    for task_name in GPU_SECTIONS:
        _reconcile_section(task_name, getattr(spec6, task_name), notes)
    problems += check_tao6_for_task(spec6, task)
    if problems:
        return spec6
    spec = from_tao6(spec6, task, notes, problems)
    if spec.dataset.palette:
        try:
            Palette.of(spec.dataset.palette)
        except PaletteError as err:
            problems += [p.replace('dataset.palette', 'dataset.segment.palette')
                         for p in err.problems]
    return spec

