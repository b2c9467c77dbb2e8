"""TAO's GPU rules: how many processes a task runs, and num_gpus / gpu_ids reconciled."""
from typing import List, Optional, Sequence, Tuple

# Sections with num_gpus / gpu_ids (export runs on one device).
GPU_SECTIONS = ('train', 'evaluate', 'inference')


def process_count(num_gpus: int, gpu_ids: Optional[Sequence[int]]) -> int:
    """TAO's launcher rule (``nvidia_tao_pytorch`` entrypoint, 5.x): the larger of
    ``num_gpus`` and ``len(gpu_ids)``.

    >>> process_count(1, [2, 3])
    2
    """
    return max(num_gpus, len(gpu_ids or []))


def reconcile_gpus(num_gpus: int, gpu_ids: Sequence[int]) -> Tuple[int, List[int]]:
    """TAO's rule when the two disagree: the count is :func:`process_count` and a list of
    another length becomes ``range(count)``.

    >>> reconcile_gpus(2, [0])
    (2, [0, 1])
    >>> reconcile_gpus(1, [2, 3])
    (2, [2, 3])
    """
    ids = list(gpu_ids or [])
    num = process_count(num_gpus, ids)
    return num, ids if len(ids) == num else list(range(num))


def num_processes(spec, task: str = 'train') -> int:
    """The processes ``task`` runs for a spec (TAO 5's or TAO 6's form), on all its nodes:
    :func:`process_count` per node, times ``train.num_nodes`` for training (TAO's
    ``torchrun --nnodes`` / Lightning's ``num_nodes``; the other tasks' ``num_nodes`` are
    ignored).

    Args:
        spec: A spec with a ``task`` section that has num_gpus and gpu_ids.
        task: ``train``, ``evaluate`` or ``inference``.
    """
    section = getattr(spec, task)
    nodes = getattr(section, 'num_nodes', 1) if task == 'train' else 1
    return process_count(section.num_gpus, section.gpu_ids) * nodes


def reconcile_sections(spec, notes: List[str], raw: Optional[dict] = None) -> None:
    """Apply TAO's GPU rules to every task section of a built spec, in place: ``gpu_id``
    (TAO < 5.5) stands for ``gpu_ids: [gpu_id]`` when ``gpu_ids`` is not given, then
    :func:`reconcile_gpus`.

    Args:
        spec: The spec (TAO 5's or TAO 6's schema).
        notes: Receives one line per section whose values changed.
        raw: The YAML data the spec was built from (says whether gpu_ids was given).
    """
    for task in GPU_SECTIONS:
        section = getattr(spec, task)
        given = (raw or {}).get(task)
        given = given if isinstance(given, dict) else {}
        if getattr(section, 'gpu_id', None) is not None and 'gpu_ids' not in given:
            section.gpu_ids = [section.gpu_id]
        num, ids = reconcile_gpus(section.num_gpus, section.gpu_ids)
        if (num, ids) != (section.num_gpus, section.gpu_ids):
            notes.append(f'{task}.num_gpus ({section.num_gpus}) and {task}.gpu_ids '
                         f'({section.gpu_ids}) disagree: using num_gpus {num}, gpu_ids {ids} '
                         "(TAO's rule)")
            section.num_gpus, section.gpu_ids = num, ids
