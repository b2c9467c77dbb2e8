"""FAN hybrid backbones: sizes, outputs, gradients, the arch API, gradient checkpointing
and the TAO checkpoint layout."""
import inspect

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401
from mmseg_tao.models.backbones import FAN, fan_small_12_p4_hybrid, fan_tiny_8_p4_hybrid
from mmseg_tao.models.backbones.fan import FAN_ARCHS
from mmseg_tao.models.utils import load_pretrained

# Backbone parameters, summed over the key shapes of TAO's segformer fan.py (ConvNeXt
# stem, hybrid projection, Fourier position projection, FAN blocks, class-attention
# blocks, cls token; no ImageNet norm / head). NVlabs' FAN README lists the ImageNet
# models (with norm and 1000-class head): 7.4M, 26.3M, 50.4M, 76.8M.
BACKBONE_PARAMS = {
    'fan_tiny_8_p4_hybrid': 7_273_856,
    'fan_small_12_p4_hybrid': 25_732_176,
    'fan_base_16_p4_hybrid': 50_025_152,
    'fan_large_16_p4_hybrid': 76_373_180,
}
# (E, decode-head in_channels) from TAO's channel map.
TAO_CHANNELS = {
    'fan_tiny_8_p4_hybrid': [128, 256, 192, 192],
    'fan_small_12_p4_hybrid': [128, 256, 384, 384],
    'fan_base_16_p4_hybrid': [128, 256, 448, 448],
    'fan_large_16_p4_hybrid': [128, 256, 480, 480],
}


@pytest.mark.parametrize('name', sorted(BACKBONE_PARAMS))
def test_parameter_count_and_channels(name):
    model = MODELS.build(dict(type=name))
    assert sum(p.numel() for p in model.parameters()) == BACKBONE_PARAMS[name]
    assert model.out_channels == TAO_CHANNELS[name]
    # A TAO name is a registered function building FAN with its arch.
    variant = MODELS.get(name)
    assert inspect.isfunction(variant) and variant.__name__ == name
    assert type(model) is FAN and model.arch_settings == FAN_ARCHS[name]
    assert f'{BACKBONE_PARAMS[name] / 1e6:.2f}M parameters' in ' '.join(variant.__doc__.split())
    imagenet_extra = 2 * model.embed_dim + 1000 * model.embed_dim + 1000  # norm + head
    readme = {'fan_tiny_8_p4_hybrid': 7.4, 'fan_small_12_p4_hybrid': 26.3,
              'fan_base_16_p4_hybrid': 50.4, 'fan_large_16_p4_hybrid': 76.8}[name]
    assert abs((BACKBONE_PARAMS[name] + imagenet_extra) / 1e6 - readme) < 0.2


@pytest.mark.parametrize('size', [(64, 64), (96, 160)])
def test_output_strides(size):
    model = MODELS.build(dict(type='fan_tiny_8_p4_hybrid')).eval()
    with torch.no_grad():
        feats = model(torch.randn(2, 3, *size))
    h, w = size
    assert [tuple(f.shape) for f in feats] == [
        (2, 128, h // 4, w // 4), (2, 256, h // 8, w // 8),
        (2, 192, h // 16, w // 16), (2, 192, h // 16, w // 16)]


# Parameters that only feed the class token, which segmentation discards: they are in
# the graph (as in TAO) but their gradient is exactly zero.
CLS_ONLY = ('cls_token', '.attn.q.', '.attn.k.', '.attn.v.', '.attn.proj.', '.mlp.fc',
            '.gamma2')


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='fan_tiny_8_p4_hybrid'))
    model.init_weights()
    model.train()
    feats = model(torch.randn(2, 3, 64, 64))
    sum((f * torch.randn_like(f)).sum() for f in feats).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == []
    zero = {n for n, p in model.named_parameters() if not p.grad.abs().sum()}
    expected_zero = {n for n, _ in model.named_parameters()
                     if n == 'cls_token' or (n.startswith('cls_attn_blocks.')
                                             and any(s in n for s in CLS_ONLY))}
    assert zero == expected_zero
    # cls token; per class-attention block q, k, v, proj, fc1, fc2 (weight, bias), gamma2
    assert len(expected_zero) == 1 + 2 * (8 + 4 + 1)


def test_tao_names_cover_the_arch_zoo():
    assert sorted(FAN_ARCHS) == sorted(BACKBONE_PARAMS)
    assert sorted(map(id, FAN_ARCHS.values())) == sorted(map(id, FAN.arch_zoo.values()))


def test_arch_name_builds_the_tao_variant():
    shapes = [[(n, p.shape) for n, p in model.named_parameters()] for model in (
        FAN(arch='small'), FAN('small'), fan_small_12_p4_hybrid(),
        MODELS.build(dict(type='FAN', arch='small')))]
    assert shapes[0] == shapes[1] == shapes[2] == shapes[3]


def test_arch_dict_builds_other_sizes():
    arch = dict(embed_dim=64, depth=3, num_heads=2, stem_depths=[1, 2], out_idx=1)
    model = MODELS.build(dict(type='FAN', arch=arch, cls_attn_layers=1))
    assert model.out_channels == [128, 256, 64, 64] and len(model.blocks) == 3
    assert [len(s.blocks) for s in model.patch_embed.backbone.stages] == [1, 2]
    with torch.no_grad():
        feats = model.eval()(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [
        (1, 128, 16, 16), (1, 256, 8, 8), (1, 64, 4, 4), (1, 64, 4, 4)]
    with pytest.raises(ValueError, match='out_idx 3 must be a block index in 0..2'):
        FAN(arch=dict(arch, out_idx=3))


@pytest.mark.parametrize('arch, error, match', [
    ('huge', ValueError, "unknown arch 'huge'; choose one of tiny, small, base, large or pass "
     'a dict with keys embed_dim, depth, num_heads, stem_depths, out_idx'),
    ('fan_tiny_8_p4_hybrid', ValueError, "unknown arch 'fan_tiny_8_p4_hybrid'"),
    (dict(embed_dim=192, depth=8, num_heads=8, stem_depths=(3, 3)), ValueError,
     r"missing: \['out_idx'\], not arch keys: \[\]"),
    (dict(embed_dim=192, depth=8, num_heads=8, stem_depths=(3, 3), out_idx=7, eta=1.),
     ValueError, r"missing: \[\], not arch keys: \['eta'\]"),
    (192, TypeError, 'arch must be one of tiny, small'),
])
def test_bad_arch_is_refused(arch, error, match):
    with pytest.raises(error, match=match):
        FAN(arch=arch)


def test_positional_misuse_is_refused():
    with pytest.raises(TypeError, match='positional'):
        FAN(192, 8, 8, (3, 3), 7)  # the explicit-size signature
    with pytest.raises(TypeError, match='positional'):
        FAN('tiny', 3)
    with pytest.raises(TypeError, match='positional'):
        fan_tiny_8_p4_hybrid('small')
    with pytest.raises(TypeError, match='fan_tiny_8_p4_hybrid fixes arch'):
        MODELS.build(dict(type='fan_tiny_8_p4_hybrid', arch='small'))
    with pytest.raises(TypeError, match='fan_tiny_8_p4_hybrid fixes embed_dim, out_idx; '
                       'build FAN with arch'):
        fan_tiny_8_p4_hybrid(out_idx=3, embed_dim=96)


def test_tao_name_passes_keyword_arguments():
    model = MODELS.build(dict(type='fan_tiny_8_p4_hybrid', in_channels=1, out_indices=(2, ),
                              with_cp=True, drop_path_rate=0.2, pretrained='fan.pth'))
    assert model.patch_embed.backbone.stem[0].in_channels == 1
    assert model.out_indices == (2, ) and model.out_channels == [192] and model.with_cp
    assert model.blocks[0].drop_path.drop_prob == pytest.approx(0.2)
    assert model.init_cfg == dict(type='Pretrained', checkpoint='fan.pth')
    init_cfg = dict(type='Pretrained', checkpoint='other.pth')
    assert fan_tiny_8_p4_hybrid(init_cfg=init_cfg).init_cfg == init_cfg
    with pytest.raises(ValueError, match='either pretrained or init_cfg'):
        fan_tiny_8_p4_hybrid(pretrained='fan.pth', init_cfg=init_cfg)


def test_with_cp_gives_the_same_gradients(check_with_cp):
    check_with_cp(fan_tiny_8_p4_hybrid, num_blocks=8)


def tao_fan_keys(depth, stem_depths):
    """Backbone keys of a TAO FAN checkpoint, written from TAO's module tree."""
    keys = ['cls_token', 'patch_embed.backbone.stem.0.weight',
            'patch_embed.backbone.stem.0.bias', 'patch_embed.backbone.stem.1.weight',
            'patch_embed.backbone.stem.1.bias', 'patch_embed.proj.weight',
            'patch_embed.proj.bias', 'pos_embed.token_projection.weight',
            'pos_embed.token_projection.bias',
            'patch_embed.backbone.stages.1.downsample.0.weight',
            'patch_embed.backbone.stages.1.downsample.0.bias',
            'patch_embed.backbone.stages.1.downsample.1.weight',
            'patch_embed.backbone.stages.1.downsample.1.bias']
    for s, d in enumerate(stem_depths):
        for j in range(d):
            p = f'patch_embed.backbone.stages.{s}.blocks.{j}.'
            keys += [p + 'gamma'] + [p + f'{m}.{t}' for m in
                                     ('conv_dw', 'norm', 'mlp.fc1', 'mlp.fc2')
                                     for t in ('weight', 'bias')]
    for i in range(depth):
        p = f'blocks.{i}.'
        keys += [p + 'gamma1', p + 'gamma2', p + 'mlp.temperature', p + 'mlp.mlp_v.gamma',
                 p + 'mlp.mlp_v.dwconv.bn.running_mean', p + 'mlp.mlp_v.dwconv.bn.running_var',
                 p + 'mlp.mlp_v.dwconv.bn.num_batches_tracked']
        keys += [p + f'{m}.{t}' for m in (
            'norm1', 'attn.q', 'attn.kv', 'attn.proj', 'norm2', 'mlp.mlp_v.fc1',
            'mlp.mlp_v.dwconv.conv1', 'mlp.mlp_v.dwconv.bn', 'mlp.mlp_v.dwconv.conv2',
            'mlp.mlp_v.fc2', 'mlp.norm_v', 'mlp.q') for t in ('weight', 'bias')]
    for i in range(2):
        p = f'cls_attn_blocks.{i}.'
        keys += [p + 'gamma1', p + 'gamma2']
        keys += [p + f'{m}.{t}' for m in ('norm1', 'attn.q', 'attn.k', 'attn.v', 'attn.proj',
                                          'norm2', 'mlp.fc1', 'mlp.fc2')
                 for t in ('weight', 'bias')]
    return keys


@pytest.mark.parametrize('name', sorted(FAN_ARCHS))
def test_key_layout_is_tao(name):
    arch = FAN_ARCHS[name]
    model = MODELS.build(dict(type=name))
    assert sorted(model.state_dict()) == sorted(tao_fan_keys(arch['depth'],
                                                             arch['stem_depths']))


def test_tao_checkpoint_round_trip(tmp_path):
    """A TAO 5.x FAN + head checkpoint (built from the reference key names) loads into
    backbone and head, and what we save loads back identically."""
    name = 'fan_tiny_8_p4_hybrid'
    cfg = dict(type='TAOEncoderDecoder', backbone=dict(type=name),
               decode_head=dict(type='TAOSegFormerHead', embed_dim=256, num_classes=3))
    ref = MODELS.build(cfg)
    g = torch.Generator().manual_seed(1)
    tao_sd = {}
    for k, v in ref.state_dict().items():
        tao_sd[k] = (torch.randn(v.shape, generator=g).abs() + 0.5 if 'running_var' in k else
                     torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
    tao_sd['decode_head.conv_seg.weight'] = torch.randn(3, 256, 1, 1)  # TAO's unused head
    tao_sd['decode_head.conv_seg.bias'] = torch.randn(3)
    path = str(tmp_path / 'tao_fan.pth')
    save_checkpoint(dict(state_dict=tao_sd, meta=dict(iter=100)), path)

    # Whole model (evaluate / inference / fine-tuning): every key but conv_seg used.
    model = MODELS.build(cfg).eval()
    load_checkpoint(model, path, map_location='cpu')
    for k, v in model.state_dict().items():
        assert torch.equal(v, tao_sd[k]), k

    # Backbone only (pretrained_model_path): the decode head and conv_seg are reported.
    backbone = MODELS.build(dict(type=name))
    report = load_pretrained(backbone, path)
    assert report.layout == 'tao' and report.missing == [] and report.unexpected == []
    assert 'decode_head.conv_seg.weight' in report.ignored
    assert report.loaded == len(backbone.state_dict())

    # Round trip: what we save is the TAO layout again.
    out = str(tmp_path / 'ours.pth')
    save_checkpoint(dict(state_dict=model.state_dict()), out)
    again = MODELS.build(cfg).eval()
    load_checkpoint(again, out, map_location='cpu', strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again.decode_head(again.backbone(x)),
                                   model.decode_head(model.backbone(x)))


def test_stem_norms_follow_taos_variance_rule():
    """Facts from TAO 5.5's code (cv/backbone/convnext_utils.py, LayerNorm2d): an
    NCHW-contiguous input is normalised with F.layer_norm (biased variance), any other with
    torch.var_mean (unbiased). In the FAN stem only the first norm sees a contiguous map;
    the six block norms and the stage-1 downsample norm take the unbiased path."""
    from mmseg_tao.models.backbones.fan import LayerNorm2d
    torch.manual_seed(0)
    norm = LayerNorm2d(8, eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 8, 5, 6)
    w, b = norm.weight[:, None, None], norm.bias[:, None, None]
    centred = x - x.mean(1, keepdim=True)
    biased = centred / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-6) * w + b
    unbiased = centred / torch.sqrt(x.var(1, unbiased=True, keepdim=True) + 1e-6) * w + b
    assert torch.allclose(norm(x), biased, atol=1e-5)
    channels_last = x.to(memory_format=torch.channels_last)
    assert torch.allclose(norm(channels_last), unbiased, atol=1e-5)
    assert not torch.allclose(biased, unbiased, atol=1e-3)  # the rule matters
    backbone = MODELS.build(dict(type='fan_tiny_8_p4_hybrid')).eval()
    paths = []
    for m in backbone.modules():
        if isinstance(m, LayerNorm2d):
            m.register_forward_pre_hook(lambda m, a: paths.append(a[0].is_contiguous()))
    with torch.no_grad():
        backbone(torch.randn(1, 3, 64, 64))
    assert paths == [True] + [False] * 7  # stem; stage 0 blocks; stage 1 downsample, blocks
