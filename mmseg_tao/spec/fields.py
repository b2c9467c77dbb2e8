"""Building blocks of the spec schemas: bounded fields and the field groups that several
sections share (declared once, composed by inheritance).

A field's ``metadata`` bounds its value (``choices``, ``ge``, ``gt``, ``le``, ``length``);
:func:`~mmseg_tao.spec.validation.build` enforces them.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

# Bounds of a probability.
PROBABILITY = dict(ge=0.0, le=1.0)


def spec_field(default: Any = None, *, factory: Optional[Callable[[], Any]] = None,
               **bounds) -> Any:
    """A dataclass field with a default (or a ``factory`` for mutable ones) and bounds.

    Args:
        default: The default value.
        factory: Makes the default (lists, nested sections); replaces ``default``.
        **bounds: ``choices``, ``ge``, ``gt``, ``le``, ``length``.
    """
    if factory is not None:
        return field(default_factory=factory, metadata=bounds)
    return field(default=default, metadata=bounds)


@dataclass
class GpuFields:
    """The GPUs of a task section; TAO reconciles the two to the larger
    (:func:`~mmseg_tao.spec.gpus.reconcile_gpus`)."""
    num_gpus: int = spec_field(1, ge=1)
    gpu_ids: List[int] = spec_field(factory=lambda: [0], ge=0)


@dataclass
class GpuNodeFields(GpuFields):
    """:class:`GpuFields` and the number of machines: ``train.num_nodes`` machines of
    ``num_gpus`` processes each (:mod:`mmseg_tao.apis.nodes`); evaluate and inference run on
    one machine."""
    num_nodes: int = spec_field(1, ge=1)
