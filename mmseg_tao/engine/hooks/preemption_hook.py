"""Preemption: SIGTERM or SIGUSR1 ends training with a checkpoint of the exact iteration.

SLURM sends SIGTERM before it kills or requeues a job, and the signal chosen by
``sbatch --signal`` (usually SIGUSR1) before the time limit; torchrun passes SIGTERM on to its
workers and kills them 30 s later. :class:`PreemptionHook` turns either signal into a clean
stop: the current iteration finishes, every process agrees to stop after it (a max-reduce
of the flag, so processes that got the signal at different moments stop at the same
iteration), the checkpoint of that iteration is written atomically
(:meth:`~mmseg_tao.engine.hooks.AtomicCheckpointHook.save_now`), and :class:`Preempted` is
raised out of the training loop; the status hook writes the ``preempted`` status line and
the train task exits with :data:`PREEMPTED_EXIT_CODE`. A second signal, during the save or
later, only sets the flag again.

The next start resumes from that checkpoint as from any other: optimizer, schedulers and
iteration from mmengine's resume; the data order by drawing the batches already trained
(mmengine's iteration loop, :class:`~mmseg_tao.engine.TAOEpochBasedTrainLoop`), which replays
the data pipeline's random numbers; and the torch generator of every process (dropout,
drop-path), which this hook stores in each checkpoint and restores before the first resumed
iteration.
"""
import logging
import signal
import threading
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.dist import all_gather_object, all_reduce, get_rank, get_world_size, is_distributed
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

#: The exit status of a preempted training (sysexits' EX_TEMPFAIL: "try again later"): a
#: requeue script tests for it (tools/slurm_train.sh).
PREEMPTED_EXIT_CODE = 75
#: The signals that preempt: SLURM's (and torchrun's) SIGTERM, ``sbatch --signal``'s SIGUSR1.
PREEMPTION_SIGNALS = ('SIGTERM', 'SIGUSR1')
#: The checkpoint key of the processes' torch generator states (a list by global rank).
RNG_KEY = 'rng_states'


class Preempted(SystemExit):
    """Training stopped on a preemption signal after a checkpoint of the iteration.

    A :class:`SystemExit` with code :data:`PREEMPTED_EXIT_CODE`: a script that does not
    catch it (mmseg's ``tools/train.py`` with the hook in its config) exits with that status,
    without a traceback, so a requeue script recognises it there too.

    Args:
        signame: The signal's name (``SIGTERM``), or None when another process got it.
        iteration: Iterations done (the checkpoint's).
        checkpoint: The checkpoint written.
    """

    def __init__(self, signame: Optional[str], iteration: int, checkpoint: Optional[str]):
        self.signame = signame
        self.iteration = iteration
        self.checkpoint = checkpoint
        by = signame or 'a signal to another process'
        super().__init__(f'preempted by {by} after iteration {iteration}; checkpoint '
                         f'{checkpoint} written; the next start resumes from it')
        self.code = PREEMPTED_EXIT_CODE

    def status_fields(self) -> Dict[str, Any]:
        """The fields of the status line that records the preemption."""
        return dict(preempted=True, signal=self.signame, cur_iter=self.iteration,
                    checkpoint=self.checkpoint)


def rng_state() -> Dict[str, Optional[torch.Tensor]]:
    """This process's torch generator states (CPU, and the current GPU's when in use)."""
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and \
        torch.cuda.is_initialized() else None
    return dict(torch=torch.get_rng_state(), cuda=cuda)


def set_rng_state(state: Dict[str, Optional[torch.Tensor]]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state['torch'])
    if state.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stop training on a preemption signal with a checkpoint of the iteration.

    Signals are taken from :meth:`before_run` until the training loop ends (the previous
    handlers are put back however it ends); only the main thread can take them.

    Args:
        signals (Sequence[str]): Signal names that preempt. Default:
            :data:`PREEMPTION_SIGNALS`.
        restore_rng (bool): Store the processes' torch generator states in checkpoints and
            restore them on resumption. Default: True.
    """

    priority = 80  # after the status logger (LOW, 70), before CheckpointHook (VERY_LOW, 90)

    def __init__(self, signals: Sequence[str] = PREEMPTION_SIGNALS,
                 restore_rng: bool = True):
        self.signals = [getattr(signal, name) for name in signals]
        self.restore_rng = restore_rng
        self.received: List[int] = []
        self._previous: Dict[int, Any] = {}
        self._rng_states: Optional[List[dict]] = None
        self._resume_rng: Optional[List[dict]] = None

    # ------------------------------------------------------------------ signals
    def _take(self, signum: int, frame) -> None:
        self.received.append(signum)  # only this: a second signal cannot interrupt a save

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            print_log('PreemptionHook: not the main thread; preemption signals are not '
                      'taken', logger='current', level=logging.WARNING)
            return
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._take)

    def _uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    def before_run(self, runner) -> None:
        self.received = []
        loop = getattr(runner, '_train_loop', None)
        if loop is None or isinstance(loop, dict):  # a test / validation run
            return
        run = loop.run

        def run_taking_signals(*args, **kwargs):
            self._install()
            try:
                return run(*args, **kwargs)
            finally:
                self._uninstall()

        loop.run = run_taking_signals

    # ------------------------------------------------------------------ training
    def _stop_agreed(self) -> bool:
        """Whether any process got a signal (the same answer on every process)."""
        flag = torch.tensor([1 if self.received else 0], dtype=torch.int32)
        if is_distributed():
            all_reduce(flag, op='max')
        return bool(flag.item())

    @staticmethod
    def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
        return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)

    def _interval_save_due(self, runner, at_epoch_end: bool) -> bool:
        """Whether the checkpoint hook saves at this point (same answer on all processes)."""
        hook = self._checkpoint_hook(runner)
        if hook is None or bool(hook.by_epoch) != at_epoch_end:
            return False
        if at_epoch_end:
            return hook.every_n_epochs(runner, hook.interval, hook.save_begin) or (
                hook.save_last and hook.is_last_train_epoch(runner))
        return hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
            hook.save_last and hook.is_last_train_iter(runner))

    def _gather_rng(self) -> None:
        if self.restore_rng:
            state = rng_state()
            self._rng_states = all_gather_object(state) if is_distributed() else [state]

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        stop = self._stop_agreed() and runner.iter + 1 < runner.max_iters  # last: finish
        if stop or self._interval_save_due(runner, at_epoch_end=False):
            self._gather_rng()
        if not stop:
            return
        path = self._save(runner)
        signame = signal.Signals(self.received[0]).name if self.received else None
        self._uninstall()
        stop = Preempted(signame, runner.iter + 1, path)
        print_log(f'Training {stop}', logger='current', level=logging.WARNING)
        raise stop

    def after_train_epoch(self, runner) -> None:
        if self._interval_save_due(runner, at_epoch_end=True):
            self._gather_rng()

    def _save(self, runner) -> Optional[str]:
        """Write the checkpoint of the iterations done, whatever the interval."""
        hook = self._checkpoint_hook(runner)
        if hasattr(hook, 'save_now'):
            return hook.save_now(runner)
        name = f'iter_{runner.iter + 1}.pth'  # no atomic writer configured
        runner.save_checkpoint(runner.work_dir, name, by_epoch=False)
        return f'{runner.work_dir}/{name}'

    # ------------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._rng_states is not None:
            checkpoint[RNG_KEY] = self._rng_states
            self._rng_states = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resume_rng = checkpoint.get(RNG_KEY) if self.restore_rng else None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Before the first resumed iteration (the trained batches already drawn again):
        this process's torch generator as it was when the checkpoint was written."""
        states, self._resume_rng = self._resume_rng, None
        if not states:
            return
        if len(states) != get_world_size():
            print_log(f'the checkpoint has the random states of {len(states)} process(es), '
                      f'this run has {get_world_size()}: random states not restored',
                      logger='current', level=logging.WARNING)
            return
        set_rng_state(states[get_rank()])
