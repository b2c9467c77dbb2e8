"""TAO's status.json during training, in the schema of the spec's TAO form (5.5 or 6/7)."""
import datetime
import math
import os.path as osp
import time
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size, is_distributed
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop, EpochBasedTrainLoop

from ..status import (
    FAILURE,
    STARTED,
    StatusLogger,
    active_logger,
    config_form,
    failure_message,
    finish_lines,
    start_lines,
    tao5_time_per_iter,
    tao6_scores,
)
from .preemption_hook import Preempted

# TAO 5.5's own lines around the training loop (cv/segformer/scripts/train.py).
TAO5_TRAIN_START = '********************** Start Segformer Training **********************.'
TAO5_TRAIN_END = '********************** Completed Segformer Training **********************.'
IGNORE_INDEX = 255  # TAO 6's cross_entropy and MeanIoUMeter ignore label 255


def write_status(path: str, status: str, message: str, **fields) -> dict:
    """Append one TAO status line (``fields``, date, time, status, verbosity, message)."""
    return StatusLogger(path).write(fields, status=status, message=message)


def _mean_over_processes(total: Any, count: int) -> float:
    """``sum(total) / sum(count)`` over all processes (each has its shard of the data);
    NaN without any count."""
    total = total.item() if isinstance(total, torch.Tensor) else total
    sums = torch.tensor([float(total), float(count)], dtype=torch.float64)
    if is_distributed():
        all_reduce(sums, op='sum')
    return sums[0].item() / sums[1].item() if sums[1].item() else math.nan


def _td(seconds: float) -> str:
    return str(datetime.timedelta(seconds=seconds))


@HOOKS.register_module()
class TAOStatusLoggerHook(Hook):
    """Write TAO's ``status.json`` while training, as the spec's TAO writes it.

    Both forms: STARTED ``"Starting <name> train."`` before the run; after it TAO's RUNNING
    ``"Train finished successfully."`` and mmseg-tao's SUCCESS line; FAILURE with the error
    when the training loop raises. Inside :func:`~mmseg_tao.engine.status.task_status`
    (the train task) these lines are the task's and the hook writes through its logger.

    TAO 5 form (TAO 5.5's ``TAOTextLoggerHook``, ``cv/segformer/utils/logger.py``): STARTED
    and RUNNING "Start/Completed Segformer Training" banners; every ``interval`` iterations
    (and at the last) a line with ``mode: "train"``, ``cur_iter``, ``time_per_iter``
    (string), ``eta``, ``lr``, ``loss`` (``decode.loss_ce``, mean over the log window),
    ``train_accuracy`` (``decode.acc_seg``, %), and ``graphical`` {loss, train_accuracy};
    after each validation ``mode: "val"``, ``cur_iter``, ``"Mean IOU"`` and ``mAcc`` (%)
    with the same two as ``kpi``.

    TAO 6 form (``TAOStatusLogger`` of ``core/callbacks/loggers.py`` and the Lightning
    module's epoch hooks): STARTED "Starting Training Loop."; per epoch, after its
    validation when there is one, RUNNING "Eval metrics generated." with ``kpi``
    ``val_loss``, ``val_acc``, ``val_miou``, ``val_mf1``, ``val_mprecision``,
    ``val_mrecall`` (fractions), then "Training loop in progress" with ``epoch``,
    ``step``, ``max_epoch`` (last epoch index), ``max_step``, ``time_per_epoch``,
    ``time_per_step``, ``eta`` (timedelta strings) and ``kpi`` ``train_loss`` plus that
    epoch's ``val_*``, then "Train metrics generated." with ``kpi`` ``train_loss`` (the
    epoch's mean loss); at the end "Training loop complete.". ``kpi`` persists to later
    lines as on TAO's logger. Losses are means over the images of all processes (each sums
    its shard; the sums are reduced). Epochs are mmengine's (``EpochBasedTrainLoop``) or, in an
    iteration-based loop, runs of ``iters_per_epoch`` iterations. ``val_loss`` is the
    cross-entropy (label 255 ignored) of the validation logits, averaged over images.

    Args:
        interval (int): TAO 5 form: iterations between training lines. Default: 10.
        filename (str): Path, relative to the work dir unless absolute.
            Default: ``'status.json'``.
        tao_version (int, optional): 5 or 6 (7 writes as 6). Default: the config's
            (:func:`~mmseg_tao.engine.status.config_form`).
        iters_per_epoch (int, optional): TAO 6 form, iteration-based loop: iterations in
            one epoch. Default: the config's ``tao_iters_per_epoch``, else the training
            images per process divided by the batch size, rounded up.
    """

    priority = 'LOW'  # after RuntimeInfoHook / IterTimerHook have updated the hub

    def __init__(self, interval: int = 10, filename: str = 'status.json',
                 tao_version: Optional[int] = None, iters_per_epoch: Optional[int] = None):
        self.interval = interval
        self.filename = filename
        self.tao_version = tao_version
        self.iters_per_epoch = iters_per_epoch
        self.path: Optional[str] = None
        self.logger: Optional[StatusLogger] = None
        self.form = 5
        self._own = False  # this hook writes the task's start / finish / failure lines
        self._done = False
        self._loop_run = None

    # ------------------------------------------------------------------ run
    def before_run(self, runner) -> None:
        self.logger = None
        if not isinstance(getattr(runner, '_train_loop', None), BaseLoop):
            return  # a test or validation run: no training lines
        self.path = self.filename if osp.isabs(self.filename) else osp.join(
            runner.work_dir, self.filename)
        self.form = 6 if (self.tao_version or config_form(runner.cfg)) >= 6 else 5
        outer = active_logger()
        self._own = outer is None or outer.path != osp.abspath(self.path)
        self.logger = StatusLogger(self.path) if self._own else outer
        self._done = False
        if self._own:
            start_lines(self.logger, 'train', self.form)
            self._guard_loop(runner.train_loop)
        if self.form == 5:
            self.logger.write(status=STARTED, message=TAO5_TRAIN_START)

    def _guard_loop(self, loop) -> None:
        """Record a FAILURE when the training loop raises (mmengine has no error hook)."""
        run = loop.run

        def guarded(*args, **kwargs):
            try:
                return run(*args, **kwargs)
            except BaseException as error:
                self.mark_failed(error)
                raise

        self._loop_run = (loop, run)
        loop.run = guarded

    def _unguard_loop(self) -> None:
        if self._loop_run is not None:
            loop, _ = self._loop_run
            loop.__dict__.pop('run', None)
            self._loop_run = None

    def after_run(self, runner) -> None:
        if self.logger is None:
            return
        if self.form == 5:
            self.logger.write(message=TAO5_TRAIN_END)
        if self._own and not self._done:
            finish_lines(self.logger, 'train')
            self._done = True
        self._unguard_loop()

    def mark_failed(self, error: BaseException) -> None:
        """Record a FAILURE for ``error`` (once). A preemption
        (:class:`~mmseg_tao.engine.hooks.preemption_hook.Preempted`) is TAO's interruption
        line with ``preempted: true``, the signal, the iteration and the checkpoint written."""
        if self.logger is not None and self._own and not self._done:
            message = failure_message(error, 'train', self.form)
            data = None
            if isinstance(error, Preempted):
                interrupted = failure_message(KeyboardInterrupt(), 'train', self.form)
                message, data = f'{interrupted}: {error}', error.status_fields()
            self.logger.write(data, status=FAILURE, message=message)
            self._done = True
        self._unguard_loop()

    # ------------------------------------------------------------------ training
    def before_train(self, runner) -> None:
        if self.logger is None or self.form != 6:
            return
        self._by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        if self._by_epoch:
            self._ipe = len(runner.train_dataloader)
            self._max_epochs = runner.max_epochs
        else:
            self._ipe = self.iters_per_epoch or runner.cfg.get('tao_iters_per_epoch') or \
                self._count_iters_per_epoch(runner)
            self._max_epochs = math.ceil(runner.max_iters / self._ipe)
        self._epoch_start: Optional[float] = None
        self._step_start = 0.0
        self._avg_step, self._steps = 0.0, 0
        self._loss_sum: Any = 0.0
        self._loss_n = 0
        self._pending: Optional[Dict[str, Any]] = None
        self._val_kpi: Optional[Dict[str, float]] = None
        self.logger.write(status=STARTED, message='Starting Training Loop.')

    @staticmethod
    def _count_iters_per_epoch(runner) -> int:
        loader = runner.train_dataloader
        per_process = math.ceil(len(loader.dataset) / get_world_size())
        return max(1, math.ceil(per_process / (loader.batch_size or 1)))

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.logger is None or self.form != 6:
            return
        self._flush_epoch()  # the previous epoch had no validation
        now = time.time()
        if self._epoch_start is None:
            self._epoch_start = now
        self._step_start = now

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if self.logger is None:
            return
        if self.form == 5:
            if self.every_n_train_iters(runner, self.interval) or \
                    self.is_last_train_iter(runner):
                self._write_tao5_train(runner)
            return
        # TAO 6: cumulative mean step time; the epoch's losses summed on the device.
        step = time.time() - self._step_start
        self._avg_step = (step + self._steps * self._avg_step) / (self._steps + 1)
        self._steps += 1
        loss = (outputs or {}).get('loss')
        if loss is not None:
            self._loss_sum = self._loss_sum + (
                loss.detach().float() if isinstance(loss, torch.Tensor) else float(loss))
            self._loss_n += 1
        done = runner.iter + 1
        if not self._by_epoch and (done % self._ipe == 0 or done == runner.max_iters):
            self._end_epoch((done - 1) // self._ipe, done)

    def after_train_epoch(self, runner) -> None:
        if self.logger is not None and self.form == 6 and self._by_epoch:
            self._end_epoch(runner.epoch, runner.iter)

    def after_train(self, runner) -> None:
        if self.logger is None or self.form != 6:
            return
        self._flush_epoch()
        self.logger.write(message='Training loop complete.')

    def _write_tao5_train(self, runner) -> None:
        hub = runner.message_hub
        window = getattr(runner.log_processor, 'window_size', 10)
        window = window if isinstance(window, int) else 10

        def scalar(key, mean=False):
            buf = hub.log_scalars.get(f'train/{key}')
            if buf is None:
                return None
            return float(buf.mean(window) if mean else buf.current())

        loss = scalar('decode.loss_ce', True)
        loss = scalar('loss', True) if loss is None else loss
        accuracy, seconds, eta = scalar('decode.acc_seg'), scalar('time', True), \
            hub.get_info('eta')
        data = dict(mode='train', cur_iter=runner.iter + 1)
        if seconds is not None:
            data['time_per_iter'] = tao5_time_per_iter(seconds)
        if eta is not None:
            data['eta'] = str(datetime.timedelta(seconds=int(eta)))
        data.update(lr=scalar('lr'), loss=loss)
        if accuracy is not None:
            data['train_accuracy'] = accuracy
        self.logger.graphical = {k: data[k] for k in ('loss', 'train_accuracy') if k in data}
        self.logger.write(data)

    def _end_epoch(self, epoch: int, step: int) -> None:
        self._pending = dict(epoch=epoch, step=step,
                             train_loss=_mean_over_processes(self._loss_sum, self._loss_n))
        self._loss_sum, self._loss_n = 0.0, 0
        self._val_kpi = None

    def _flush_epoch(self) -> None:
        """Write the finished epoch's lines (after its validation, when it has one)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        per_epoch = time.time() - (self._epoch_start or time.time())
        epoch = pending['epoch']
        data = dict(epoch=epoch, step=pending['step'], max_epoch=self._max_epochs - 1,
                    max_step=self._max_epochs * self._ipe,
                    time_per_epoch=_td(per_epoch), time_per_step=_td(self._avg_step),
                    eta=_td(max(0, self._max_epochs - 1 - epoch) * per_epoch))
        train = dict(train_loss=pending['train_loss'])
        self.logger.write(data, message='Training loop in progress',
                          kpi={**train, **(self._val_kpi or {})})
        self.logger.kpi = train
        self.logger.write(message='Train metrics generated.')
        self._epoch_start, self._val_kpi = None, None

    # ------------------------------------------------------------------ validation
    def before_val_epoch(self, runner) -> None:
        self._val_loss_sum: Any = 0.0
        self._val_loss_n = 0

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs=None) -> None:
        if self.logger is None or self.form != 6:
            return
        for sample in outputs or []:
            loss = self._sample_loss(sample)
            if loss is not None:
                self._val_loss_sum = self._val_loss_sum + loss
                self._val_loss_n += 1

    @staticmethod
    def _sample_loss(sample) -> Optional[torch.Tensor]:
        """TAO 6's cross-entropy of one prediction: logits resized (bilinear) to the mask."""
        if 'seg_logits' not in sample or 'gt_sem_seg' not in sample:
            return None
        logits = sample.seg_logits.data.float()[None]
        gt = sample.gt_sem_seg.data.long().to(logits.device)
        gt = gt[None, 0] if gt.dim() == 3 else gt[None]
        if logits.shape[-2:] != gt.shape[-2:]:
            logits = F.interpolate(logits, size=gt.shape[-2:], mode='bilinear',
                                   align_corners=False)
        if not bool((gt != IGNORE_INDEX).any()):
            return None
        return F.cross_entropy(logits, gt, ignore_index=IGNORE_INDEX).detach()

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if self.logger is None:
            return
        metrics = metrics or {}
        if self.form == 5:
            data = dict(mode='val', cur_iter=runner.iter)
            kpi = {}
            for name, key in (('Mean IOU', 'mIoU'), ('mAcc', 'mAcc')):
                if key in metrics:
                    kpi[name] = data[name] = float(metrics[key])
            self.logger.kpi = kpi
            self.logger.write(data)
            return
        metric = next((m for m in getattr(runner.val_evaluator, 'metrics', [])
                       if getattr(m, 'tao_scores', None)), None)
        scores = tao6_scores(metric, metrics)
        kpi = dict(val_loss=_mean_over_processes(self._val_loss_sum, self._val_loss_n))
        kpi.update({f'val_{k}': v for k, v in scores.items()})
        self.logger.kpi = kpi
        self.logger.write(message='Eval metrics generated.')
        self._val_kpi = kpi
        self._flush_epoch()
