"""How TAO 6/7 lists the files of a split folder (``cv/segformer/dataloader/dataset.py``:
``sorted(os.listdir(<root>/images/<split>))``).

One torch-free rule for both users: the datasets pair the n-th image with the n-th mask by
it (:mod:`mmseg_tao.datasets.pairing`) and the spec counts an epoch's images by it
(:func:`mmseg_tao.spec.epochs.count_images`), without the spec importing the datasets.
"""
import os
import os.path as osp
from typing import List, Optional, Tuple


def suffixes(suffix: Optional[str], default: Tuple[str, ...]) -> Tuple[str, ...]:
    """``(suffix, )`` lower-cased with its leading dot, or ``default`` when unset.

    >>> suffixes('PNG', ())
    ('.png',)
    """
    if not suffix:
        return default
    return ((suffix if suffix.startswith('.') else '.' + suffix).lower(), )


def list_sorted(folder: str, suffix: Optional[str] = None) -> List[str]:
    """The entries of ``folder`` as TAO 6 lists them: not recursive, every name (no suffix
    filter unless ``suffix`` is given), sorted by full file name; full paths.

    Args:
        folder: The folder (it must exist).
        suffix: Keep only names ending with it (case-insensitive); None keeps every entry,
            subfolders included, as TAO does.
    """
    names = sorted(os.listdir(folder))
    if suffix:
        wanted = suffixes(suffix, ())[0]
        names = [n for n in names if n.lower().endswith(wanted)]
    return [osp.join(folder, n) for n in names]
