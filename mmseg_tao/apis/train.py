"""The ``train`` task: a TAO spec trained by mmengine's Runner."""
import sys
from typing import Optional, Sequence

from mmengine.dist import get_rank, get_world_size, init_dist
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from ..engine.hooks.preemption_hook import PREEMPTED_EXIT_CODE, Preempted
from ..models.utils import check_checkpoint_fits, is_lightning_checkpoint
from .experiment import prepare, relaunch_distributed, task_config
from .launch import LaunchPlan, plan_launch, select_device
from .nodes import decide_launch, restarted_group_kwargs
from .runner_cli import process_group_teardown


def train(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none',
          tao_version: Optional[int] = None) -> int:
    """Train; returns the exit status (``tao_version`` 5 or 6 forces the spec's schema).

    Where the processes come from (:func:`~mmseg_tao.apis.nodes.decide_launch`):

    - one process: here, on ``train.gpu_ids[0]`` (or the CPU);
    - ``train.num_gpus`` above one, or ``train.num_nodes`` above one: this command again
      under torchrun, ``num_gpus`` processes on this node (NCCL; gloo without a GPU), the
      nodes meeting through ``MASTER_ADDR`` / ``MASTER_PORT`` / ``NODE_RANK`` (or torchrun's
      ``PET_*`` variables, or a rendezvous endpoint);
    - a SLURM task (``srun``): one task per process trains here with mmengine's ``slurm``
      launcher; one task per node starts its node's processes under torchrun.

    A run stopped by a preemption signal (SIGTERM, SIGUSR1) returns
    :data:`~mmseg_tao.engine.hooks.PREEMPTED_EXIT_CODE` after writing the checkpoint of its
    last iteration; the next start resumes from it.

    Raises:
        NodeSetupError: The variables of a multi-node / SLURM run are missing or disagree
            with the spec.
    """
    spec = prepare(spec_path, overrides, 'train', tao_version)
    nodes = spec.train.num_nodes
    how, node_plan = decide_launch(nodes, spec.train.num_gpus, launcher)
    plan = plan_launch(spec, 'train', launched=how not in ('none', 'torchrun'))
    if how == 'torchrun':
        return relaunch_distributed('train', spec_path, overrides, plan, tao_version,
                                    node_plan)
    if how == 'none':
        select_device(plan)
    else:  # one process of the group: join it now, so that rank 0 picks the checkpoint
        init_dist(how, backend=plan.backend, **restarted_group_kwargs())
    with process_group_teardown():
        cfg = task_config(spec, 'train', how, plan)
        if cfg.get('load_from'):
            _announce_start(cfg)
        runner = Runner.from_cfg(cfg)
        _announce_processes(runner, cfg, plan)
        if cfg.get('load_from'):  # resume, or pretrained_model_path: strictly, never partly
            check_checkpoint_fits(getattr(runner.model, 'module', runner.model),
                                  cfg.load_from)
        try:
            runner.train()
        except Preempted as stop:
            if get_rank() == 0:
                print(f'train: {stop}', file=sys.stderr, flush=True)
            return PREEMPTED_EXIT_CODE
    return 0


def _announce_processes(runner: Runner, cfg, plan: LaunchPlan) -> None:
    """Say in the log how many processes train, the batch of each and the global batch;
    the learning rate is the spec's for that global batch, not scaled (as TAO)."""
    world = get_world_size()
    batch = cfg.train_dataloader.get('batch_size', 1)
    optimizer = cfg.get('optim_wrapper', {}).get('optimizer', {})
    runner.logger.info(
        f'{world} training process(es) ({plan.num_nodes} node(s) x {plan.nproc} per node, '
        f'{plan.device}, {plan.backend if world > 1 else "no process group"}); batch '
        f'{batch} per process, global batch {world * batch}; learning rate '
        f"{optimizer.get('lr')} as the spec gives it (not scaled by the global batch, as "
        'TAO); the training data are sharded over all processes, each sample once per pass')


def _announce_start(cfg) -> None:
    """Say where training starts; a TAO 6/7 (Lightning) checkpoint to resume from gives
    its weights only (``cfg.resume`` turned off): its optimizer, scheduler and loop state
    are Lightning's, which mmengine cannot restore. (A Lightning file that also carries
    mmengine's resume state, ``message_hub`` and ``meta``, resumes fully.)"""
    if not cfg.get('resume'):
        print(f'starting from the weights of {cfg.load_from}', flush=True)
        return
    ckpt = CheckpointLoader.load_checkpoint(cfg.load_from, map_location='cpu')
    if isinstance(ckpt, dict) and is_lightning_checkpoint(ckpt) and 'message_hub' not in ckpt:
        cfg.resume = False
        print(f'{cfg.load_from} is a TAO 6/7 (PyTorch Lightning) checkpoint (epoch '
              f"{ckpt.get('epoch')}, step {ckpt.get('global_step')}): resuming from its "
              "weights only; its optimizer and schedule state are Lightning's, not "
              "mmengine's, so training starts at iteration 0", flush=True)
        return
    print(f'resuming from {cfg.load_from}', flush=True)
