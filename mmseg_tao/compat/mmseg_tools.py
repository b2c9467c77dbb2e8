"""mmseg 1.2.2's own tools (``mmseg/.mim/tools``) on mmengine 0.10.7, OpenCV 5, and datasets
whose classes come from the config.

The tools import ``mmseg_tao`` only through a config's ``custom_imports``, i.e. inside
``Config.fromfile``, after they imported what they call; so every fix below changes the
object the tool already holds (a function's code, a class attribute), not a module name.
A stock mmseg config gets them by adding ``custom_imports = dict(imports=['mmseg_tao'])``.

* ``analysis_tools/get_flops.py`` calls ``get_model_complexity_info(model, input_shape,
  inputs=...)``, which mmengine >= 0.7.3 refuses ("input_shape" and "inputs" cannot be both
  set; open-mmlab/mmsegmentation#3241). When both are given, the fixed function drops
  ``input_shape``, as the upstream fix does (``inputs`` are the real, preprocessed
  tensors); every other call is unchanged.
* ``analysis_tools/browse_dataset.py`` draws on ``inputs.permute(1, 2, 0).numpy()[...,
  [2, 1, 0]]``, an array that is not C-contiguous; ``SegLocalVisualizer._draw_sem_seg``
  makes its label canvas with ``np.zeros_like`` (same layout) and OpenCV refuses to draw on
  it ("Layout of the output array img is incompatible with cv::Mat"). Such images are made
  contiguous before drawing; contiguous ones are passed as they are.
* ``analysis_tools/confusion_matrix.py`` and ``misc/browse_dataset.py`` read the class
  attribute ``dataset.METAINFO``, which is empty for a dataset whose classes are given in
  the config (``BaseSegDataset`` / ``TAOSegDataset`` with ``metainfo``): KeyError 'classes'
  or "class information is not provided". Such an instance gets its own ``METAINFO``, its
  metainfo; classes that define classes in ``METAINFO`` are not touched.
* ``analysis_tools/benchmark.py`` skips 5 warm-up images and reports only when it reaches
  image 200; with fewer test images it prints "Average fps: nan" and no reason
  (``--repeat-times`` does not help: each repeat starts again at image 1). Run as that
  tool, its test dataloader is checked and a warning says how to repeat the test set.
"""
import functools
import inspect
import logging
import math
import os.path as osp
import sys
import types

import numpy as np
from mmengine.logging import print_log

#: What ``analysis_tools/benchmark.py`` needs: it reports at image 200 (5 of them warm-up).
BENCHMARK_ITERS = 200

_COMPLEXITY_PARAMS = ['model', 'input_shape', 'inputs', 'show_table', 'show_arch']
# The unpatched get_model_complexity_info; the fixed code looks it up under this name in
# mmengine.analysis.print_helper's globals (the code runs with that module's globals).
_ORIGINAL_NAME = '_mmseg_tao_original_get_model_complexity_info'
_mmseg_tao_original_get_model_complexity_info = None


def _get_model_complexity_info(model, input_shape=None, inputs=None, show_table=True,
                               show_arch=True):
    """Code put into ``get_model_complexity_info``: given ``inputs``, ignore ``input_shape``
    (mmseg's get_flops.py passes both)."""
    if input_shape is not None and inputs is not None:
        input_shape = None
    return _mmseg_tao_original_get_model_complexity_info(
        model, input_shape, inputs, show_table, show_arch)


def install_complexity_info() -> bool:
    """Fix ``mmengine.analysis.get_model_complexity_info`` in place (its code object), so
    that names bound to it before ``mmseg_tao`` was imported see the fix. Returns whether
    the function has the fix (False: an mmengine whose function looks different)."""
    from mmengine.analysis import print_helper
    func = print_helper.get_model_complexity_info
    if _ORIGINAL_NAME in func.__globals__:
        return True
    if (list(inspect.signature(func).parameters) != _COMPLEXITY_PARAMS
            or func.__code__.co_freevars):
        return False
    original = types.FunctionType(func.__code__, func.__globals__, func.__name__,
                                  func.__defaults__, func.__closure__)
    original.__kwdefaults__ = func.__kwdefaults__
    global _mmseg_tao_original_get_model_complexity_info
    _mmseg_tao_original_get_model_complexity_info = original
    func.__globals__[_ORIGINAL_NAME] = original
    func.__code__ = _get_model_complexity_info.__code__
    return True


def install_contiguous_sem_seg() -> None:
    """Draw segmentation on a C-contiguous copy of a non-contiguous image."""
    from mmseg.visualization import SegLocalVisualizer
    draw = SegLocalVisualizer._draw_sem_seg
    if getattr(draw, '_mmseg_tao_contiguous', False):
        return

    @functools.wraps(draw)
    def _draw_sem_seg(self, image, *args, **kwargs):
        if isinstance(image, np.ndarray) and not image.flags.c_contiguous:
            image = np.ascontiguousarray(image)
        return draw(self, image, *args, **kwargs)

    _draw_sem_seg._mmseg_tao_contiguous = True
    SegLocalVisualizer._draw_sem_seg = _draw_sem_seg


def install_instance_metainfo() -> None:
    """Give a dataset whose class has no ``METAINFO['classes']`` its metainfo as
    ``METAINFO`` (read by confusion_matrix.py and misc/browse_dataset.py)."""
    from mmseg.datasets import BaseSegDataset
    init = BaseSegDataset.__init__
    if getattr(init, '_mmseg_tao_metainfo', False):
        return

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if 'classes' not in type(self).METAINFO and 'classes' in self._metainfo:
            self.METAINFO = self.metainfo  # a copy; the class attribute stays as it is

    __init__._mmseg_tao_metainfo = True
    BaseSegDataset.__init__ = __init__


def _running_mmseg_benchmark() -> bool:
    """Whether this process is mmseg's ``tools/analysis_tools/benchmark.py``."""
    main = sys.modules.get('__main__')
    path = getattr(main, '__file__', None) or ''
    if osp.basename(path) != 'benchmark.py' or \
            osp.basename(osp.dirname(path)) != 'analysis_tools':
        return False
    from mmseg.registry import MODELS
    return getattr(main, 'MODELS', None) is MODELS


def benchmark_warning(num_images: int):
    """The warning for a benchmark on ``num_images`` test images; None when enough."""
    if num_images >= BENCHMARK_ITERS:
        return None
    times = math.ceil(BENCHMARK_ITERS / max(num_images, 1))
    return (f'mmseg benchmark.py reports fps only when it reaches test image '
            f'{BENCHMARK_ITERS} (the first 5 are warm-up); this test set has {num_images}, '
            'so it will print "Average fps: nan" (--repeat-times does not help: each repeat '
            'starts again at image 1). Repeat the test set in a copy of the config: '
            "test_dataloader['dataset'] = dict(type='RepeatDataset', times="
            f"{times}, dataset=test_dataloader['dataset'])")


def install_benchmark_check() -> bool:
    """Running as mmseg's benchmark.py: warn when the test set is too small to be timed."""
    if not _running_mmseg_benchmark():
        return False
    from mmengine.runner import Runner
    build = Runner.__dict__['build_dataloader'].__func__
    if getattr(build, '_mmseg_tao_benchmark', False):
        return True

    @functools.wraps(build)
    def build_dataloader(*args, **kwargs):
        loader = build(*args, **kwargs)
        try:
            message = benchmark_warning(len(loader))
        except TypeError:  # no length (an infinite sampler): benchmark.py gets its 200
            message = None
        if message:
            print_log(message, logger='current', level=logging.WARNING)
        return loader

    build_dataloader._mmseg_tao_benchmark = True
    Runner.build_dataloader = staticmethod(build_dataloader)
    return True


def install() -> None:
    install_complexity_info()
    install_contiguous_sem_seg()
    install_instance_metainfo()
    install_benchmark_check()
