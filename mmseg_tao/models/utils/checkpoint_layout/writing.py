"""Checkpoint files in the form another tool reads: the library side of
``mmseg-tao convert-checkpoint --to tao5|tao6``."""
import os.path as osp
from typing import Dict, Optional, Tuple

from .layout import ConversionResult, Tensor, convert_state_dict
from .reading import unwrap_checkpoint
from .tao6 import is_lightning_checkpoint, to_tao6_checkpoint

#: What :func:`convert_checkpoint` writes: ``tao5`` is the package's own layout in an
#: mmseg / mmengine checkpoint (``{'state_dict', 'meta'}``: TAO 5.x, ``load_from``,
#: ``tools/test.py``, backbone ``init_cfg``); ``tao6`` TAO 6.x / 7.x's Lightning file.
TARGETS = ('tao5', 'tao6')


def read_checkpoint(filename: str) -> Tuple[Dict[str, Tensor], Dict[str, int]]:
    """The tensors of a checkpoint file and its training counters.

    Returns:
        (state dict, counters): counters ``epoch`` / ``global_step`` of a Lightning (TAO
        6/7) file, or of an mmengine file's ``meta`` (``epoch``, ``iter``); else empty.
    """
    if filename.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(filename), {}
    from mmengine.runner.checkpoint import CheckpointLoader
    raw = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    state = unwrap_checkpoint(raw, filename)
    counters: Dict[str, int] = {}
    if is_lightning_checkpoint(raw):
        counters = {k: int(raw[k]) for k in ('epoch', 'global_step')
                    if isinstance(raw.get(k), int)}
    elif isinstance(raw.get('meta'), dict):
        meta = raw['meta']
        counters = {k: int(meta[m]) for k, m in (('epoch', 'epoch'), ('global_step', 'iter'))
                    if isinstance(meta.get(m), int)}
    return state, counters


def convert_checkpoint(src: str, to: str = 'tao5', layout: Optional[str] = None
                       ) -> Tuple[dict, ConversionResult]:
    """Read ``src`` (any known layout) and make the checkpoint dict to save for ``to``.

    Args:
        src: A checkpoint file (``.pth`` / ``.bin``, or ``.safetensors``).
        to: One of :data:`TARGETS`.
        layout: Force the source layout instead of detecting it.

    Returns:
        (checkpoint dict to ``torch.save``, the conversion of ``src`` to the package's
        layout: its ignored and unmatched keys are for the caller to report).

    Raises:
        ValueError: Unknown target or layout; ``tao6`` and ``src`` is not a whole model.
    """
    if to not in TARGETS:
        raise ValueError(f'unknown target {to!r}; expected one of {", ".join(TARGETS)}')
    state, counters = read_checkpoint(src)
    result = convert_state_dict(state, layout=layout)
    if to == 'tao6':
        return to_tao6_checkpoint(result.state_dict, **counters), result
    return dict(state_dict=result.state_dict,
                meta=dict(converted_from=result.layout, source=osp.abspath(src))), result
