"""How a TAO 6/7 spec trains: by epochs, as TAO 6/7's PyTorch Lightning trainer.

TAO 6.25.10 / 7.0.1 (``core/initialize_experiments.py``,
``core/lightning/tao_lightning_module.py`` ``configure_callbacks``,
``cv/segformer/dataloader/pl_segformer_data_module.py``, ``cv/segformer/model/
segformer_pl_model.py`` ``configure_optimizers``):

* ``max_epochs`` = ``train.num_epochs``; validation after each epoch whose number is a
  multiple of ``validation_interval`` (``check_val_every_n_epoch``), none at the end
  otherwise;
* ``ModelCheckpoint(every_n_epochs | every_n_train_steps=checkpoint_interval,
  filename='model_{epoch:03d}_{step:05d}', save_last='link', save_top_k=-1)`` with
  ``CHECKPOINT_EQUALS_CHAR='_'`` and ``FILE_EXTENSION='.pth'``: Lightning's
  ``format_checkpoint_name`` inserts each field's name (``auto_insert_metric_name``), so
  the file after the 2nd epoch of 3 iterations is ``model_epoch_001_step_00006.pth``
  (``epoch``: the 0-based epoch in progress; ``step``: optimizer steps taken), and the
  last one is also ``segformer_model_latest.pth``; no extra save at the end;
* training batches of ``batch_size`` with ``drop_last=False`` (a short last batch);
* ``linear``: a LambdaLR per step over ``estimated_stepping_batches`` (num_epochs x
  iterations per epoch); ``step``: StepLR x0.1 every ``num_epochs // 3`` epochs.

The learning-rate schedules are written in iterations (the epochs x iterations per epoch
counted from the training images, printed when the spec is loaded); the loop checks that
count against its data loader when training starts.
"""
from typing import List, Optional

from . import dataloaders as data

#: TAO 6/7's checkpoint name: Lightning's ``model_{epoch:03d}_{step:05d}`` with the field
#: names inserted and ``'_'`` for ``'='``.
CHECKPOINT_TEMPLATE = 'model_epoch_{epoch:03d}_step_{step:05d}.pth'
#: ``ModelCheckpoint.CHECKPOINT_NAME_LAST``: ``<checkpoint_filename>_latest`` (SegFormer).
LATEST_NAME = 'segformer_model_latest.pth'
#: Lightning's ``log_every_n_steps`` default.
LOG_EVERY_N_STEPS = 50


def train_loop(spec) -> dict:
    """``train_cfg``: :class:`~mmseg_tao.engine.loops.TAOEpochBasedTrainLoop` with
    ``num_epochs`` and ``validation_interval`` (epochs), and the iteration count the
    schedules assume (``max_iters``), when it is known."""
    t = spec.tao6.train
    out = dict(type='TAOEpochBasedTrainLoop', max_epochs=t.num_epochs,
               val_interval=t.validation_interval)
    if spec.iters_per_epoch:
        out['max_iters'] = t.num_epochs * spec.iters_per_epoch
    return out


def train_dataloader(spec) -> Optional[dict]:
    """The training loader: one shuffled pass over the images per epoch
    (``DefaultSampler``, which pads to a multiple of the processes as TAO's
    DistributedSampler), the last batch short (``drop_last=False``)."""
    loader = data.train_dataloader(spec)
    if loader is None:
        return None
    loader['sampler'] = dict(type='DefaultSampler', shuffle=spec.dataset.shuffle)
    loader['drop_last'] = False
    return loader


def checkpoint_hook(spec) -> dict:
    """``default_hooks.checkpoint``: every ``checkpoint_interval`` epochs or steps, named
    and laid out as TAO 6/7's, every one kept, none extra at the end."""
    t = spec.tao6.train
    return dict(type='AtomicCheckpointHook', by_epoch=t.checkpoint_interval_unit == 'epoch',
                interval=t.checkpoint_interval, max_keep_ckpts=-1, save_last=False,
                filename_tmpl=CHECKPOINT_TEMPLATE, latest_name=LATEST_NAME, layout='tao6')


def logging_interval(spec) -> int:
    """Iterations between log lines: Lightning's 50, at most one epoch (mmengine's
    LoggerHook also logs at the end of each epoch)."""
    return min(LOG_EVERY_N_STEPS, spec.iters_per_epoch or LOG_EVERY_N_STEPS)


def schedulers(spec) -> List[dict]:
    """TAO 6's schedules, per iteration. ``linear``: factor 1e-6 + (1 - 1e-6) * i / w for
    i < w = total // 100, then 1 - (i - w) / (T + 1) for the T = total - w others.
    mmengine's LinearLR reaches ``end_factor`` at step ``end - 1``, so the warm-up ends at
    w + 1 (factor 1 at i = w, where the decay starts) and the decay ends at 2 / (T + 1) at
    i = total - 1. ``step``: x0.1 every num_epochs // 3 epochs."""
    total = spec.train.max_iters
    if spec.tao6.train.optim.policy == 'step':
        epochs = max(1, spec.tao6.train.num_epochs // 3)
        return [dict(type='StepLR', step_size=epochs * (spec.iters_per_epoch or 1), gamma=0.1,
                     by_epoch=False, begin=0, end=total)]
    warm = total // 100
    out = [dict(type='LinearLR', start_factor=1e-6, end_factor=1.0, by_epoch=False, begin=0,
                end=warm + 1)] if warm else []
    rest = total - warm
    return out + [dict(type='LinearLR', start_factor=1.0, end_factor=2.0 / (rest + 1),
                       by_epoch=False, begin=warm, end=total)]
