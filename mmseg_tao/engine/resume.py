"""Pick the checkpoint to resume from: the newest complete ``iter_N.pth``."""
import os
import os.path as osp
import re
import zipfile
from typing import Optional

ITER_CKPT = re.compile(r'iter_(\d+)\.pth')


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole torch checkpoint (its zip directory is intact)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith('data.pkl') for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete ``iter_N.pth`` in ``work_dir``, or None.

    Other ``.pth`` names (``best_*.pth``, converted weights, hidden ``.partial`` files) are
    ignored instead of crashing the search as TAO's does; an incomplete newest file (from a
    copy or an older, non-atomic writer) is skipped for the next one.
    """
    if not osp.isdir(work_dir):
        return None
    found = []
    for name in os.listdir(work_dir):
        m = ITER_CKPT.fullmatch(name)
        if m:
            found.append((int(m.group(1)), osp.join(work_dir, name)))
    for _, path in sorted(found, reverse=True):
        if is_complete_checkpoint(path):
            return path
    return None
