"""Our models against facts recorded from TAO 5.x's own model code (tests/data/tao_oracle).

The record (``record_tao_facts.py`` there, run against NVIDIA/tao_pytorch_backend at the
commit it names) holds, for all ten backbones with TAO's decode head, every whole-model
checkpoint key with its shape, and for mit_b0 and fan_tiny_8_p4_hybrid the features and
logits TAO's modules compute for a fixed input under weights made from the key list.
"""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401
from mmseg_tao.models.backbones.fan import PositionalEncodingFourier
from mmseg_tao.models.utils import (
    CheckpointMismatchError,
    check_checkpoint_fits,
    check_state_dict_fits,
)
from model_utils import oracle_record

RECORD, OUTPUTS, facts = oracle_record('tao5')


def _model_cfg(name: str, pretrained: str = None) -> dict:
    head = RECORD['models'][name]['head']
    backbone = dict(type=name)
    if pretrained:
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=pretrained)
    return dict(
        type='TAOEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.],
                               std=[1., 1., 1.], bgr_to_rgb=False),
        backbone=backbone,
        decode_head=dict(type='TAOSegFormerHead', embed_dim=head['embed_dim'],
                         num_classes=head['num_classes'], dropout_ratio=0.1),
        train_cfg=ConfigDict(), test_cfg=ConfigDict(mode='whole'))


def _tao_keys(name: str) -> dict:
    return {k: tuple(s) for k, s in RECORD['models'][name]['keys'].items()}


def test_record_covers_every_backbone():
    from mmseg_tao.models.backbones import FAN_ARCHS, MIT_ARCHS
    assert set(RECORD['models']) == set(MIT_ARCHS) | set(FAN_ARCHS)
    assert RECORD['meta']['source'] == 'NVIDIA/tao_pytorch_backend'


@pytest.mark.parametrize('name', sorted(RECORD['models']))
def test_keys_and_shapes_match_tao(name):
    init_default_scope('mmseg')
    model = MODELS.build(_model_cfg(name))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tao = _tao_keys(name)
    # TAO's head keeps mmseg's unused conv_seg; ours does not have it.
    unused = {k for k in tao if k.startswith('decode_head.conv_seg.')}
    assert unused == {'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'}
    assert sorted(set(ours) ^ (set(tao) - unused)) == []
    assert {k: s for k, s in ours.items() if s != tao[k]} == {}
    assert sum(p.numel() for p in model.backbone.parameters()) == \
        RECORD['models'][name]['backbone_params']
    # A whole TAO checkpoint of these keys passes the strict restoring check.
    check_state_dict_fits(model, {k: torch.empty(s, device='meta') for k, s in tao.items()})
    # ... and one with a key of another shape does not.
    wrong = dict(tao, **{'decode_head.linear_pred.weight': (4, *tao[
        'decode_head.linear_pred.weight'][1:])})
    with pytest.raises(CheckpointMismatchError, match='linear_pred'):
        check_state_dict_fits(model, {k: torch.empty(s, device='meta')
                                      for k, s in wrong.items()})


def _tao_checkpoint(name: str, path: Path) -> dict:
    weights = facts.oracle_weights(RECORD['models'][name]['keys'].items())
    torch.save(dict(state_dict=weights, meta=dict(mmseg_version='1.2.2')), path)
    return weights


@pytest.mark.parametrize('name', sorted(OUTPUTS))
def test_outputs_match_tao_after_loading_a_tao_checkpoint(name, tmp_path):
    """Whole TAO checkpoint -> mmseg's init_model (mmengine's load_checkpoint, our layout
    conversion) reproduces TAO's features and logits."""
    from mmseg.apis import init_model
    weights = _tao_checkpoint(name, tmp_path / 'tao.pth')
    # The weights made here are the recorded ones (same generator, same key order).
    assert len(weights) == len(RECORD['models'][name]['keys'])
    model = init_model(Config(dict(model=_model_cfg(name))), str(tmp_path / 'tao.pth'),
                       device='cpu')
    check_checkpoint_fits(model, str(tmp_path / 'tao.pth'))
    expected = OUTPUTS[name]
    with torch.no_grad():
        feats = model.backbone(facts.oracle_input())
        logits = model.decode_head(feats)
    for i, f in enumerate(feats):
        assert f.shape == expected[f'feat{i}'].shape
        torch.testing.assert_close(f, expected[f'feat{i}'], atol=1e-4, rtol=0)
    torch.testing.assert_close(logits, expected['logits'], atol=1e-4, rtol=0)


@pytest.mark.parametrize('name', sorted(OUTPUTS))
def test_backbone_init_cfg_reads_the_tao_checkpoint(name, tmp_path):
    """``init_cfg=dict(type='Pretrained')`` on the backbone (a spec's
    ``model.pretrained_model_path``) takes the backbone out of a whole TAO checkpoint."""
    _tao_checkpoint(name, tmp_path / 'tao.pth')
    init_default_scope('mmseg')
    backbone = MODELS.build(dict(type=name, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'tao.pth'))))
    backbone.init_weights()
    backbone.eval()
    with torch.no_grad():
        feats = backbone(facts.oracle_input())
    for i, f in enumerate(feats):
        torch.testing.assert_close(f, OUTPUTS[name][f'feat{i}'], atol=1e-4, rtol=0)


def _fourier_by_hand(h: int, w: int, hidden: int, rounding: str):
    """Positional features before the projection, written out from the formula:
    positions 1..n normalised by n (+1e-6) times 2*pi, channel i of each axis divided by
    10000 ** (2 * r(i) / hidden) with r(i) = i // 2 (floor) or i / 2, then sin on even
    and cos on odd channels, interleaved as (sin_0, cos_1, sin_2, cos_3, ...); y first."""
    out = torch.zeros(2 * hidden, h, w, dtype=torch.float64)
    for axis, n in ((0, h), (1, w)):
        for i in range(hidden):
            r = i // 2 if rounding == 'floor' else i / 2
            freq = 10000 ** (2 * r / hidden)
            for p in range(n):
                pos = (p + 1) / (n + 1e-6) * 2 * math.pi / freq
                value = math.sin(pos) if i % 2 == 0 else math.cos(pos)
                if axis == 0:
                    out[i, p, :] = value
                else:
                    out[hidden + i, :, p] = value
    return out


@pytest.mark.parametrize('rounding', ['floor', 'none'])
def test_positional_encoding_frequencies(rounding):
    """'floor' is TAO's rule, 'none' NVlabs' segmentation code's (torch.div without
    rounding), for NVlabs segmentation checkpoints."""
    hidden, h, w = 8, 3, 5
    pe = PositionalEncodingFourier(dim=2 * hidden, hidden_dim=hidden, freq_rounding=rounding)
    with torch.no_grad():
        pe.token_projection.weight.copy_(torch.eye(2 * hidden)[:, :, None, None])
        pe.token_projection.bias.zero_()
        got = pe(1, (h, w))[0].double()
    torch.testing.assert_close(got, _fourier_by_hand(h, w, hidden, rounding), atol=1e-5,
                               rtol=0)


def test_nvlabs_positional_encoding_is_selectable_on_fan():
    init_default_scope('mmseg')
    tao = MODELS.build(dict(type='fan_tiny_8_p4_hybrid'))
    nvlabs = MODELS.build(dict(type='fan_tiny_8_p4_hybrid', pos_freq_rounding='none'))
    assert tao.pos_embed.freq_rounding == 'floor'
    assert nvlabs.pos_embed.freq_rounding == 'none'
    with pytest.raises(ValueError, match='freq_rounding'):
        MODELS.build(dict(type='fan_tiny_8_p4_hybrid', pos_freq_rounding='true'))
