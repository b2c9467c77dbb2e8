"""Pick the checkpoint to resume from: the newest complete one in the results dir."""
import os
import os.path as osp
import zipfile
from typing import Optional, Sequence

from .checkpoint_files import name_pattern, progress

#: The names a training run writes: mmengine's (TAO 5 specs, configs) and TAO 6/7's.
CHECKPOINT_TEMPLATES = ('iter_{}.pth', 'model_epoch_{epoch:03d}_step_{step:05d}.pth')


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole torch checkpoint (its zip directory is intact)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith('data.pkl') for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def find_resume_checkpoint(work_dir: str,
                           templates: Sequence[str] = CHECKPOINT_TEMPLATES) -> Optional[str]:
    """The newest complete checkpoint in ``work_dir``, or None.

    Newest by the iterations its name records: ``iter_N.pth`` (N iterations) or TAO 6/7's
    ``model_epoch_E_step_S.pth`` (S optimizer steps). Other ``.pth`` names
    (``best_*.pth``, ``segformer_model_latest.pth``, converted weights, hidden
    ``.partial`` files) are ignored instead of crashing the search as TAO's does; an
    incomplete newest file (from a copy or an older, non-atomic writer) is skipped for the
    next one.

    Args:
        work_dir: The training results dir.
        templates: The checkpoint name templates to look for (``{}`` or named fields,
            :func:`~mmseg_tao.engine.checkpoint_files.name_pattern`).
    """
    if not osp.isdir(work_dir):
        return None
    patterns = [name_pattern(t) for t in templates]
    found = []
    for name in os.listdir(work_dir):
        for pattern in patterns:
            m = pattern.fullmatch(name)
            if m:
                found.append((progress(m), name, osp.join(work_dir, name)))
                break
    for _, _, path in sorted(found, reverse=True):
        if is_complete_checkpoint(path):
            return path
    return None
