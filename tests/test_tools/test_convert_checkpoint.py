"""tools/convert_checkpoint.py: recognise a layout, write an mmseg-style checkpoint."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401
from model_utils import perturb

pytestmark = pytest.mark.slow  # builds full-size models in subprocesses

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'convert_checkpoint.py')
transformers = pytest.importorskip('transformers')


def convert(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


def test_hf_safetensors_to_tao(tmp_path):
    cfg = transformers.SegformerConfig(num_labels=3)  # b0
    hf = transformers.SegformerForSemanticSegmentation(cfg).eval()
    perturb(hf)
    hf.save_pretrained(tmp_path / 'hf')
    dst = tmp_path / 'out' / 'segformer_b0.pth'
    run = convert(str(tmp_path / 'hf' / 'model.safetensors'), str(dst))
    assert run.returncode == 0, run.stderr
    assert "recognised layout 'hf-segformer'" in run.stdout
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['converted_from'] == 'hf-segformer'
    assert any(k.startswith('backbone.block1.0.attn.kv.') for k in ckpt['state_dict'])

    model = MODELS.build(dict(
        type='TAOEncoderDecoder', backbone=dict(type='mit_b0', norm_eps=1e-5),
        decode_head=dict(type='TAOSegFormerHead', embed_dim=256, num_classes=3))).eval()
    load_checkpoint(model, str(dst), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.decode_head(model.backbone(x)),
                                   hf(pixel_values=x).logits, atol=1e-4, rtol=0)


def test_mmseg_backbone_and_bad_input(tmp_path):
    mm = MODELS.build(dict(type='MixVisionTransformer', embed_dims=32, num_heads=[1, 2, 5, 8],
                           num_layers=[2, 2, 2, 2]))
    src = tmp_path / 'mmseg.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in mm.state_dict().items()}}, src)
    run = convert(str(src), str(tmp_path / 'tao.pth'))
    assert run.returncode == 0 and "recognised layout 'mmseg-mit'" in run.stdout
    ours = MODELS.build(dict(type='mit_b0'))
    state = torch.load(tmp_path / 'tao.pth', weights_only=True)['state_dict']
    ours.load_state_dict({k[9:]: v for k, v in state.items()}, strict=True)

    torch.save({'foo.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    run = convert(str(tmp_path / 'other.pth'), str(tmp_path / 'x.pth'))
    assert run.returncode == 2 and 'unrecognised checkpoint layout' in run.stderr
    assert not osp.exists(tmp_path / 'x.pth')
    run = convert(str(tmp_path / 'missing.pth'), str(tmp_path / 'x.pth'))
    assert run.returncode == 2 and 'missing.pth: no such file' in run.stderr
