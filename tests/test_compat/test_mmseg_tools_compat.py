"""mmseg_tao.compat.mmseg_tools: what breaks mmseg 1.2.2's tools on this stack, and that
the fixes change nothing else."""
import os.path as osp
import runpy
import sys
import types
from argparse import Namespace

import cv2
import mmseg
import numpy as np
import pytest
import torch
from mmengine import analysis
from mmengine.analysis import print_helper
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.datasets import BaseSegDataset
from mmseg.registry import MODELS
from mmseg.visualization import SegLocalVisualizer

import mmseg_tao  # noqa: F401  (applies the compat fixes)
from mmseg_tao import compat
from mmseg_tao.compat import mmseg_tools
from mmseg_tao.compat.registry import apply_patch
from mmseg_tao.datasets import TAOSegDataset

STOCK = osp.join(osp.dirname(mmseg.__file__), '.mim')
PALETTE = [dict(seg_class='background', rgb=[0, 0, 0], label_id=0),
           dict(seg_class='fg', rgb=[255, 0, 0], label_id=1)]


# --- get_flops.py: get_model_complexity_info(model, input_shape, inputs=...) ------------

def _conv():
    return torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)


COMPLEXITY = 'mmengine-complexity-inputs'


def test_complexity_info_stock_refuses_input_shape_with_inputs():
    original = compat.original(COMPLEXITY)
    with pytest.raises(ValueError, match='cannot be both set'):
        original(_conv(), (3, 8, 8), inputs=torch.rand(1, 3, 16, 16))


def test_complexity_info_given_both_uses_inputs():
    model, inputs = _conv(), torch.rand(1, 3, 16, 16)
    both = analysis.get_model_complexity_info(model, (3, 8, 8), inputs=inputs,
                                              show_table=False, show_arch=False)
    assert both['flops'] == 16 * 16 * 4 * 3 * 3 * 3  # the 16x16 inputs, not the 8x8 shape
    assert both['params'] == 4 * 3 * 3 * 3


def test_complexity_info_fixed_at_its_bindings_and_otherwise_unchanged():
    # mmengine.analysis re-exports print_helper's function: both names are the fix, a
    # wrapper that keeps the stock function. Applying again changes nothing.
    fixed = print_helper.get_model_complexity_info
    assert analysis.get_model_complexity_info is fixed
    original = compat.original(COMPLEXITY)
    assert fixed.__wrapped__ is original and fixed is not original
    assert apply_patch(COMPLEXITY)
    assert print_helper.get_model_complexity_info is fixed
    assert compat.original(COMPLEXITY) is original
    model = _conv()
    patched = fixed(model, (3, 8, 8), show_table=False, show_arch=False)
    stock = original(model, (3, 8, 8), show_table=False, show_arch=False)
    assert patched['flops'] == stock['flops'] == 8 * 8 * 4 * 27
    with pytest.raises(ValueError, match='One of "input_shape" and "inputs"'):
        fixed(model)


def test_complexity_info_fixed_in_the_script_that_imported_it_first(monkeypatch):
    """get_flops.py binds the function before its config imports mmseg_tao: the name in
    the running script (``__main__``) is replaced too, where it still holds the original."""
    main = types.ModuleType('__main__')
    main.get_model_complexity_info = compat.original(COMPLEXITY)
    monkeypatch.setitem(sys.modules, '__main__', main)
    compat.apply()
    assert main.get_model_complexity_info is print_helper.get_model_complexity_info
    other = types.ModuleType('__main__')
    other.get_model_complexity_info = len  # a name of its own: left alone
    monkeypatch.setitem(sys.modules, '__main__', other)
    compat.apply()
    assert other.get_model_complexity_info is len


def test_stock_get_flops_inference_on_stock_config():
    """mmseg's get_flops.py code, on mmseg's own SegFormer config."""
    tool = runpy.run_path(osp.join(STOCK, 'tools', 'analysis_tools', 'get_flops.py'),
                          run_name='get_flops')
    config = osp.join(STOCK, 'configs', 'segformer',
                      'segformer_mit-b0_8xb2-160k_ade20k-512x512.py')
    result = tool['inference'](Namespace(config=config, shape=[64, 64], cfg_options=None),
                               MMLogger.get_current_instance())
    assert result['params'] == '3.754M'
    assert result['flops'].endswith(('M', 'G'))


# --- browse_dataset.py: drawing on a non-contiguous image --------------------------------

def _browse_image():
    """What browse_dataset.py draws on: the packed CHW tensor as HWC, BGR to RGB."""
    img = torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8)
    return img.permute(1, 2, 0).numpy()[..., [2, 1, 0]]


def _sem_seg():
    seg = torch.zeros(1, 32, 32, dtype=torch.long)
    seg[:, 8:24, 8:24] = 1
    return PixelData(data=seg)


def _visualizer():
    return SegLocalVisualizer(name='mmseg_tools_compat_test')


def test_draw_sem_seg_stock_fails_on_non_contiguous_image():
    image = _browse_image()
    assert not image.flags.c_contiguous
    stock = compat.original('mmseg-draw-contiguous')
    with pytest.raises(cv2.error, match='Layout of the output array'):
        stock(_visualizer(), image, _sem_seg(), ['bg', 'fg'], [[0, 0, 0], [255, 0, 0]])


def test_draw_sem_seg_draws_non_contiguous_image_as_its_copy():
    image = _browse_image()
    args = (_sem_seg(), ['bg', 'fg'], [[0, 0, 0], [255, 0, 0]])
    drawn = _visualizer()._draw_sem_seg(image, *args)
    stock = compat.original('mmseg-draw-contiguous')
    expected = stock(_visualizer(), np.ascontiguousarray(image), *args)
    np.testing.assert_array_equal(drawn, expected)
    assert drawn[9, 9, 0] >= 0.8 * 255  # the label's colour, red, at 80 %


def test_draw_sem_seg_passes_contiguous_image_unchanged(monkeypatch):
    image = np.ascontiguousarray(_browse_image())
    copies = []
    monkeypatch.setattr(mmseg_tools.np, 'ascontiguousarray',
                        lambda a, *args, **kw: copies.append(a) or a)
    _visualizer()._draw_sem_seg(image, _sem_seg(), ['bg', 'fg'], [[0, 0, 0], [255, 0, 0]])
    assert copies == []


# --- confusion_matrix.py / misc/browse_dataset.py: dataset.METAINFO ----------------------

def test_metainfo_of_config_classes_on_the_instance(tmp_path):
    ds = TAOSegDataset(img_dirs=str(tmp_path), palette=PALETTE, lazy_init=True)
    # The stock tools read dataset.METAINFO; the class attribute has no classes.
    assert 'classes' not in TAOSegDataset.METAINFO
    assert ds.METAINFO['classes'] == ('background', 'fg')
    assert ds.METAINFO['palette'] == [[0, 0, 0], [255, 0, 0]]
    ds.METAINFO['classes'] = 'changed'  # a copy: the dataset's own metainfo is unchanged
    assert ds.metainfo['classes'] == ('background', 'fg')
    plain = BaseSegDataset(metainfo=dict(classes=('a', 'b')), lazy_init=True)
    assert plain.METAINFO['classes'] == ('a', 'b')
    assert BaseSegDataset.METAINFO == {}


def test_metainfo_stock_leaves_the_empty_class_attribute():
    stock_init = compat.original('mmseg-instance-metainfo')
    ds = BaseSegDataset.__new__(BaseSegDataset)
    stock_init(ds, metainfo=dict(classes=('a', 'b')), lazy_init=True)
    assert ds.metainfo['classes'] == ('a', 'b')
    assert 'classes' not in ds.METAINFO  # what the stock tools fail on


def test_metainfo_untouched_where_the_class_has_classes():

    class Stock(BaseSegDataset):
        METAINFO = dict(classes=('x', 'y', 'z'), palette=[[0, 0, 0]] * 3)

    ds = Stock(metainfo=dict(classes=('x', 'z')), lazy_init=True)
    assert 'METAINFO' not in vars(ds)
    assert ds.METAINFO['classes'] == ('x', 'y', 'z')
    assert ds.label_map == {0: 0, 1: 255, 2: 1}  # mmseg's class subset still works
    assert 'METAINFO' not in vars(BaseSegDataset(lazy_init=True))  # no classes at all


# --- benchmark.py: "Average fps: nan" on fewer than 200 test images ----------------------

def test_benchmark_warning_text():
    message = mmseg_tools.benchmark_warning(4)
    assert 'has 4' in message and 'nan' in message
    assert "type='RepeatDataset', times=50" in message
    assert mmseg_tools.benchmark_warning(7).count('times=29') == 1
    assert mmseg_tools.benchmark_warning(200) is None


def _loader_cfg(n):
    return dict(dataset=list(range(n)), batch_size=1, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False))


@pytest.fixture
def logged(monkeypatch):
    messages = []
    monkeypatch.setattr(mmseg_tools, 'print_log', lambda msg, **kw: messages.append(msg))
    # Restored after the test (pytest keeps the staticmethod of a class attribute).
    monkeypatch.setattr(Runner, 'build_dataloader', Runner.__dict__['build_dataloader'])
    return messages


def test_benchmark_check_only_in_mmseg_benchmark(logged):
    stock_build = Runner.__dict__['build_dataloader']
    assert not apply_patch('mmseg-benchmark-size-check')  # this is pytest, not benchmark.py
    assert Runner.__dict__['build_dataloader'] is stock_build
    Runner.build_dataloader(_loader_cfg(4))
    assert logged == []


def test_benchmark_check_warns_on_small_test_set(logged, monkeypatch):
    main = types.ModuleType('__main__')
    main.__file__ = osp.join(STOCK, 'tools', 'analysis_tools', 'benchmark.py')
    main.MODELS = MODELS
    monkeypatch.setitem(sys.modules, '__main__', main)
    assert apply_patch('mmseg-benchmark-size-check')
    loader = Runner.build_dataloader(_loader_cfg(4))
    assert len(loader) == 4
    assert logged == [mmseg_tools.benchmark_warning(4)]
    Runner.build_dataloader(_loader_cfg(200))
    assert len(logged) == 1
    # Another script called benchmark.py (e.g. mmdet's) does not count.
    main.MODELS = object()
    assert not mmseg_tools._running_mmseg_benchmark()
