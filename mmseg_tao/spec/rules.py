"""The rows of the spec -> config tables: what a rule is and how the rules fill a config.

A :class:`Rule` names the config path it sets, the spec paths it reads and how the value
is made: given only one source path it copies that value; otherwise its conversion takes
the source values, or the whole spec (:class:`Whole`), and its note says what it computes,
so the documentation generated from the tables never calls a computed value a copy.
"""
import copy
from dataclasses import dataclass
from typing import Any, Callable, List, NamedTuple, Sequence, Tuple, Union

from .validation import get_path


class Whole(NamedTuple):
    """A conversion that takes the whole spec (values derived from several sections);
    the rule's sources then document what it reads."""
    fn: Callable[[Any], Any]


@dataclass(frozen=True)
class Rule:
    """Config path <- the spec value at one path (copied) or a conversion of spec values.

    Args:
        target: The config path set (see :func:`set_config_path`).
        sources: The spec path(s) read: one path (a string) for a copy.
        convert: None to copy the one source; a function of the source values; or a
            :class:`Whole` function of the spec.
        note: What the rule does; required unless it copies.
    """
    target: str
    sources: Union[str, Tuple[str, ...]]
    convert: Union[None, Callable[..., Any], Whole] = None
    note: str = ''

    def __post_init__(self):
        if isinstance(self.sources, str):
            object.__setattr__(self, 'sources', (self.sources, ))
        if self.convert is None and len(self.sources) != 1:
            raise ValueError(f'{self.target}: a copy reads one source, not {self.sources}')
        if self.convert is not None and not self.note:
            raise ValueError(f'{self.target}: a computed rule needs a note saying what it '
                             'computes')

    @property
    def copies(self) -> bool:
        """Whether the rule copies its source as it is."""
        return self.convert is None

    def value(self, spec) -> Any:
        """The config value for ``spec``."""
        if self.convert is None:
            return copy.deepcopy(get_path(spec, self.sources[0]))
        if isinstance(self.convert, Whole):
            return self.convert.fn(spec)
        return self.convert(*(get_path(spec, p) for p in self.sources))

    def row(self) -> Tuple[str, str, str]:
        """(config path, spec paths, rule) for the documentation."""
        return self.target, ', '.join(self.sources), self.note or 'copied'


class Ignored(NamedTuple):
    """A spec field accepted so that TAO specs load, with no effect here; setting it to
    anything but its default is reported."""
    source: str
    why: str


def set_config_path(cfg: dict, path: str, value: Any) -> None:
    """``cfg[path] = value``; ``[N]`` indexes a list, ``[Type]`` is the list's step of that
    ``type`` (pipeline steps are addressed by what they are, not where they are)."""
    node, parts = cfg, path.replace('[', '.[').split('.')
    for i, part in enumerate(parts):
        key: Any = part
        if part.startswith('['):
            inner = part[1:-1]
            key = int(inner) if inner.isdigit() else next(
                j for j, step in enumerate(node) if step.get('type') == inner)
        if i == len(parts) - 1:
            node[key] = value
        else:
            node = node[key]


def apply_rules(cfg: dict, rules: Sequence[Rule], spec) -> None:
    """Set every rule's value for ``spec`` into ``cfg``, in order (a later rule may
    replace what an earlier one set)."""
    for rule in rules:
        set_config_path(cfg, rule.target, rule.value(spec))


def rule_rows(rules: Sequence[Rule]) -> List[Tuple[str, str, str]]:
    """(config path, spec paths, rule) rows for the documentation."""
    return [rule.row() for rule in rules]
