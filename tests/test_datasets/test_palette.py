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


def test_of_builds_once_for_equal_entries(monkeypatch):
    """Palette.of: one object for equal entries, whatever their form (dicts, a config's
    ConfigDicts, the spec's dataclasses); other entries get their own; errors are raised
    every time, not cached."""
    from mmengine.config import ConfigDict

    from mmseg_tao.datasets import palette as palette_module
    from mmseg_tao.spec.schema import PaletteEntry
    monkeypatch.setattr(palette_module, '_BUILT', {})
    entries = [entry('a', 0), entry('b', 1, rgb=[9, 8, 7])]
    first = Palette.of(entries)
    assert Palette.of([ConfigDict(e) for e in entries]) is first
    assert Palette.of([PaletteEntry(**e) for e in entries]) is first
    assert Palette.of(first) is first
    assert Palette.of([entry('a', 0), entry('b', 2)]) is not first
    assert first.classes == ('a', 'b') and first.colors == ((0, 0, 0), (9, 8, 7))
    for _ in range(2):
        with pytest.raises(PaletteError, match=r'segment\.palette\[1\]\.label_id'):
            Palette.of([entry('a', 0), entry('b', 0)], where='segment.palette')


def test_one_palette_per_spec(tmp_path, monkeypatch):
    """The loader's validation, the translator (num_classes, metainfo), every dataset split
    and inference use one Palette: the entries are validated and derived once."""
    from mmengine.config import Config
    from mmseg.registry import DATASETS

    from mmseg_tao.datasets import palette as palette_module
    from mmseg_tao.spec import load_spec, spec_to_config
    from seg_data import write_isbi_spec
    monkeypatch.setattr(palette_module, '_BUILT', {})
    built = []
    from_entries = Palette.from_entries.__func__

    def counting(cls, entries, where='dataset.palette'):
        built.append(where)
        return from_entries(cls, entries, where)

    monkeypatch.setattr(Palette, 'from_entries', classmethod(counting))
    train = dict(max_iters=2, validate=True, validation_interval=1)
    spec = load_spec(write_isbi_spec(tmp_path, train, val='separate'),
                     task='train')
    cfg = Config(spec_to_config(spec))
    splits = [DATASETS.build(cfg[f'{split}_dataloader']['dataset'])
              for split in ('train', 'val', 'test')]
    splits = [getattr(ds, 'dataset', ds) for ds in splits]  # RepeatDataset -> the split
    palette = Palette.of(cfg.tao_palette)  # as inference reads it
    assert len(built) == 1
    assert all(ds.tao_palette is palette for ds in splits)
    assert cfg.model.decode_head.num_classes == palette.num_classes == 2
    assert cfg.tao_metainfo.classes == palette.classes == ('foreground', 'background')
