"""Helpers for model tests."""
import importlib.util
import json
import os.path as osp
from types import ModuleType
from typing import Tuple

import torch


def perturb(module: torch.nn.Module, seed: int = 0) -> None:
    """Make every floating tensor distinct (BN variances stay positive), so that a wrong
    key mapping cannot go unnoticed in an equivalence test."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                noise = torch.randn(t.shape, generator=g) * 0.05
                t.copy_(t.abs() + 0.5 + noise if name.endswith('running_var') else t + noise)


def tiny_segmentor(backbone: str = 'mit_b0', embed_dim: int = 32, num_classes: int = 4,
                   size=(64, 64), perturbed: bool = True):
    """A TAOEncoderDecoder (backbone + TAOSegFormerHead) with seeded weights; perturbed
    weights give distinct, confident logits, far from argmax ties."""
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_tao  # noqa: F401
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='TAOEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size=size),
        backbone=dict(type=backbone),
        decode_head=dict(type='TAOSegFormerHead', embed_dim=embed_dim,
                         num_classes=num_classes, dropout_ratio=0.0),
        train_cfg=ConfigDict(), test_cfg=ConfigDict(mode='whole')))
    model.init_weights()
    if perturbed:
        perturb(model)
    return model


def seg_batch(sizes, num_classes: int = 4, seed: int = 0) -> dict:
    """A data batch as a dataloader yields it: uint8 images of the given (H, W) and
    SegDataSamples with random ground truth."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, h, w), generator=g))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


ORACLE_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'data', 'tao_oracle')


def oracle_record(prefix: str) -> Tuple[dict, dict, ModuleType]:
    """The facts recorded from TAO's own model code (``tests/data/tao_oracle``): the key
    record (``prefix`` ``'tao5'`` or ``'tao7'``), the recorded outputs, and the recording
    script as a module (its ``oracle_weights`` / ``oracle_input`` make the same weights and
    input at test time)."""
    with open(osp.join(ORACLE_DIR, f'{prefix}_keys.json')) as f:
        record = json.load(f)
    outputs = torch.load(osp.join(ORACLE_DIR, f'{prefix}_outputs.pt'),
                         weights_only=True)['outputs']
    spec = importlib.util.spec_from_file_location(
        'record_tao_facts', osp.join(ORACLE_DIR, 'record_tao_facts.py'))
    facts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(facts)
    return record, outputs, facts
