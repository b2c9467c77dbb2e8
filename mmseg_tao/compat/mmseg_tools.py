"""mmseg 1.2.2's own tools (``mmseg/.mim/tools``) on mmengine 0.10.7, OpenCV 5, and datasets
whose classes come from the config.

The tools import ``mmseg_tao`` only through a config's ``custom_imports``, i.e. inside
``Config.fromfile``, after they imported what they call; so each fix replaces the binding
the tool looks up when it calls: a class attribute, or the name the tool's own module
bound (``__main__.get_model_complexity_info``) besides mmengine's. A stock mmseg config
gets them by adding ``custom_imports = dict(imports=['mmseg_tao'])``.

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
import logging
import math
import os.path as osp
import sys
from typing import Callable

import numpy as np
from mmengine.logging import print_log

from .registry import Patch, register

#: What ``analysis_tools/benchmark.py`` needs: it reports at image 200 (5 of them warm-up).
BENCHMARK_ITERS = 200
_MMENGINE = 'mmengine >=0.10,<0.11 (the refusal since 0.7.3)'
_MMSEG = 'mmsegmentation >=1.2.2,<1.3'


def _inputs_over_input_shape(get_complexity: Callable) -> Callable:
    """Given ``inputs``, ignore ``input_shape`` (mmseg's get_flops.py passes both)."""

    @functools.wraps(get_complexity)
    def get_model_complexity_info(model, input_shape=None, inputs=None, *args, **kwargs):
        if input_shape is not None and inputs is not None:
            input_shape = None
        return get_complexity(model, input_shape, inputs, *args, **kwargs)

    return get_model_complexity_info


def _contiguous_image(draw: Callable) -> Callable:
    """Draw segmentation on a C-contiguous copy of a non-contiguous image."""

    @functools.wraps(draw)
    def _draw_sem_seg(self, image, *args, **kwargs):
        if isinstance(image, np.ndarray) and not image.flags.c_contiguous:
            image = np.ascontiguousarray(image)
        return draw(self, image, *args, **kwargs)

    return _draw_sem_seg


def _instance_metainfo(init: Callable) -> Callable:
    """Give a dataset whose class has no ``METAINFO['classes']`` its metainfo as
    ``METAINFO`` (read by confusion_matrix.py and misc/browse_dataset.py)."""

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if 'classes' not in type(self).METAINFO and 'classes' in self._metainfo:
            self.METAINFO = self.metainfo  # a copy; the class attribute stays as it is

    return __init__


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


def _warn_small_test_set(build: Callable) -> Callable:
    """Warn when the dataloader built has fewer batches than benchmark.py times."""

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

    return build_dataloader


register(Patch(
    name='mmengine-complexity-inputs',
    target='mmengine.analysis.print_helper.get_model_complexity_info',
    aliases=('mmengine.analysis.get_model_complexity_info',
             '__main__.get_model_complexity_info'),
    reason='mmseg\'s get_flops.py passes input_shape and inputs, which mmengine refuses '
           '("cannot be both set", open-mmlab/mmsegmentation#3241): given inputs, '
           'input_shape is dropped, as the upstream fix does',
    versions=f'{_MMSEG} with {_MMENGINE}', wrap=_inputs_over_input_shape))
register(Patch(
    name='mmseg-draw-contiguous',
    target='mmseg.visualization.SegLocalVisualizer._draw_sem_seg',
    reason="browse_dataset.py draws on a non-contiguous image, on which OpenCV refuses to "
           'draw ("Layout of the output array img is incompatible with cv::Mat"): drawn on '
           'a contiguous copy',
    versions=f'{_MMSEG} with OpenCV 5', wrap=_contiguous_image))
register(Patch(
    name='mmseg-instance-metainfo',
    target='mmseg.datasets.BaseSegDataset.__init__',
    reason='confusion_matrix.py and misc/browse_dataset.py read dataset.METAINFO, empty '
           'when the classes come from the config: such an instance gets its metainfo '
           'as METAINFO',
    versions=_MMSEG, wrap=_instance_metainfo))
register(Patch(
    name='mmseg-benchmark-size-check',
    target='mmengine.runner.Runner.build_dataloader',
    reason='benchmark.py reports only at test image 200 and prints "Average fps: nan" on '
           'fewer: running as that tool, a warning says how to repeat the test set',
    versions=_MMSEG, wrap=_warn_small_test_set, needed=_running_mmseg_benchmark))
