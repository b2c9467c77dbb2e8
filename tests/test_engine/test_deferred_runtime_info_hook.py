"""DeferredRuntimeInfoHook: the message hub and the logs hold exactly what mmengine's
RuntimeInfoHook gives them, with one device-to-host copy per logging interval instead of
one ``.item()`` per value per iteration."""
import json
import os.path as osp

import numpy as np
import torch

import mmseg_tao  # noqa: F401
from toy_runner import build_runner


def _train(work_dir, hook_type, monkeypatch):
    items, tolists = [], []
    item, tolist = torch.Tensor.item, torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, 'item', lambda t: items.append(1) or item(t))
    monkeypatch.setattr(torch.Tensor, 'tolist', lambda t: tolists.append(1) or tolist(t))
    torch.manual_seed(0)  # the toy model is built before the runner seeds
    runner = build_runner(work_dir, max_iters=10, experiment_name=hook_type, default_hooks=dict(
        runtime_info=dict(type=hook_type),
        checkpoint=dict(type='CheckpointHook', interval=5, by_epoch=False),
        logger=dict(type='LoggerHook', interval=5)))
    runner.train()
    monkeypatch.undo()
    buf = runner.message_hub.log_scalars['train/loss']
    values, counts = buf.data
    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    logged = [json.loads(line)['loss'] for line in open(scalars)]
    hook = next(h for h in runner.hooks if type(h).__name__ == hook_type)
    return values, counts, logged, len(items), len(tolists), hook


def test_same_history_fewer_synchronisations(tmp_path, monkeypatch):
    ref = _train(tmp_path / 'stock', 'RuntimeInfoHook', monkeypatch)
    ours = _train(tmp_path / 'ours', 'DeferredRuntimeInfoHook', monkeypatch)
    np.testing.assert_array_equal(ours[0], ref[0])  # every iteration's loss, in order
    np.testing.assert_array_equal(ours[1], ref[1])
    assert ours[2] == ref[2] and len(ref[2]) == 2  # the logged window means at 5 and 10
    assert ours[5].interval == 5  # gcd of the logger's and the checkpoint hook's
    assert ref[3] >= 10  # mmengine: one .item() per iteration (the loss)
    assert ours[3] == ref[3] - 10 and ours[4] == ref[4] + 2  # ours: one copy per 5
