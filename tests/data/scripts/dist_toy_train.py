"""Launched by torchrun from tests/test_compat/test_dist.py: a 2-process CPU run."""
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', '..'))

import torch.distributed as dist  # noqa: E402

import mmseg_tao  # noqa: E402,F401
from toy_runner import build_runner  # noqa: E402

work_dir, out_dir = sys.argv[1], sys.argv[2]
# The default dist_cfg (backend='nccl') is what mmseg configs carry. A constant lr, so
# that every iteration changes the weights.
runner = build_runner(work_dir, max_iters=4, launcher='pytorch', param_scheduler=None,
                      env_cfg=dict(dist_cfg=dict(backend='nccl')))
runner.train()
rank = dist.get_rank()
with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
    json.dump(dict(
        world_size=dist.get_world_size(),
        backend=dist.get_backend(),
        wrapper=type(runner.model).__name__,
        device_ids=runner.model.device_ids,
        iter=runner.iter,
        weight=runner.model.module.linear.weight.flatten().tolist()), f)
dist.destroy_process_group()
