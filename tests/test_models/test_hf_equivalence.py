"""Hugging Face transformers' Segformer, converted by our loader, gives the same maps and
logits as our mit_bX + TAOSegFormerHead."""
import pytest
import torch
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401
from mmseg_tao.models.utils import convert_state_dict, read_state_dict
from model_utils import perturb

transformers = pytest.importorskip('transformers')

# (our name, HF config) for the checked sizes.
HF_CONFIGS = {
    'mit_b0': dict(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2],
                   decoder_hidden_size=256),
    'mit_b2': dict(hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 6, 3],
                   decoder_hidden_size=768),
}
NUM_CLASSES = 5


def _ours(name, embed_dim):
    # transformers' Segformer uses LayerNorm eps 1e-5 throughout (NVlabs: 1e-6 in the
    # blocks and stage norms), so ours is built with the same eps for an exact match.
    return MODELS.build(dict(
        type='TAOEncoderDecoder',
        backbone=dict(type=name, drop_path_rate=0., norm_eps=1e-5),
        decode_head=dict(type='TAOSegFormerHead', embed_dim=embed_dim,
                         num_classes=NUM_CLASSES, dropout_ratio=0.1))).eval()


@pytest.fixture(scope='module', params=sorted(HF_CONFIGS))
def hf_model(request):
    torch.manual_seed(0)
    cfg = transformers.SegformerConfig(num_labels=NUM_CLASSES, **HF_CONFIGS[request.param])
    hf = transformers.SegformerForSemanticSegmentation(cfg).eval()
    perturb(hf)
    return request.param, hf


@pytest.mark.parametrize('source', ['memory', 'saved'])
def test_hf_equivalence(hf_model, source, tmp_path):
    name, hf = hf_model
    if source == 'memory':  # module names of the installed transformers
        state = hf.state_dict()
    else:  # the file layout published on the hub (save_pretrained)
        hf.save_pretrained(tmp_path)
        state = read_state_dict(str(tmp_path / 'model.safetensors'))
        assert any('encoder.block.0.0.attention.self.query' in k for k in state)
    result = convert_state_dict(state)
    assert result.unmatched == []
    assert result.layout == ('hf-segformer' if source == 'saved' else
                             ('hf-segformer-v5' if any('stages.' in k for k in state)
                              else 'hf-segformer'))
    ours = _ours(name, hf.config.decoder_hidden_size)
    missing, unexpected = ours.load_state_dict(result.state_dict, strict=False)
    assert unexpected == []
    assert missing == []

    for size in [(64, 64), (72, 100)]:  # the second is not a multiple of 32
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            out = hf(pixel_values=x, output_hidden_states=True)
            feats = ours.backbone(x)
            logits = ours.decode_head(feats)
        assert len(feats) == len(out.hidden_states) == 4
        for a, b in zip(feats, out.hidden_states):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
        assert logits.shape == out.logits.shape
        torch.testing.assert_close(logits, out.logits, atol=1e-4, rtol=0)


def test_hf_checkpoint_loads_into_segmentor(hf_model, tmp_path):
    """load_from / tools/test.py with a Hugging Face file: converted when loaded."""
    from mmengine.runner.checkpoint import load_checkpoint
    name, hf = hf_model
    path = str(tmp_path / 'pytorch_model.bin')
    torch.save(hf.state_dict(), path)
    ours = _ours(name, hf.config.decoder_hidden_size)
    load_checkpoint(ours, path, map_location='cpu', strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours.decode_head(ours.backbone(x)),
                                   hf(pixel_values=x).logits, atol=1e-4, rtol=0)
