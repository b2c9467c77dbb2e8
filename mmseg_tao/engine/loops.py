"""The training loop of TAO 6/7 specs: epochs as PyTorch Lightning runs them."""
import logging
from typing import Dict, Optional, Union

from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader


@LOOPS.register_module()
class TAOEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's :class:`EpochBasedTrainLoop` with Lightning's validation rule and
    resumption inside an epoch.

    * Validation follows Lightning's ``check_val_every_n_epoch`` (TAO 6/7's
      ``validation_interval``): after each epoch whose number (1-based) is a multiple of
      ``val_interval``, and only then; mmengine's loop also validates after the last epoch.
    * A run resumed from a checkpoint saved inside an epoch (TAO's
      ``checkpoint_interval_unit: step``) trains only that epoch's remaining batches: the
      ones already trained are drawn and skipped, so that the run keeps its
      ``max_epochs x len(dataloader)`` iterations (where the learning-rate schedules end)
      and, with the same seed, the sampler's order of that epoch.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader or dict): The training data loader.
        max_epochs (int): Epochs to train.
        val_begin (int): The first epoch that may validate. Default: 1.
        val_interval (int): Validate after every ``val_interval``-th epoch. Default: 1.
        dynamic_intervals (list, optional): mmengine's ``(milestone, interval)`` pairs.
        max_iters (int, optional): The iterations the config's schedules were computed for
            (``max_epochs`` x the iterations per epoch counted from the training images);
            a different count from the data loader is warned about: the training images
            changed since the config was written, and the schedules no longer end with the
            training. Default: None (not checked).
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict], max_epochs: int,
                 val_begin: int = 1, val_interval: int = 1, dynamic_intervals=None,
                 max_iters: Optional[int] = None) -> None:
        super().__init__(runner, dataloader, max_epochs, val_begin=val_begin,
                         val_interval=val_interval, dynamic_intervals=dynamic_intervals)
        if max_iters is not None and max_iters != self._max_iters:
            print_log(
                f'the learning-rate schedule was written for {max_iters} iterations, but '
                f'{max_epochs} epoch(s) of {len(self.dataloader)} iteration(s) are '
                f'{self._max_iters}: the training images changed since the config was '
                'written; write it again (mmseg-tao spec2cfg) for a schedule that ends with '
                'the training', logger='current', level=logging.WARNING)

    def run(self):
        """Train ``max_epochs`` epochs, validating after the multiples of
        ``val_interval``."""
        self.runner.call_hook('before_train')
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._epoch >= self.val_begin
                    and self._epoch % self.val_interval == 0):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self) -> None:
        """Train one epoch; after a resumption inside it, its remaining batches only."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)  # > 0 after a resumption
        if done < len(self.dataloader):
            for idx, data_batch in enumerate(self.dataloader):
                if idx >= done:
                    self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
