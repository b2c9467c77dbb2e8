"""The ``train`` task: a TAO spec trained by mmengine's Runner."""
from typing import Optional, Sequence

from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from ..models.utils import check_checkpoint_fits, is_lightning_checkpoint
from .experiment import prepare, relaunch_distributed, task_config
from .launch import plan_launch, select_device
from .runner_cli import process_group_teardown


def train(spec_path: str, overrides: Sequence[str] = (), launcher: str = 'none',
          tao_version: Optional[int] = None) -> int:
    """Train; with ``train.num_gpus`` / ``train.gpu_ids`` above one process, relaunch
    under torchrun (one process per GPU, NCCL; gloo without a GPU); one process runs on
    ``train.gpu_ids[0]``. ``tao_version`` 5 or 6 forces the spec's schema. Returns the exit
    status."""
    spec = prepare(spec_path, overrides, 'train', tao_version)
    plan = plan_launch(spec, 'train', launched=launcher != 'none')
    if plan.nproc > 1 and launcher == 'none':
        return relaunch_distributed('train', spec_path, overrides, plan, tao_version)
    if launcher == 'none':
        select_device(plan)
    cfg = task_config(spec, 'train', launcher, plan)
    if cfg.get('load_from'):
        _announce_start(cfg)
    runner = Runner.from_cfg(cfg)
    if cfg.get('load_from'):  # resume, or pretrained_model_path: strictly, never partly
        check_checkpoint_fits(getattr(runner.model, 'module', runner.model), cfg.load_from)
    with process_group_teardown():
        runner.train()
    return 0


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
