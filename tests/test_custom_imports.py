"""A stock mmseg SegFormer config that only adds ``custom_imports`` of mmseg_tao."""
import json
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


@pytest.mark.slow  # a fresh interpreter imports everything
def test_custom_imports_alone_imports_and_patches(tiny_segformer_cfg_path):
    # A fresh interpreter, so the import can only come from custom_imports.
    code = f"""
import json, sys
from mmengine.config import Config
assert 'mmseg_tao' not in sys.modules
Config.fromfile({tiny_segformer_cfg_path!r})
from mmengine.runner.checkpoint import CheckpointLoader
print(json.dumps(dict(
    imported='mmseg_tao' in sys.modules,
    loader=CheckpointLoader._schemes[''].__module__)))
"""
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result == dict(imported=True, loader='mmseg_tao.compat.checkpoint')


def _batch(n: int = 2, size: int = 64, num_classes: int = 3):
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, size, size), generator=g).float()
              for _ in range(n)]
    samples = []
    for i in range(n):
        s = SegDataSample()
        # Left half class i % 3, right half (i + 1) % 3: learnable from position.
        gt = torch.full((1, size, size), i % num_classes, dtype=torch.long)
        gt[..., size // 2:] = (i + 1) % num_classes
        s.gt_sem_seg = PixelData(data=gt)
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            pad_shape=(size, size)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_segformer_forward_backward_64(tiny_segformer_cfg_path):
    torch.manual_seed(0)
    cfg = Config.fromfile(tiny_segformer_cfg_path)
    model = MODELS.build(cfg.model)
    model.train()
    data = model.data_preprocessor(_batch(), training=True)

    # Encoder: four maps at strides 4..32 with the configured widths.
    feats = model.extract_feat(data['inputs'])
    assert [tuple(f.shape[1:]) for f in feats] == [
        (8, 16, 16), (16, 8, 8), (32, 4, 4), (64, 2, 2)]

    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(5):
        loss = model.loss(data['inputs'], data['data_samples'])['decode.loss_ce']
        optim.zero_grad()
        loss.backward()
        losses.append(loss.item())
        if len(losses) == 1:
            no_grad = [n for n, p in model.named_parameters()
                       if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
            assert no_grad == []
        optim.step()
    assert torch.isfinite(torch.tensor(losses)).all()
    # Initial loss near ln(3) for a random 3-class model; training on one batch lowers it.
    assert abs(losses[0] - torch.log(torch.tensor(3.0)).item()) < 0.5
    assert losses[-1] < losses[0] * 0.9

    model.eval()
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)
