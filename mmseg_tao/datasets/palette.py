"""TAO palettes: mask values and colours to training ids, with class merges.

A TAO palette is a list of entries ``{seg_class, label_id, mapping_class, rgb}``:
``label_id`` is the value of the class in id masks, ``rgb`` its colour in colour masks and
overlays, and ``mapping_class`` the class it is trained as (itself, or another entry's
``seg_class`` to merge into). Training ids are the distinct mapping targets, ordered by the
``label_id`` of the entry that defines each target and numbered 0..K-1. Class names and
colours of the trained classes come from those defining entries. Entries may share a colour
(TAO accepts it): for entries merged into one class that is a plain merge; a colour shared by
entries of different classes cannot be read from a colour mask, so such masks are refused
when they use it (id masks never look at colours).

Masks are remapped in one table lookup (never in place value by value), so any
permutation, a swap of 0 and 1 included, maps correctly.

:meth:`Palette.of` is the one way the package turns entries into a palette: the spec loader,
the translator, each dataset split, inference and export all get the same object for the
same entries, validated and derived once per process.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

IGNORE_INDEX = 255


class PaletteError(ValueError):
    """One or more problems in a palette; the message lists all of them."""

    def __init__(self, problems: List[str]):
        self.problems = problems
        super().__init__('\n'.join(problems))


@dataclass(frozen=True)
class Palette:
    """A validated palette.

    Attributes:
        classes: Name of each training id.
        colors: RGB colour of each training id.
        label_map: Mask value (``label_id``) -> training id.
        rgb_map: Colour (``rgb``) -> training id, for colour masks.
        entries: The source entries, as given.
        ambiguous_rgb: Colours shared by entries of different training classes -> the
            indices of those entries; not in ``rgb_map``.
    """
    classes: Tuple[str, ...]
    colors: Tuple[Tuple[int, int, int], ...]
    label_map: Dict[int, int]
    rgb_map: Dict[Tuple[int, int, int], int]
    entries: Tuple[Mapping, ...]
    ambiguous_rgb: Dict[Tuple[int, int, int], Tuple[int, ...]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def of(cls, entries: Union['Palette', Sequence[Any]],
           where: str = 'dataset.palette') -> 'Palette':
        """The palette of ``entries``, built once per process for equal entries.

        Args:
            entries: Palette entries as mappings (a config's ``tao_palette``) or as the
                spec's ``PaletteEntry`` dataclasses; a :class:`Palette` is returned as is.
            where: Key path named in error messages.

        Raises:
            PaletteError: As :meth:`from_entries` (failures are not cached).
        """
        if isinstance(entries, Palette):
            return entries
        entries = [dataclasses.asdict(e) if dataclasses.is_dataclass(e) else dict(e)
                   for e in entries or ()]
        try:
            key = tuple(tuple(sorted((k, _frozen(v)) for k, v in e.items())) for e in entries)
            hash(key)
        except TypeError:  # a malformed value: let validation name it
            return cls.from_entries(entries, where)
        palette = _BUILT.get(key)
        if palette is None:
            palette = cls.from_entries(entries, where)
            if len(_BUILT) >= _MAX_BUILT:
                _BUILT.pop(next(iter(_BUILT)))
            _BUILT[key] = palette
        return palette

    @classmethod
    def from_entries(cls, entries: Sequence[Mapping],
                     where: str = 'dataset.palette') -> 'Palette':
        """Validate ``entries`` and derive the mapping.

        Raises:
            PaletteError: Listing every problem, each with ``where[i].key``.
        """
        problems: List[str] = []
        if not entries:
            raise PaletteError([f'{where}: empty; expected at least one class entry'])
        by_class: Dict[str, int] = {}
        by_label: Dict[int, int] = {}
        for i, e in enumerate(entries):
            name, label = e.get('seg_class'), e.get('label_id')
            rgb = tuple(e.get('rgb') or ())
            if name in by_class:
                problems.append(f'{where}[{i}].seg_class: {name!r} is already defined by '
                                f'{where}[{by_class[name]}]')
            else:
                by_class[name] = i
            if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label <= 254:
                problems.append(f'{where}[{i}].label_id: {label!r} is not a mask value in '
                                f'0..254 (255 is the ignore index)')
            elif label in by_label:
                problems.append(f'{where}[{i}].label_id: {label} is already used by '
                                f'{where}[{by_label[label]}] '
                                f'({entries[by_label[label]].get("seg_class")!r})')
            else:
                by_label[label] = i
            if len(rgb) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in rgb):
                problems.append(f'{where}[{i}].rgb: {list(rgb)} is not three integers in '
                                '0..255')
        for i, e in enumerate(entries):
            target = e.get('mapping_class', e.get('seg_class'))
            if target not in by_class:
                problems.append(f'{where}[{i}].mapping_class: {target!r} names no class; '
                                f'expected one of {sorted(map(str, by_class))}')
            elif entries[by_class[target]].get('mapping_class',
                                               target) != target:
                problems.append(f'{where}[{i}].mapping_class: {target!r} is itself merged '
                                f'into {entries[by_class[target]].get("mapping_class")!r}; '
                                'map to the final class directly')
        if problems:
            raise PaletteError(problems)

        targets = sorted({e.get('mapping_class', e['seg_class']) for e in entries},
                         key=lambda c: entries[by_class[c]]['label_id'])
        train_id = {c: t for t, c in enumerate(targets)}
        label_map: Dict[int, int] = {}
        by_rgb: Dict[Tuple[int, int, int], List[int]] = {}
        for i, e in enumerate(entries):
            label_map[e['label_id']] = train_id[e.get('mapping_class', e['seg_class'])]
            by_rgb.setdefault(tuple(e['rgb']), []).append(i)
        rgb_map, ambiguous = {}, {}
        for rgb, users in by_rgb.items():
            ids = {label_map[entries[i]['label_id']] for i in users}
            if len(ids) == 1:
                rgb_map[rgb] = ids.pop()
            else:
                ambiguous[rgb] = tuple(users)
        return cls(
            classes=tuple(targets),
            colors=tuple(tuple(entries[by_class[c]]['rgb']) for c in targets),
            label_map=label_map,
            rgb_map=rgb_map,
            entries=tuple(entries),
            ambiguous_rgb=ambiguous)

    def describe_ambiguous(self, rgb: Tuple[int, int, int],
                           where: str = 'dataset.palette') -> str:
        """Which entries share ``rgb`` and the classes they map to."""
        def entry(i):
            e = self.entries[i]
            return (f'{where}[{i}] ({e.get("seg_class")!r} -> '
                    f'{e.get("mapping_class", e.get("seg_class"))!r})')
        users = ', '.join(entry(i) for i in self.ambiguous_rgb[rgb])
        return f'colour {list(rgb)} is shared by {users}, which map to different classes'

    def id_lut(self, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
        """256-entry lookup table: mask value -> training id (others -> ignore_index)."""
        luts = self.__dict__.setdefault('_luts', {})  # cache (the dataclass is frozen)
        if ignore_index not in luts:
            lut = np.full(256, ignore_index, dtype=np.uint8)
            for label, t in self.label_map.items():
                lut[label] = t
            lut[IGNORE_INDEX] = ignore_index
            luts[ignore_index] = lut
        return luts[ignore_index]

    @property
    def is_identity(self) -> bool:
        """Whether every label_id already is its training id (no remapping needed)."""
        return all(label == t for label, t in self.label_map.items())

    def map_ids(self, mask: np.ndarray, ignore_index: int = IGNORE_INDEX,
                known_only: bool = False) -> np.ndarray:
        """Remap an id mask (uint8 values) to training ids in one lookup.

        ``known_only``: the caller checked that the mask holds only label ids and the
        ignore index, so an identity palette returns the mask itself.
        """
        if known_only and ignore_index == IGNORE_INDEX and self.is_identity:
            return mask
        return self.id_lut(ignore_index)[mask]

    def map_rgb(self, mask: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
        """Map an HxWx3 RGB colour mask to training ids; unknown colours -> ignore."""
        packed = (mask[..., 0].astype(np.int32) << 16) | (mask[..., 1].astype(np.int32) << 8) \
            | mask[..., 2].astype(np.int32)
        out = np.full(mask.shape[:2], ignore_index, dtype=np.uint8)
        for (r, g, b), t in self.rgb_map.items():
            out[packed == ((r << 16) | (g << 8) | b)] = t
        return out

    def unknown_ids(self, mask: np.ndarray) -> List[int]:
        """Values in a uint8 id mask that no entry defines (255 excepted)."""
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
        known = set(self.label_map) | {IGNORE_INDEX}
        return [int(v) for v in present if int(v) not in known]

    def unknown_colors(self, mask: np.ndarray) -> List[Tuple[int, int, int]]:
        """Colours in an RGB mask that no entry defines."""
        return [rgb for rgb in _colors(mask)
                if rgb not in self.rgb_map and rgb not in self.ambiguous_rgb]

    def ambiguous_colors(self, mask: np.ndarray) -> List[Tuple[int, int, int]]:
        """Colours in an RGB mask that entries of different classes share."""
        if not self.ambiguous_rgb:
            return []
        return [rgb for rgb in _colors(mask) if rgb in self.ambiguous_rgb]


_MAX_BUILT = 64
_BUILT: Dict[tuple, Palette] = {}  # entries (as a hashable key) -> their palette


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _colors(mask: np.ndarray) -> List[Tuple[int, int, int]]:
    return [tuple(int(c) for c in rgb) for rgb in np.unique(mask.reshape(-1, 3), axis=0)]
