"""TAO 6 counts epochs, TAO 5 and mmengine's loop iterations: the arithmetic between them."""
import math
import os.path as osp

from .listing import list_sorted


def count_images(root: str, split: str) -> int:
    """The length of TAO 6's training epoch: the entries of ``root/images/split``
    (``len(os.listdir(...))``, not recursive, no suffix filter, as TAO's dataset lists
    them); 0 without the folder."""
    folder = osp.join(root, 'images', split)
    if not osp.isdir(folder):
        return 0
    return len(list_sorted(folder))


def iters_per_epoch(images: int, processes: int, batch_size: int) -> int:
    """Iterations of one epoch: each process gets ``ceil(images / processes)`` images (as
    TAO's distributed sampler pads), in batches of ``batch_size`` (the last one partial:
    TAO's ``drop_last=False``).

    >>> iters_per_epoch(10, 1, 4)
    3
    >>> iters_per_epoch(10, 4, 2)
    2
    """
    return math.ceil(math.ceil(images / processes) / batch_size)
