"""MiT-B0..B5: sizes, outputs, kwargs, the arch API, gradient checkpointing, and
equivalence with other implementations."""
import inspect

import pytest
import torch
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401
from mmseg_tao.models.backbones import MIT_ARCHS, MixTransformer, mit_b0, mit_b2
from mmseg_tao.models.utils import convert_state_dict
from model_utils import perturb

# Encoder parameters (no classifier head). SegFormer paper, Table 1(a), gives
# 3.4 / 13.1 / 24.2 / 44.0 / 60.8 / 81.4 M; the exact numbers are the sums over the
# NVlabs mix_transformer.py parameter shapes (patch embeds, blocks, stage norms).
ENCODER_PARAMS = {
    'mit_b0': 3_319_392,
    'mit_b1': 13_151_424,
    'mit_b2': 24_196_288,
    'mit_b3': 44_072_128,
    'mit_b4': 60_842_688,
    'mit_b5': 81_443_008,
}


@pytest.mark.parametrize('name', sorted(ENCODER_PARAMS))
def test_parameter_count(name):
    model = MODELS.build(dict(type=name))
    assert sum(p.numel() for p in model.parameters()) == ENCODER_PARAMS[name]
    # A TAO name is a registered function building MixTransformer with its arch.
    variant = MODELS.get(name)
    assert inspect.isfunction(variant) and variant.__name__ == name
    assert type(model) is MixTransformer and model.arch_settings == MIT_ARCHS[name]
    assert f'{ENCODER_PARAMS[name] / 1e6:.2f}M parameters' in variant.__doc__
    paper = {'mit_b0': 3.4, 'mit_b1': 13.1, 'mit_b2': 24.2, 'mit_b3': 44.0,
             'mit_b4': 60.8, 'mit_b5': 81.4}[name]
    # The paper rounds (B0: 3.32M printed as 3.4M).
    assert abs(ENCODER_PARAMS[name] / 1e6 - paper) < 0.1


@pytest.mark.parametrize('size', [(64, 64), (70, 101)])
def test_outputs_strides_and_channels(size):
    model = MODELS.build(dict(type='mit_b0')).eval()
    feats = model(torch.randn(2, 3, *size))
    assert model.out_channels == [32, 64, 160, 256]
    # Overlapping patch embeds (kernel k, padding k // 2, stride s): floor((x - 1) / s) + 1.
    expected, (h, w) = [], size
    for stride in (4, 2, 2, 2):
        h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
        expected.append((h, w))
    assert [tuple(f.shape) for f in feats] == [
        (2, c, *hw) for c, hw in zip(model.out_channels, expected)]


def test_backbone_kwargs():
    model = MODELS.build(dict(type='mit_b1', out_indices=(1, 3), drop_path_rate=0.3,
                              frozen_stages=0))
    assert model.out_channels == [128, 512]
    feats = model(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [128, 512]
    # Stochastic depth grows linearly to the rate over all blocks.
    assert model.block4[-1].drop_path.drop_prob == pytest.approx(0.3)
    assert isinstance(model.block1[0].drop_path, torch.nn.Identity)
    # Frozen stage 1 stays frozen and in eval mode after .train().
    model.train()
    assert not any(p.requires_grad for p in model.patch_embed1.parameters())
    assert all(p.requires_grad for p in model.patch_embed2.parameters())
    with pytest.raises(TypeError, match='fixes embed_dims'):
        MODELS.build(dict(type='mit_b0', embed_dims=(8, 16, 32, 64)))
    with pytest.raises(ValueError, match='out_indices'):
        MODELS.build(dict(type='mit_b0', out_indices=(4, )))


def test_mmseg_layout_matches_mmseg_mit():
    """mmseg's MixVisionTransformer weights, converted, give mmseg's outputs."""
    mm = MODELS.build(dict(type='MixVisionTransformer', embed_dims=32, num_heads=[1, 2, 5, 8],
                           num_layers=[2, 2, 2, 2], drop_path_rate=0.)).eval()
    perturb(mm)
    result = convert_state_dict(mm.state_dict())
    assert result.layout == 'mmseg-mit' and not result.unmatched
    ours = MODELS.build(dict(type='mit_b0', drop_path_rate=0.)).eval()
    ours.load_state_dict(result.state_dict, strict=True)
    # mmseg uses eps 1e-6 in every LayerNorm, NVlabs 1e-5 in patch-embed and sr norms.
    for m in ours.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = 1e-6
    x = torch.randn(2, 3, 96, 72)
    with torch.no_grad():
        for a, b in zip(ours(x), mm(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_tao_names_cover_the_arch_zoo():
    assert sorted(MIT_ARCHS) == sorted(ENCODER_PARAMS) == [
        f'mit_{arch}' for arch in MixTransformer.arch_zoo]


def test_arch_name_builds_the_tao_variant():
    shapes = [[(n, p.shape) for n, p in model.named_parameters()] for model in (
        MixTransformer(arch='b2'), MixTransformer('b2'), mit_b2(),
        MODELS.build(dict(type='MixTransformer', arch='b2')))]
    assert shapes[0] == shapes[1] == shapes[2] == shapes[3]


def test_arch_dict_builds_other_sizes():
    arch = dict(embed_dims=[8, 16, 32], depths=[1, 2, 1])  # lists, as a config gives them
    model = MODELS.build(dict(type='MixTransformer', arch=arch, num_heads=(1, 2, 4),
                              sr_ratios=(4, 2, 1), patch_sizes=(7, 3, 3), strides=(4, 2, 2),
                              out_indices=(0, 1, 2)))
    assert model.embed_dims == (8, 16, 32) and model.depths == (1, 2, 1)
    assert [len(model.block1), len(model.block2), len(model.block3)] == [1, 2, 1]
    feats = model(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 8, 16, 16), (1, 16, 8, 8), (1, 32, 4, 4)]


@pytest.mark.parametrize('arch, error, match', [
    ('b9', ValueError, "unknown arch 'b9'; choose one of b0, b1, b2, b3, b4, b5 or pass a "
     'dict with keys embed_dims, depths'),
    ('mit_b2', ValueError, "unknown arch 'mit_b2'"),
    (dict(embed_dims=(32, 64, 160, 256)), ValueError,
     r"exactly the keys embed_dims, depths; missing: \['depths'\], not arch keys: \[\]"),
    (dict(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2), num_heads=(1, 2, 5, 8)),
     ValueError, r"missing: \[\], not arch keys: \['num_heads'\]"),
    ((32, 64, 160, 256), TypeError, 'arch must be one of b0, b1'),
])
def test_bad_arch_is_refused(arch, error, match):
    with pytest.raises(error, match=match):
        MixTransformer(arch=arch)


def test_positional_misuse_is_refused():
    with pytest.raises(TypeError, match='positional'):
        MixTransformer((32, 64, 160, 256), (2, 2, 2, 2))  # the explicit-size signature
    with pytest.raises(TypeError, match='positional'):
        MixTransformer('b0', 3)
    with pytest.raises(TypeError, match='positional'):
        mit_b0('b1')
    with pytest.raises(TypeError, match='mit_b0 fixes arch'):
        MODELS.build(dict(type='mit_b0', arch='b1'))
    with pytest.raises(TypeError, match='mit_b0 fixes depths; build MixTransformer with arch'):
        mit_b0(depths=(1, 1, 1, 1))


def test_tao_name_passes_keyword_arguments():
    model = MODELS.build(dict(type='mit_b0', in_channels=1, out_indices=(2, ), with_cp=True,
                              norm_eps=1e-5, pretrained='mit_b0.pth'))
    assert model.patch_embed1.proj.in_channels == 1 and model.out_indices == (2, )
    assert model.with_cp and model.norm1.eps == 1e-5
    assert model.init_cfg == dict(type='Pretrained', checkpoint='mit_b0.pth')
    init_cfg = dict(type='Pretrained', checkpoint='other.pth')
    assert mit_b0(init_cfg=init_cfg).init_cfg == init_cfg
    with pytest.raises(ValueError, match='either pretrained or init_cfg'):
        mit_b0(pretrained='mit_b0.pth', init_cfg=init_cfg)


def test_with_cp_gives_the_same_gradients(check_with_cp):
    check_with_cp(lambda **kw: mit_b0(drop_path_rate=0., **kw), num_blocks=8)
