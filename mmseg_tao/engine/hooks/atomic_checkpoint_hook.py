"""CheckpointHook whose checkpoints appear complete or not at all."""
import os
import os.path as osp
import shutil
from collections import deque
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ...utils import fileio
from ...utils.fileio import atomic_write
from ..checkpoint_files import (
    checkpoint_name,
    name_pattern,
    progress,
    restore_plain_state,
    to_tao6_layout,
)
from ..resume import is_complete_checkpoint

#: Old name of :func:`mmseg_tao.utils.atomic_write`, still imported from here.
atomic_write_text = atomic_write


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`CheckpointHook` that writes each checkpoint to a hidden ``.partial`` file,
    flushes it to disk and renames it into place, then updates ``last_checkpoint`` the
    same way and only then deletes old files.

    A process killed at any moment therefore never leaves a truncated ``iter_N.pth``:
    the newest ``iter_N.pth`` is always loadable.

    After each save the main process (only it deletes) removes leftover ``.partial``
    files and, with ``max_keep_ckpts`` N > 0, every ``iter_N.pth`` in ``out_dir`` except
    the N newest complete ones (by iterations, as
    :func:`mmseg_tao.engine.find_resume_checkpoint` picks) and the one
    ``last_checkpoint`` names. The directory is read, not mmengine's ``keep_ckpt_ids``,
    so checkpoints written before a resume or by an older version are pruned too, and a
    lower N on resume takes effect at the next save. Nothing is deleted before a new
    checkpoint exists (mmengine would prune the restored ``keep_ckpt_ids`` in
    ``before_train``). Remote backends fall back to :class:`CheckpointHook`'s behaviour.

    ``filename_tmpl`` may also name Lightning's counters, as TAO 6/7 does:
    ``'model_epoch_{epoch:03d}_step_{step:05d}.pth'`` gives ``model_epoch_001_step_00006.pth``
    for the save after the 2nd epoch of 3 iterations (``epoch`` 0-based, ``step`` the
    iterations done; :mod:`mmseg_tao.engine.checkpoint_files`). Files are ordered by the
    iterations they record.

    Args:
        latest_name (str, optional): Also make ``out_dir/latest_name`` the newest checkpoint
            after each save (a hard link, else a copy, renamed into place), as TAO 6/7's
            ``segformer_model_latest.pth`` that its specs point evaluate, inference and
            export at. Default: None.
        layout (str, optional): ``'tao6'``: write TAO 6/7's layout (Lightning's entries,
            ``state_dict`` with TAO's ``model.*`` keys), mmengine's resume state beside it
            as plain data, which this hook turns back when a run resumes from it.
            Default: None (mmengine's).
        **kwargs: :class:`CheckpointHook`'s arguments.
    """

    def __init__(self, *args, latest_name: Optional[str] = None,
                 layout: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        if latest_name is not None and osp.basename(latest_name or '/') != latest_name:
            raise ValueError(f'latest_name must be a file name, got {latest_name!r}')
        if layout not in (None, 'tao6'):
            raise ValueError(f"layout must be None or 'tao6', got {layout!r}")
        self.latest_name = latest_name
        self.layout = layout

    def before_train(self, runner) -> None:
        max_keep, self.max_keep_ckpts = self.max_keep_ckpts, -1  # no deleting here
        try:
            super().before_train(runner)
        finally:
            self.max_keep_ckpts = max_keep
        if max_keep > 0:  # only CheckpointHook's own saving (remote out_dir) uses it
            restored = runner.message_hub.get_info('keep_ckpt_ids') or []
            self.keep_ckpt_ids = deque(restored[-max_keep:], max_keep)
        if self.layout == 'tao6':  # a model TAO cannot name fails now, not at the first save
            from ...models.utils.checkpoint_layout.tao6 import to_tao6_state_dict
            model = getattr(runner.model, 'module', runner.model)
            to_tao6_state_dict(model.state_dict())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.layout == 'tao6':
            to_tao6_layout(checkpoint, self.by_epoch)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        restore_plain_state(checkpoint)  # a no-op for mmengine's own layout

    def save_now(self, runner) -> str:
        """Save the iterations done so far, whatever the interval (called from
        ``after_train_iter`` by every process; a preempted run's last checkpoint).

        The file is named as the interval's are, by iterations (inside an epoch too:
        ``epoch`` is the one in progress, as in TAO 6/7's step checkpoints), and written as
        atomically. Returns its path.
        """
        step = runner.iter + 1
        by_epoch, self.by_epoch = self.by_epoch, False
        try:
            self._save_checkpoint_with_step(runner, step, dict(epoch=runner.epoch, iter=step))
        finally:
            self.by_epoch = by_epoch
        return self.last_ckpt

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not osp.isdir(str(self.out_dir)):
            return super()._save_checkpoint_with_step(runner, step, meta)
        ckpt_filename = checkpoint_name(self.filename_tmpl, step, meta, self.by_epoch)
        partial_name = f'.{ckpt_filename}.partial'
        final = osp.join(self.out_dir, ckpt_filename)
        self.last_ckpt = final
        runner.message_hub.update_info('last_ckpt', final)
        runner.save_checkpoint(
            self.out_dir, partial_name, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        # Flushed and renamed into place; then last_checkpoint names it.
        fileio.replace(osp.join(self.out_dir, partial_name), final)
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), final)
        if self.latest_name:
            self._point_latest(final)
        self._prune(runner)

    def _point_latest(self, final: str) -> None:
        latest = osp.join(self.out_dir, self.latest_name)
        partial = osp.join(self.out_dir, f'.{self.latest_name}.partial')
        if osp.lexists(partial):
            os.remove(partial)
        try:
            os.link(final, partial)
        except OSError:  # no hard links on this file system
            shutil.copyfile(final, partial)
        fileio.replace(partial, latest)

    def _prune(self, runner) -> None:
        """Delete leftover ``.partial`` files and the checkpoints ``max_keep_ckpts`` drops."""
        ckpt = name_pattern(self.filename_tmpl)
        found = {}
        for name in os.listdir(self.out_dir):
            path = osp.join(self.out_dir, name)
            m = ckpt.fullmatch(name)
            if m:
                found[progress(m)] = path
            elif name[:1] == '.' and name.endswith('.partial') and ckpt.fullmatch(name[1:-8]):
                os.remove(path)
        if self.max_keep_ckpts <= 0:
            return
        try:
            with open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
                last = osp.realpath(f.read().strip())
        except OSError:
            last = None
        kept = 0
        for step in sorted(found, reverse=True):
            path = found[step]
            if kept < self.max_keep_ckpts and is_complete_checkpoint(path):
                kept += 1
            elif osp.realpath(path) != last:
                os.remove(path)
