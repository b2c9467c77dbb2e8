"""The rows of the TAO 5 <-> TAO 6 correspondence and how they run, in either direction.

A :class:`Link` pairs TAO 6/7 spec paths with TAO 5 spec paths. Without a conversion the
values are copied (path by path); a :class:`Convert` maps the values, one function per
direction; a :class:`Custom` row reads and writes whole specs (several keys, the task, the
dataset on disk), its paths saying what it reads and writes. The one table of rows,
:data:`mmseg_tao.spec.correspondence.LINKS`, is run by :func:`to_tao5_form`
(``tao6.from_tao6``) and :func:`to_tao6_form` (``convert.to_tao6``), and documented by
:func:`doc_rows`.
"""
import copy
from dataclasses import dataclass, field
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

from .validation import get_path, set_path

Paths = Union[str, Tuple[str, ...]]


class Convert(NamedTuple):
    """Value conversions of a row, one per direction; None copies the values that way.

    ``to5`` takes the TAO 6 values (one argument per TAO 6 path) and returns the TAO 5 value,
    or a tuple of them when the row has several TAO 5 paths; ``to6`` is the reverse.
    """
    to5: Optional[Callable[..., Any]] = None
    to6: Optional[Callable[..., Any]] = None


class Custom(NamedTuple):
    """Conversions that read and write whole specs: ``to5(tao6_spec, tao5_spec, context)``
    and ``to6(tao5_spec, tao6_spec, context)``."""
    to5: Callable[..., None]
    to6: Callable[..., None]


def _paths(paths: Paths) -> Tuple[str, ...]:
    return (paths, ) if isinstance(paths, str) else tuple(paths)


@dataclass(frozen=True)
class Link:
    """TAO 6/7 spec paths <-> TAO 5 spec paths.

    Args:
        tao6: The TAO 6/7 path(s).
        tao5: The TAO 5 path(s).
        convert: None (copied path by path), a :class:`Convert` or a :class:`Custom`.
        note: What the conversion does; required for a conversion.
    """
    tao6: Paths
    tao5: Paths
    convert: Union[None, Convert, Custom] = None
    note: str = ''

    def __post_init__(self):
        object.__setattr__(self, 'tao6', _paths(self.tao6))
        object.__setattr__(self, 'tao5', _paths(self.tao5))
        copied = self.convert is None or (isinstance(self.convert, Convert) and
                                          None in self.convert)
        if copied and len(self.tao6) != len(self.tao5):
            raise ValueError(f'{self.tao6} <-> {self.tao5}: a copy needs as many paths on '
                             'each side')
        if self.convert is not None and not self.note:
            raise ValueError(f'{self.tao6} <-> {self.tao5}: a converted row needs a note '
                             'saying what the conversion does')


@dataclass
class Context:
    """What a conversion may need besides the two specs, and where it reports.

    Attributes:
        task: The task the spec is loaded for (None: any).
        notes: What was resolved on the user's behalf (TAO 6 epochs as iterations).
        problems: What makes the spec unusable (no training images to count).
        lost: Settings that have no counterpart in the target form.
    """
    task: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    lost: List[str] = field(default_factory=list)


def _run(links: Sequence[Link], src, dst, ctx: Context, to5: bool) -> None:
    for link in links:
        src_paths, dst_paths = (link.tao6, link.tao5) if to5 else (link.tao5, link.tao6)
        fn = None if link.convert is None else (link.convert.to5 if to5 else link.convert.to6)
        if isinstance(link.convert, Custom):
            fn(src, dst, ctx)
            continue
        values = [get_path(src, p) for p in src_paths]
        if fn is not None:
            out = fn(*values)
            values = list(out) if len(dst_paths) > 1 else [out]
        for path, value in zip(dst_paths, values):
            set_path(dst, path, copy.deepcopy(value))


def to_tao5_form(links: Sequence[Link], spec6, out5, ctx: Context) -> None:
    """Write the TAO 5 side of every row into ``out5`` from the TAO 6 spec ``spec6``."""
    _run(links, spec6, out5, ctx, to5=True)


def to_tao6_form(links: Sequence[Link], spec5, out6, ctx: Context) -> None:
    """Write the TAO 6 side of every row into ``out6`` from the TAO 5 spec ``spec5``."""
    _run(links, spec5, out6, ctx, to5=False)


def doc_rows(links: Sequence[Link]) -> List[Tuple[str, str]]:
    """(TAO 6/7 paths, TAO 5 form) rows for the documentation."""
    rows = []
    for link in links:
        if link.tao5 == link.tao6:
            target = 'the same key' if len(link.tao5) == 1 else 'the same keys'
        else:
            target = ', '.join(link.tao5)
        rows.append((', '.join(link.tao6), f'{target}; {link.note}' if link.note else target))
    return rows
