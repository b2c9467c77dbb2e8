"""TAO 6.x / 7.x specs: telling the schemas apart, and the TAO 5 form the translator reads.

A TAO 6/7 spec is validated against :class:`~mmseg_tao.spec.tao6_schema.Tao6Spec`, then
converted (:func:`from_tao6`, by the correspondence table
:data:`~mmseg_tao.spec.correspondence.LINKS`) into a :class:`Tao6Experiment`: the TAO 5
spec of the same experiment (every setting the two schemas share, in TAO 5's terms, so the
one translator handles both) carrying the TAO 6 spec itself for what only TAO 6 has (its
augmentation, mask rule, epochs, optimizers, schedules), which
:data:`~mmseg_tao.spec.tao6_mapping.MAPPING_TAO6` reads.
"""
from dataclasses import dataclass
from typing import List, Optional

from .backbones import BACKBONES, TAO6_ONLY_BACKBONES
from .correspondence import LINKS
from .epochs import count_images  # noqa: F401  (re-exported; defined here before)
from .links import Context, to_tao5_form
from .schema import ExperimentSpec
from .tao6_schema import Tao6Spec
from .task_checks import check_tao6_for_task  # noqa: F401  (re-exported; defined here before)

# Keys only a TAO 6/7 spec has (TAO 5 has neither).
TAO6_MARKERS = ('dataset.segment', 'train.num_epochs')


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
    return (f'model.backbone.type: {name!r} ({TAO6_ONLY_BACKBONES[name]}) is a TAO 6/7 '
            f'backbone that mmseg-tao does not provide; supported: {", ".join(BACKBONES)}')


def from_tao6(spec: Tao6Spec, task: Optional[str], notes: List[str],
              problems: List[str]) -> Tao6Experiment:
    """The TAO 5 form of a validated TAO 6/7 spec (see the module docstring).

    Args:
        spec: The TAO 6/7 spec (GPU counts already reconciled).
        task: The task it is loaded for: epochs become iterations from the number of
            training images when it trains (or is None, as for ``spec2cfg``).
        notes: Receives the epochs -> iterations arithmetic.
        problems: Receives what makes the conversion impossible (no training images).
    """
    out = Tao6Experiment(tao6=spec)
    to_tao5_form(LINKS, spec, out, Context(task=task, notes=notes, problems=problems))
    return out


def tao6_of(spec: ExperimentSpec) -> Optional[Tao6Spec]:
    """The TAO 6/7 spec a :class:`Tao6Experiment` came from; None for a TAO 5 spec."""
    return getattr(spec, 'tao6', None)
