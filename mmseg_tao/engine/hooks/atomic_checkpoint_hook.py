"""CheckpointHook whose checkpoints appear complete or not at all."""
import os
import os.path as osp
import tempfile

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', dir=osp.dirname(path))
    with os.fdopen(fd, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`CheckpointHook` that writes each checkpoint to a hidden ``.partial`` file,
    flushes it to disk and renames it into place, then updates ``last_checkpoint`` the
    same way and only then removes checkpoints beyond ``max_keep_ckpts``.

    A process killed at any moment therefore never leaves a truncated ``iter_N.pth``:
    the newest ``iter_N.pth`` is always loadable (leftover ``.partial`` files are ignored
    by :func:`mmseg_tao.engine.find_resume_checkpoint` and removed by the next save).
    Arguments are :class:`CheckpointHook`'s. Remote backends fall back to its behaviour.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not osp.isdir(str(self.out_dir)):
            return super()._save_checkpoint_with_step(runner, step, meta)
        ckpt_filename = self.filename_tmpl.format(step)
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
        partial = osp.join(self.out_dir, partial_name)
        with open(partial, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(partial, final)
        _fsync_dir(self.out_dir)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), final)
        self._prune(runner, step)

    def _prune(self, runner, step: int) -> None:
        if self.max_keep_ckpts <= 0:
            return
        if not self.keep_ckpt_ids or self.keep_ckpt_ids[-1] != step:
            self.keep_ckpt_ids.append(step)
        while len(self.keep_ckpt_ids) > self.max_keep_ckpts:
            old = osp.join(self.out_dir, self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
            if osp.isfile(old):
                os.remove(old)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
