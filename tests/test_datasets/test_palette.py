"""Palette semantics: train ids, merges, swaps, colours (checked pixel by pixel)."""
import numpy as np
import pytest

from mmseg_tao.datasets import Palette, PaletteError


def entry(name, label, target=None, rgb=None):
    return dict(seg_class=name, label_id=label, mapping_class=target or name,
                rgb=rgb or [label, label, label])


def test_identity_and_order():
    p = Palette.from_entries([entry('b', 1), entry('a', 0), entry('c', 7)])
    # Ordered by the defining entry's label_id, not by name or list order.
    assert p.classes == ('a', 'b', 'c')
    assert p.label_map == {0: 0, 1: 1, 7: 2}
    mask = np.array([[0, 1, 7], [255, 3, 1]], np.uint8)
    np.testing.assert_array_equal(p.map_ids(mask, ignore_index=255),
                                  [[0, 1, 2], [255, 255, 1]])


def test_merge():
    p = Palette.from_entries([entry('road', 7), entry('lane', 3, 'road'), entry('car', 5),
                              entry('truck', 9, 'car'), entry('sky', 1)])
    assert p.classes == ('sky', 'car', 'road') and p.num_classes == 3
    mask = np.array([[7, 3, 5, 9, 1]], np.uint8)
    np.testing.assert_array_equal(p.map_ids(mask), [[2, 2, 1, 1, 0]])
    # Colours of the trained classes are the defining entries' colours.
    assert p.colors == ((1, 1, 1), (5, 5, 5), (7, 7, 7))


def test_swap_zero_and_one():
    """label 0 is class 'one' (train id 1) and label 1 is 'zero' (train id 0): a chained
    in-place remap would collapse both to one class."""
    entries = [dict(seg_class='zero', label_id=1, mapping_class='zero', rgb=[0, 0, 0]),
               dict(seg_class='one', label_id=0, mapping_class='one', rgb=[9, 9, 9])]
    p = Palette.from_entries(entries)
    assert p.classes == ('one', 'zero')  # ordered by label_id: 'one' has 0
    mask = np.array([[0, 1], [1, 0]], np.uint8)
    np.testing.assert_array_equal(p.map_ids(mask), [[0, 1], [1, 0]])
    # Swap through mapping_class: label 0 trains as B, label 1 as A.
    entries = [dict(seg_class='A', label_id=0, mapping_class='A', rgb=[0, 0, 0]),
               dict(seg_class='B', label_id=1, mapping_class='B', rgb=[1, 1, 1]),
               dict(seg_class='a', label_id=2, mapping_class='B', rgb=[2, 2, 2]),
               dict(seg_class='b', label_id=3, mapping_class='A', rgb=[3, 3, 3])]
    p = Palette.from_entries(entries)
    mask = np.array([[0, 1, 2, 3]], np.uint8)
    np.testing.assert_array_equal(p.map_ids(mask), [[0, 1, 1, 0]])


def test_rgb_masks():
    p = Palette.from_entries([entry('bg', 0, rgb=[0, 0, 0]), entry('fg', 1, rgb=[255, 0, 0]),
                              entry('edge', 2, 'fg', rgb=[0, 255, 0])])
    mask = np.zeros((2, 3, 3), np.uint8)
    mask[0, 1] = [255, 0, 0]
    mask[1, 2] = [0, 255, 0]
    mask[1, 0] = [7, 7, 7]  # not in the palette
    np.testing.assert_array_equal(p.map_rgb(mask), [[0, 1, 0], [255, 0, 1]])
    assert p.unknown_colors(mask) == [(7, 7, 7)]


def test_errors_listed_together():
    with pytest.raises(PaletteError) as err:
        Palette.from_entries([entry('a', 0), entry('a', 0, rgb=[1, 2, 3]),
                              entry('c', 300, 'zz')])
    problems = err.value.problems
    assert "dataset.palette[1].seg_class: 'a' is already defined by dataset.palette[0]" \
        in problems
    assert "dataset.palette[1].label_id: 0 is already used by dataset.palette[0] ('a')" \
        in problems
    assert any(p.startswith('dataset.palette[2].label_id: 300 is not a mask value')
               for p in problems)
    assert any(p.startswith("dataset.palette[2].mapping_class: 'zz' names no class")
               for p in problems)


def test_shared_colour_of_a_merge_is_legal():
    """TAO accepts entries that share a colour; merged into one class, the colour is just
    that class in colour masks, and id masks never look at colours."""
    p = Palette.from_entries([entry('bg', 0, rgb=[0, 0, 0]), entry('fg', 1, rgb=[255, 0, 0]),
                              entry('fg2', 2, 'fg', rgb=[255, 0, 0])])
    assert p.classes == ('bg', 'fg') and p.label_map == {0: 0, 1: 1, 2: 1}
    assert p.rgb_map == {(0, 0, 0): 0, (255, 0, 0): 1} and not p.ambiguous_rgb
    mask = np.zeros((1, 2, 3), np.uint8)
    mask[0, 1] = [255, 0, 0]
    np.testing.assert_array_equal(p.map_rgb(mask), [[0, 1]])
    assert p.ambiguous_colors(mask) == []


def test_colour_shared_by_different_classes():
    p = Palette.from_entries([entry('bg', 0, rgb=[0, 0, 0]), entry('a', 1, rgb=[9, 9, 9]),
                              entry('b', 2, rgb=[9, 9, 9])])
    np.testing.assert_array_equal(p.map_ids(np.array([[0, 1, 2]], np.uint8)), [[0, 1, 2]])
    assert p.ambiguous_rgb == {(9, 9, 9): (1, 2)} and (9, 9, 9) not in p.rgb_map
    mask = np.full((1, 2, 3), 9, np.uint8)
    assert p.ambiguous_colors(mask) == [(9, 9, 9)] and p.unknown_colors(mask) == []
    assert p.describe_ambiguous((9, 9, 9)) == (
        "colour [9, 9, 9] is shared by dataset.palette[1] ('a' -> 'a'), "
        "dataset.palette[2] ('b' -> 'b'), which map to different classes")
