"""TAO 6 counts epochs, TAO 5 and mmengine's loop iterations: the arithmetic between them."""
import math
import os.path as osp

from ..datasets.tao_dataset import IMG_SUFFIXES, scan_dir


def count_images(root: str, split: str) -> int:
    """Images in ``root/images/split`` (what TAO 6 lists for an epoch); 0 without it."""
    folder = osp.join(root, 'images', split)
    if not osp.isdir(folder):
        return 0
    return len(scan_dir(folder, IMG_SUFFIXES))


def iters_per_epoch(images: int, processes: int, batch_size: int) -> int:
    """Iterations of one epoch: each process gets ``ceil(images / processes)`` images (as
    TAO's distributed sampler pads), in batches of ``batch_size`` (the last one partial).

    >>> iters_per_epoch(10, 1, 4)
    3
    >>> iters_per_epoch(10, 4, 2)
    2
    """
    return math.ceil(math.ceil(images / processes) / batch_size)
