"""From a TAO spec to a ready mmengine config for one task, and process launching."""
import os.path as osp
import signal
import subprocess
import sys
import threading
from typing import Optional, Sequence

from mmengine.config import Config

from ..engine import find_resume_checkpoint
from ..engine.hooks.preemption_hook import PREEMPTED_EXIT_CODE, PREEMPTION_SIGNALS
from ..models.utils.tao_encryption import set_encryption_key
from ..spec import load_spec, spec_to_config
from ..spec.schema import ExperimentSpec
from ..spec.translate import results_dir, spec_warnings
from .launch import LaunchPlan, plan_launch, select_device
from .nodes import NodePlan, NodeSetupError, free_port


def task_config(spec: ExperimentSpec, task: str, launcher: str = 'none',
                plan: Optional[LaunchPlan] = None) -> Config:
    """The mmengine config that runs ``task`` for ``spec``.

    train: results in ``<results_dir>/train``; resumes from
    ``train.resume_training_checkpoint_path`` or else the newest complete ``iter_N.pth``
    (TAO 6/7 specs: ``model_epoch_E_step_S.pth``) there. evaluate / inference / export:
    the task's checkpoint is loaded, training parts are dropped. The distributed backend
    follows the device (NCCL on GPUs, gloo on CPU) and SyncBN is kept only for several GPU
    processes (``plan``, default: this machine).
    """
    plan = plan or plan_launch(spec, task, launched=launcher != 'none')
    cfg = spec_to_config(spec)
    mask_encryption_key(cfg.get('tao_spec'))
    cfg['work_dir'] = results_dir(spec, task)
    cfg['launcher'] = launcher
    cfg['env_cfg']['dist_cfg'] = dict(backend=plan.backend)
    if not plan.sync_bn:
        cfg['sync_bn'] = None
    if plan.device == 'cuda':  # page-locked batches: asynchronous copies to the GPU
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if cfg.get(loader):
                cfg[loader]['pin_memory'] = True
    if task == 'train':
        resume_from = spec.train.resume_training_checkpoint_path or \
            newest_checkpoint(cfg['work_dir'])
        cfg['custom_hooks'] = list(cfg.get('custom_hooks') or []) + [
            dict(type='PreemptionHook')]
        if plan.world_size > 1:  # results gathered by communication: no shared tmp dir
            for key in ('val_evaluator', 'test_evaluator'):
                _collect_by_communication(cfg.get(key))
        if resume_from:
            cfg.update(load_from=resume_from, resume=True)
            cfg['model']['backbone']['init_cfg'] = None  # the checkpoint has everything
    else:
        cfg.update(load_from=getattr(spec, task).checkpoint, resume=False,
                   train_dataloader=None, train_cfg=None, optim_wrapper=None,
                   param_scheduler=None, val_dataloader=None, val_cfg=None,
                   val_evaluator=None)
        cfg['model']['backbone']['init_cfg'] = None
        cfg['custom_hooks'] = []
        if task == 'evaluate' and cfg.get('test_dataloader'):
            # A broken or mismatched file: one message before the run, not an assertion
            # from inside the data loader.
            cfg['test_dataloader'] = dict(cfg['test_dataloader'])
            cfg['test_dataloader']['dataset'] = dict(cfg['test_dataloader']['dataset'],
                                                     check_data=True)
    return Config(cfg)


def newest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a training resumes from (:func:`find_resume_checkpoint`); in a
    process group, global rank 0's choice, which every process must see.

    Raises:
        NodeSetupError: Another process does not see rank 0's checkpoint: the results dir is
            not on a file system all nodes share.
    """
    import torch.distributed as torch_dist
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return find_resume_checkpoint(work_dir)
    from mmengine.dist import broadcast_object_list, get_rank
    choice = [find_resume_checkpoint(work_dir) if get_rank() == 0 else None]
    broadcast_object_list(choice)
    if choice[0] and not osp.isfile(choice[0]):
        raise NodeSetupError(
            f'results_dir: process {get_rank()} does not see {choice[0]}, the checkpoint '
            'process 0 resumes from; a multi-node run needs its results_dir on a file '
            'system that all nodes share')
    return choice[0]


def _collect_by_communication(evaluator) -> None:
    """Make an evaluator's metrics gather the processes' results by torch.distributed
    (mmengine's ``collect_device='gpu'``, which gloo serves too) instead of through a
    temporary directory, which other machines do not see."""
    metrics = evaluator if isinstance(evaluator, list) else \
        evaluator.get('metrics', evaluator) if isinstance(evaluator, dict) else []
    for metric in metrics if isinstance(metrics, list) else [metrics]:
        if isinstance(metric, dict):
            metric['collect_device'] = 'gpu'


def prepare(spec_path: str, overrides: Sequence[str], task: str,
            tao_version: Optional[int] = None):
    """Load and check the spec for ``task`` (``tao_version`` 5 or 6 forces a schema); print
    what was resolved and warnings. The spec's ``encryption_key`` is kept for decrypting
    TAO-encrypted checkpoints in this process (never written to the config)."""
    notes = []
    spec = load_spec(spec_path, overrides, task=task, notes=notes, tao_version=tao_version)
    for note in notes:
        print(f'note: {note}', file=sys.stderr)
    for warning in spec_warnings(spec, task):
        print(f'warning: {warning}', file=sys.stderr)
    set_encryption_key(encryption_key(spec))
    return spec


def encryption_key(spec: ExperimentSpec) -> Optional[str]:
    """The spec's top-level ``encryption_key`` (a TAO 6/7 spec's own, or TAO 5's)."""
    tao6 = getattr(spec, 'tao6', None)
    return getattr(tao6, 'encryption_key', None) or spec.encryption_key


def mask_encryption_key(node) -> None:
    """Mask every set ``encryption_key`` of the recorded spec in place: the config is
    written into the work dir and its log (TAO masks the key in its logs too); the loader
    has the key from :func:`prepare`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'encryption_key' and value:
                node[key] = '*' * 8
            else:
                mask_encryption_key(value)


def relaunch_distributed(task: str, spec_path: str, overrides: Sequence[str],
                         plan: LaunchPlan, tao_version: Optional[int] = None,
                         nodes: Optional[NodePlan] = None) -> int:
    """Run this command again under torchrun: one process per GPU of ``plan`` (each
    seeing only its GPUs), or ``plan.nproc`` CPU processes (gloo); with ``nodes``, this
    node's processes of a multi-node run (torchrun's node rank and master, or rendezvous).

    torchrun restarts the processes when ``PET_MAX_RESTARTS`` (its ``--max-restarts``) is
    set; each start resumes from the newest complete checkpoint. A preemption signal
    (SIGTERM, SIGUSR1) to this process is passed on to torchrun as SIGTERM, which passes
    it on to the processes; the run then ends with :data:`PREEMPTED_EXIT_CODE`.
    """
    nodes = nodes or NodePlan(1, plan.nproc, master_port=free_port())
    cmd = [sys.executable, '-m', 'torch.distributed.run', *nodes.torchrun_args(), '-m',
           'mmseg_tao.cli', task, '-e', osp.abspath(spec_path), *overrides,
           '--launcher', 'pytorch']
    if tao_version is not None:
        cmd += ['--tao-version', str(tao_version)]
    where = (f'GPUs {plan.gpu_ids} (CUDA_VISIBLE_DEVICES={plan.visible_devices}), '
             f'{plan.backend}' if plan.device == 'cuda' else f'CPU, {plan.backend}')
    what = (f'{plan.nproc} processes' if nodes.num_nodes == 1 else
            f'{nodes.describe()},')
    print(f'launching {what} on {where}: {" ".join(cmd)}', flush=True)
    return run_passing_signals(cmd, plan.env())


def run_passing_signals(cmd: Sequence[str], env: dict) -> int:
    """Run ``cmd`` and return its exit status; the first preemption signal this process
    gets goes on to it as SIGTERM (torchrun's shutdown signal; SIGUSR1 would end torchrun
    without stopping its processes), and the status is then :data:`PREEMPTED_EXIT_CODE`
    unless ``cmd`` succeeded anyway."""
    proc = subprocess.Popen(list(cmd), env=env)
    received = []

    def pass_on(signum, frame):
        if not received and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        received.append(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, pass_on)
                    for sig in (getattr(signal, name) for name in PREEMPTION_SIGNALS)}
    try:
        status = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return PREEMPTED_EXIT_CODE if received and status != 0 else status


def single_process(spec: ExperimentSpec, task: str) -> LaunchPlan:
    """Plan ``task`` (evaluate, inference, export) as one process on this machine and make
    its GPU current; several GPUs asked for are reported, not silently dropped."""
    plan = plan_launch(spec, task)
    if plan.nproc > 1:
        where = f'GPU {plan.gpu_ids[0]}' if plan.device == 'cuda' else 'the CPU'
        print(f'warning: {task}.num_gpus is {plan.nproc}; {task} runs in one process on '
              f'{where}', file=sys.stderr)
    select_device(plan)
    return plan


def fast_prediction(model, precision: str = 'fp32', compile: bool = False):
    """Set a loaded :class:`~mmseg_tao.models.TAOEncoderDecoder` up for prediction:
    weights cast once to ``precision``, optionally compiled. Returns the model."""
    if precision == 'fp32' and not compile:
        return model
    if not hasattr(model, 'set_precision'):
        raise TypeError(f'precision / compile need a TAOEncoderDecoder, got '
                        f'{type(model).__name__}')
    model.set_precision(precision)
    if compile:
        model.compile_inference()
    return model
