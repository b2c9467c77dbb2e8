"""mmengine's RuntimeInfoHook without a host-device synchronisation in every iteration."""
import math
from typing import Dict, List, Optional

import torch
from mmengine.hooks import CheckpointHook, LoggerHook, RuntimeInfoHook
from mmengine.registry import HOOKS

from .tao_status_logger_hook import TAOStatusLoggerHook

READERS = (LoggerHook, TAOStatusLoggerHook, CheckpointHook)


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """:class:`RuntimeInfoHook` that hands the step's outputs (loss, accuracy) to the
    message hub in batches.

    mmengine's hook turns every output into a Python number after every iteration
    (``tensor.item()``), which makes the CPU wait until the GPU has finished the step
    before it can start the next one. Here the values stay on the device and are copied
    in one transfer every ``interval`` iterations, in order, so the message hub holds
    exactly what it would have held by the time anything reads it: the interval is the
    greatest common divisor of the intervals of the hooks that read it (loggers, the
    status file, by-iteration checkpoints, which save the hub), and the buffer is also
    flushed at the last iteration and before validation.

    Args:
        interval (int, optional): Flush every ``interval`` iterations. Default: derived
            from the runner's hooks as above.
    """

    def __init__(self, interval: Optional[int] = None):
        self.interval = interval
        self._pending: List[Dict] = []

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.interval is None:
            intervals = [h.interval for h in runner.hooks if isinstance(h, READERS)
                         and isinstance(getattr(h, 'interval', None), int) and h.interval > 0
                         and not getattr(h, 'by_epoch', False)]
            self.interval = math.gcd(*intervals) if intervals else 1

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if outputs is not None:
            self._pending.append({k: v.detach() if isinstance(v, torch.Tensor) else v
                                  for k, v in outputs.items()})
        if self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner):
            self.flush(runner)

    def before_val(self, runner) -> None:
        self.flush(runner)
        super().before_val(runner)

    def after_train(self, runner) -> None:
        self.flush(runner)
        super().after_train(runner)

    def flush(self, runner) -> None:
        """Move the buffered values to the message hub (one device-to-host copy)."""
        if not self._pending:
            return
        tensors = [v for row in self._pending for v in row.values()
                   if isinstance(v, torch.Tensor) and v.numel() == 1]
        values = iter(torch.stack([t.reshape(()).float().to(tensors[0].device)
                                   for t in tensors]).tolist() if tensors else [])
        for row in self._pending:
            for key, value in row.items():
                if isinstance(value, torch.Tensor) and value.numel() == 1:
                    value = next(values)
                runner.message_hub.update_scalar(f'train/{key}', value)
        self._pending = []
