"""What a checkpoint layout is, the registry of known layouts, and the two jobs that need
no model: recognise a state dict's layout and convert it to the package's.

A layout is one :class:`Layout` unit, a recogniser plus a converter, registered with
:func:`register_layout`; the units live in the sibling modules (``nvlabs``, ``mmseg_mit``,
``hf_segformer``). Checking a converted state dict against a model is :mod:`.fit`'s job.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import (
    Callable,
    Collection,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

import torch

Tensor = torch.Tensor


class ConversionResult(NamedTuple):
    """What :func:`convert_state_dict` produced.

    Attributes:
        state_dict: Converted tensors, in the package's layout.
        layout: Name of the source layout.
        ignored: Source keys deliberately left out (classifier heads of ImageNet files,
            TAO's unused ``conv_seg``), each with the reason.
        unmatched: Source keys no rule of the layout knew (to be reported).
    """
    state_dict: 'OrderedDict[str, Tensor]'
    layout: str
    ignored: Dict[str, str]
    unmatched: List[str]


#: A converter fills ``result`` (created empty for it) from the source state dict.
Converter = Callable[[Mapping[str, Tensor], ConversionResult], None]


@dataclass(frozen=True)
class Layout:
    """One checkpoint layout: how to recognise it and how to convert it.

    Attributes:
        name: Short name, as logs, reports and ``--layout`` of the converter tool use it.
        summary: Whose checkpoints have this layout.
        recognise: Given the keys of a (unwrapped) state dict, whether they are in this
            layout. Layouts are tried in registration order; the first that says yes wins.
        convert: A :data:`Converter` to the package's names.
        native: The keys already are the package's (a whole-model state dict loads as it
            is; :attr:`convert` only drops what backbones have no place for).
    """
    name: str
    summary: str
    recognise: Callable[[Sequence[str]], bool]
    convert: Converter
    native: bool = False


#: Known layouts by name, in the order they are tried.
LAYOUTS: 'OrderedDict[str, Layout]' = OrderedDict()


def register_layout(layout: Layout, before: Optional[str] = None) -> Layout:
    """Add ``layout`` to :data:`LAYOUTS` (last, or just before the layout ``before``).

    A layout whose keys another recogniser also accepts (e.g. the same names under an
    extra prefix) must be registered before that one.

    Raises:
        ValueError: The name is taken, or ``before`` is not a registered layout.
    """
    if layout.name in LAYOUTS:
        raise ValueError(f'checkpoint layout {layout.name!r} is already registered')
    if before is not None and before not in LAYOUTS:
        raise ValueError(f'no checkpoint layout {before!r} to register {layout.name!r} before')
    items = list(LAYOUTS.items())
    at = len(items) if before is None else [name for name, _ in items].index(before)
    items.insert(at, (layout.name, layout))
    LAYOUTS.clear()
    LAYOUTS.update(items)
    return layout


def keys_matching(*patterns: str) -> Callable[[Sequence[str]], bool]:
    """A recogniser: whether any key contains a match of any of ``patterns``."""
    compiled = [re.compile(p) for p in patterns]
    return lambda keys: any(p.search(k) for p in compiled for k in keys)


# ---------------------------------------------------------------- unused classifier
# mmseg's BaseDecodeHead classifier: TAO 5 saves it although TAO's head (and ours)
# classifies with linear_pred. The one rule for it: a model without such keys drops them.
_UNUSED_CLASSIFIER = re.compile(r'decode_head\.conv_seg\.')
UNUSED_CLASSIFIER_REASON = "TAO's unused conv_seg (the classifier is linear_pred)"


def is_unused_classifier(key: str) -> bool:
    """Whether ``key`` belongs to mmseg's ``decode_head.conv_seg`` (absent from TAO's head)."""
    return _UNUSED_CLASSIFIER.match(key) is not None


def drop_unused_classifier(state_dict: Dict[str, Tensor],
                           model_keys: Optional[Collection[str]] = None) -> Dict[str, str]:
    """Remove ``decode_head.conv_seg.*`` keys the model has no place for, in place.

    Args:
        state_dict: Whole-model tensors in the package's layout.
        model_keys: The model's state-dict keys; None: the package's own head (no conv_seg).

    Returns:
        dict: The removed keys, each with the reason.
    """
    dropped = [k for k in state_dict if is_unused_classifier(k)
               and (model_keys is None or k not in model_keys)]
    for key in dropped:
        del state_dict[key]
    return dict.fromkeys(dropped, UNUSED_CLASSIFIER_REASON)


# ---------------------------------------------------------------- renaming rules
Rule = Tuple[str, str]


def stage(index: str) -> str:
    """A 0-based stage index as the package's 1-based stage number."""
    return str(int(index) + 1)


def rename(key: str, rules: Iterable[Rule]) -> Optional[str]:
    """The target name of ``key`` by the first rule (source regex, target template) that
    matches it whole, or None. Templates use the regex's named groups; group ``s`` (a
    stage) is shifted from 0- to 1-based."""
    for pattern, template in rules:
        m = re.fullmatch(pattern, key)
        if m:
            groups = {k: (stage(v) if k == 's' else v) for k, v in m.groupdict().items()}
            return template.format(**groups)
    return None


def split_prefix(key: str, markers: Tuple[str, ...]) -> Tuple[str, str]:
    """Split ``key`` into (whatever precedes the first marker, rest)."""
    for marker in markers:
        idx = key.find(marker)
        if idx == 0 or (idx > 0 and key[idx - 1] == '.'):
            return key[:idx], key[idx:]
    return '', key


# ---------------------------------------------------------------- recognise, convert
def detect_layout(state_dict: Mapping[str, Tensor]) -> str:
    """Name of the layout of ``state_dict``: the first of :data:`LAYOUTS` that recognises it.

    Raises:
        ValueError: No known SegFormer / FAN layout matches.
    """
    keys = list(state_dict)
    for layout in LAYOUTS.values():
        if layout.recognise(keys):
            return layout.name
    sample = ', '.join(keys[:5])
    raise ValueError('unrecognised checkpoint layout: expected a SegFormer MiT (TAO 5 / '
                     'NVlabs, TAO 6/7, mmseg or Hugging Face names) or a FAN hybrid state '
                     f'dict; first keys: {sample}')


def convert_state_dict(state_dict: Mapping[str, Tensor],
                       layout: Optional[str] = None) -> ConversionResult:
    """Convert a SegFormer / FAN state dict to this package's layout.

    Args:
        state_dict: Tensors keyed by the source layout's names.
        layout: Force a layout instead of detecting it.

    Returns:
        ConversionResult: converted tensors, the layout, ignored and unmatched keys.
    """
    name = layout or detect_layout(state_dict)
    if name not in LAYOUTS:
        raise ValueError(f'unknown layout {name!r}; expected one of {tuple(LAYOUTS)}')
    result = ConversionResult(OrderedDict(), name, {}, [])
    LAYOUTS[name].convert(state_dict, result)
    return result


def to_model_layout(state_dict: Mapping[str, Tensor],
                    model_keys: Optional[Collection[str]] = None
                    ) -> Tuple[str, 'OrderedDict[str, Tensor]', int]:
    """A whole-model state dict in this package's layout, as loading converts it.

    Args:
        state_dict: Whole-model tensors in any known layout.
        model_keys: The model's state-dict keys; given, the unused ``conv_seg`` of TAO
            checkpoints is dropped when the model has none (:func:`drop_unused_classifier`).

    Returns:
        (layout, tensors, number converted): keys a foreign layout cannot convert keep
        their names, so that loading or checking reports them.

    Raises:
        ValueError: No known layout matches.
    """
    name = detect_layout(state_dict)
    if LAYOUTS[name].native:
        out, count = OrderedDict(state_dict), 0
    else:
        result = convert_state_dict(state_dict, name)
        out, count = OrderedDict(result.state_dict), len(result.state_dict)
        out.update((k, state_dict[k]) for k in result.unmatched if k in state_dict)
    if model_keys is not None:
        drop_unused_classifier(out, model_keys)
    return name, out, count
