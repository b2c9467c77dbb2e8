"""TAO's status.json: one JSON object per line describing the run, for TAO tooling."""
import datetime
import json
import numbers
import os
import os.path as osp
import sys
from typing import Optional

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

STARTED, RUNNING, SUCCESS, FAILURE = 'STARTED', 'RUNNING', 'SUCCESS', 'FAILURE'


def write_status(path: str, status: str, message: str, **fields) -> dict:
    """Append one status line (date, time, status, verbosity, message, fields)."""
    now = datetime.datetime.now()
    row = dict(date=now.strftime('%-m/%-d/%Y'), time=now.strftime('%H:%M:%S'),
               status=status, verbosity='ERROR' if status == FAILURE else 'INFO',
               message=message, **fields)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'a', encoding='utf-8') as f:
        f.write(json.dumps(row) + '\n')
    return row


@HOOKS.register_module()
class TAOStatusLoggerHook(Hook):
    """Write TAO's ``status.json`` from the runner's message hub.

    Lines: ``STARTED`` before the run; ``RUNNING`` every ``interval`` iterations with
    iteration, max_iters, loss, lr, time_per_iter (s) and eta, and after each validation
    with the metrics as ``kpi`` (mIoU, mAcc, aAcc in %); ``SUCCESS`` after the run; and
    ``FAILURE`` with the error when the run dies from an uncaught exception.

    Args:
        interval (int): Iterations between RUNNING lines. Default: 10.
        filename (str): Path, relative to the work dir unless absolute.
            Default: ``'status.json'``.
    """

    priority = 'LOW'  # after RuntimeInfoHook / IterTimerHook have updated the hub

    def __init__(self, interval: int = 10, filename: str = 'status.json'):
        self.interval = interval
        self.filename = filename
        self.path: Optional[str] = None
        self._done = False
        self._prev_excepthook = None

    def _write(self, status, message, **fields):
        if self.path is not None and is_main_process():
            write_status(self.path, status, message, **fields)

    def before_run(self, runner) -> None:
        self.path = self.filename if osp.isabs(self.filename) else osp.join(
            runner.work_dir, self.filename)
        self._done = False
        self._write(STARTED, f'Starting {runner.experiment_name}')
        prev = sys.excepthook

        def excepthook(exc_type, exc, tb):
            if not self._done:
                self._write(FAILURE, f'{exc_type.__name__}: {exc}')
                self._done = True
            prev(exc_type, exc, tb)

        self._prev_excepthook = prev
        sys.excepthook = excepthook

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval) and \
                runner.iter + 1 != runner.max_iters:
            return
        hub = runner.message_hub

        def scalar(key):
            buf = hub.log_scalars.get(key)
            return None if buf is None else float(buf.current())

        eta = hub.get_info('eta')
        self._write(RUNNING, f'Training iteration {runner.iter + 1}/{runner.max_iters}',
                    iteration=runner.iter + 1, max_iters=runner.max_iters,
                    loss=scalar('train/loss'), lr=scalar('train/lr'),
                    time_per_iter=scalar('train/time'),
                    eta=None if eta is None else str(datetime.timedelta(seconds=int(eta))))

    def after_val_epoch(self, runner, metrics=None) -> None:
        kpi = {k: float(v) for k, v in (metrics or {}).items()
               if isinstance(v, (numbers.Real, np.generic)) and np.ndim(v) == 0}
        self._write(RUNNING, f'Validation at iteration {runner.iter}',
                    iteration=runner.iter, kpi=kpi)

    def after_run(self, runner) -> None:
        if not self._done:
            self._write(SUCCESS, f'Training finished at iteration {runner.iter}',
                        iteration=runner.iter)
            self._done = True
        if self._prev_excepthook is not None:
            sys.excepthook = self._prev_excepthook
            self._prev_excepthook = None

    def mark_failed(self, error: BaseException) -> None:
        """Record a FAILURE for an exception caught by the caller."""
        if not self._done:
            self._write(FAILURE, f'{type(error).__name__}: {error}')
            self._done = True
