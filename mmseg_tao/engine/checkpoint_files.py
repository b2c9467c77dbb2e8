"""Checkpoint files: their names and TAO 6/7's layout.

Names: mmengine's templates have one ``{}`` (``iter_{}.pth``: iterations done);
TAO 6/7's (:data:`~mmseg_tao.spec.tao6_training.CHECKPOINT_TEMPLATE`,
``model_epoch_{epoch:03d}_step_{step:05d}.pth``) name Lightning's counters at the save:
``epoch`` the 0-based epoch in progress (the one just finished for a save at an epoch's
end), ``step`` the optimizer steps taken. Both orders of files by training progress: the
iterations (``{}``, ``step``).

Layout: a TAO 6/7 file holds Lightning's ``epoch``, ``global_step``,
``pytorch-lightning_version`` and ``state_dict`` with TAO's ``model.*`` keys, which is all
TAO 6/7's ``load_from_checkpoint`` reads. mmengine's resume state (``meta``,
``optimizer``, ``param_schedulers``, ``message_hub``) stays beside it as plain data
(numbers, strings, lists, dicts, tensors), so that the file also loads with
``torch.load(weights_only=True)``, the default of the torch TAO 7 ships.
"""
import re
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Pattern, Tuple

import numpy as np

_FIELD = re.compile(r'\{(\w*)(?:![rsa])?(?::[^{}]*)?\}')
_POSITIONAL = 'n'  # the group name of a ``{}`` field
# How a HistoryBuffer (mmengine's logged scalars) is stored as plain data.
_BUFFER_KEY = '__history_buffer__'


# --------------------------------------------------------------------------- names
def name_pattern(template: str) -> Pattern:
    """A regex that fully matches the names ``template`` gives; each field is a group of
    digits named after it (``{}``: ``n``).

    >>> name_pattern('model_epoch_{epoch:03d}_step_{step:05d}.pth').fullmatch(
    ...     'model_epoch_001_step_00006.pth').groupdict()
    {'epoch': '001', 'step': '00006'}
    """
    out, pos = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        out.append(f'(?P<{m.group(1) or _POSITIONAL}>\\d+)')
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile(''.join(out))


def progress(match: 're.Match') -> int:
    """The training progress a matched name records: its ``step`` field, else its one
    number (``iter_{}``'s iterations)."""
    fields = match.groupdict()
    return int(fields['step'] if 'step' in fields else next(iter(fields.values())))


def is_named_template(template: str) -> bool:
    """Whether ``template`` has named fields (``{epoch}``, ``{step}``) rather than ``{}``."""
    return any(m.group(1) for m in _FIELD.finditer(template))


def lightning_counters(meta: Mapping[str, int], by_epoch: bool) -> Tuple[int, int]:
    """(epoch, global_step) as Lightning's ModelCheckpoint names them, from the ``meta``
    mmengine writes into a checkpoint (``Runner.save_checkpoint``: ``epoch`` = epochs done
    after an epoch's end, else the epoch in progress; ``iter`` = iterations done)."""
    epoch = int(meta.get('epoch', 0))
    return (epoch - 1 if by_epoch else epoch), int(meta.get('iter', 0))


def checkpoint_name(template: str, step: int, meta: Mapping[str, int], by_epoch: bool) -> str:
    """The file name of a save: ``template`` with mmengine's ``step`` (``{}``) or with
    Lightning's ``epoch`` and ``step`` (named fields, :func:`lightning_counters`)."""
    if not is_named_template(template):
        return template.format(step)
    epoch, global_step = lightning_counters(meta, by_epoch)
    return template.format(epoch=epoch, step=global_step)


# --------------------------------------------------------------------------- layout
def to_plain(value: Any) -> Any:
    """``value`` with numpy values as Python numbers / lists and mmengine's HistoryBuffer
    as a marked dict (:func:`from_plain` restores it); tensors and plain data as they are."""
    from mmengine.logging import HistoryBuffer
    if isinstance(value, HistoryBuffer):
        log, count = value.data
        return {_BUFFER_KEY: dict(log_history=log.tolist(), count_history=count.tolist(),
                                  max_length=int(value.max_length))}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        out = OrderedDict() if isinstance(value, OrderedDict) else {}
        out.update((k, to_plain(v)) for k, v in value.items())
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value


def from_plain(value: Any) -> Any:
    """``value`` with the HistoryBuffers :func:`to_plain` stored rebuilt."""
    from mmengine.logging import HistoryBuffer
    if isinstance(value, dict):
        if set(value) == {_BUFFER_KEY}:
            return HistoryBuffer(**value[_BUFFER_KEY])
        out = OrderedDict() if isinstance(value, OrderedDict) else {}
        out.update((k, from_plain(v)) for k, v in value.items())
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(from_plain(v) for v in value)
    return value


def to_tao6_layout(checkpoint: Dict[str, Any], by_epoch: bool) -> None:
    """Make a checkpoint mmengine's Runner is about to save (``before_save_checkpoint``)
    one that TAO 6/7 loads, in place: Lightning's entries with ``state_dict`` in TAO's
    names; the rest (mmengine's resume state) as plain data.

    Raises:
        ValueError: A weight has no TAO 6/7 name.
    """
    from ..models.utils.checkpoint_layout.tao6 import to_tao6_checkpoint
    state = checkpoint['state_dict']
    epoch, step = lightning_counters(checkpoint.get('meta') or {}, by_epoch)
    for key in list(checkpoint):
        if key != 'state_dict':
            checkpoint[key] = to_plain(checkpoint[key])
    checkpoint.update(to_tao6_checkpoint(state, epoch=epoch, global_step=step))


def restore_plain_state(checkpoint: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Rebuild the HistoryBuffers of a loaded checkpoint's ``message_hub`` in place
    (``after_load_checkpoint``), so that mmengine resumes its logged scalars; returns it."""
    if isinstance(checkpoint.get('message_hub'), dict):
        checkpoint['message_hub'] = from_plain(checkpoint['message_hub'])
    return checkpoint
