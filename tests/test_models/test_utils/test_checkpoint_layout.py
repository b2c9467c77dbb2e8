"""mmseg_tao.models.utils.checkpoint_layout: layouts as registered units, recognition,
conversion, and the one rule for TAO's unused conv_seg."""
from collections import OrderedDict

import pytest
import torch

from mmseg_tao.models.utils import checkpoint_layout as cl
from model_utils import tiny_segmentor


def _t(*shape):
    return torch.zeros(*shape)


TAO_WHOLE = {
    'backbone.block1.0.attn.q.weight': _t(2, 2),
    'backbone.block1.0.attn.kv.weight': _t(4, 2),
    'decode_head.linear_pred.weight': _t(3, 2, 1, 1),
    'decode_head.conv_seg.weight': _t(3, 2, 1, 1),
    'decode_head.conv_seg.bias': _t(3),
}
MMSEG = {
    'backbone.layers.0.1.0.attn.attn.in_proj_weight': _t(6, 2),
    'backbone.layers.0.1.0.ffn.layers.0.weight': _t(8, 2, 1, 1),
    'decode_head.conv_seg.weight': _t(3, 2, 1, 1),
}
HF = {
    'segformer.encoder.block.0.0.attention.self.query.weight': _t(2, 2),
    'segformer.encoder.block.0.0.attention.self.key.weight': _t(2, 2),
    'segformer.encoder.block.0.0.attention.self.value.weight': torch.ones(2, 2),
    'decode_head.classifier.weight': _t(3, 2, 1, 1),
}
HF_V5 = {
    'segformer.stages.0.blocks.0.attention.q_proj.weight': _t(2, 2),
    'segformer.stages.0.blocks.0.attention.k_proj.weight': _t(2, 2),
    'segformer.stages.0.blocks.0.attention.v_proj.weight': _t(2, 2),
}


def test_layouts_registered_in_order():
    assert list(cl.LAYOUTS) == ['tao6', 'tao', 'mmseg-mit', 'hf-segformer', 'hf-segformer-v5']
    assert [name for name, unit in cl.LAYOUTS.items() if unit.native] == ['tao']
    assert all(unit.summary for unit in cl.LAYOUTS.values())


@pytest.mark.parametrize('sd, layout', [(TAO_WHOLE, 'tao'), (MMSEG, 'mmseg-mit'),
                                        (HF, 'hf-segformer'), (HF_V5, 'hf-segformer-v5'),
                                        ({'patch_embed.backbone.stem.0.weight': _t(1)}, 'tao')])
def test_each_layout_is_recognised(sd, layout):
    assert cl.detect_layout(sd) == layout


def test_unknown_layout_names_its_first_keys():
    with pytest.raises(ValueError, match='unrecognised checkpoint layout.*fc.weight'):
        cl.detect_layout({'fc.weight': _t(1)})
    with pytest.raises(ValueError, match="unknown layout 'nope'"):
        cl.convert_state_dict(TAO_WHOLE, layout='nope')


def test_conversions():
    mm = cl.convert_state_dict(MMSEG)
    assert mm.layout == 'mmseg-mit'
    assert mm.state_dict['backbone.block1.0.attn.q.weight'].shape == (2, 2)
    assert mm.state_dict['backbone.block1.0.attn.kv.weight'].shape == (4, 2)
    assert mm.state_dict['backbone.block1.0.mlp.fc1.weight'].shape == (8, 2)  # 1x1 conv
    assert mm.unmatched == ['decode_head.conv_seg.weight']  # mmseg's head has no rule
    hf = cl.convert_state_dict(HF)
    assert torch.equal(hf.state_dict['backbone.block1.0.attn.kv.weight'],
                       torch.cat([_t(2, 2), torch.ones(2, 2)]))
    assert 'decode_head.linear_pred.weight' in hf.state_dict and not hf.unmatched
    v5 = cl.convert_state_dict(HF_V5)
    assert v5.layout == 'hf-segformer-v5'
    assert sorted(v5.state_dict) == ['backbone.block1.0.attn.kv.weight',
                                     'backbone.block1.0.attn.q.weight']


def test_conv_seg_one_rule():
    # Converting without a model (backbones, the converter tool): left out, with the reason.
    tao = cl.convert_state_dict(TAO_WHOLE)
    assert 'decode_head.conv_seg.weight' not in tao.state_dict
    assert tao.ignored['decode_head.conv_seg.bias'] == cl.UNUSED_CLASSIFIER_REASON
    # Whole models: TAO's own layout is kept as it is, conv_seg dropped only when the model
    # has no place for it (mmseg's SegformerHead on our backbone has one, and uses it).
    assert list(cl.to_model_layout(TAO_WHOLE)[1]) == list(TAO_WHOLE)
    without = cl.to_model_layout(TAO_WHOLE, model_keys={'decode_head.linear_pred.weight'})
    assert not any(cl.is_unused_classifier(k) for k in without[1])
    with_head = cl.to_model_layout(TAO_WHOLE, model_keys=set(TAO_WHOLE))
    assert list(with_head[1]) == list(TAO_WHOLE)


def test_to_model_layout_keeps_unconvertible_keys_by_name():
    layout, out, count = cl.to_model_layout(MMSEG)
    assert (layout, count) == ('mmseg-mit', 2 + 1)
    assert 'decode_head.conv_seg.weight' in out  # reported by loading / checking


def test_a_new_layout_is_one_unit():
    """How a layout is added (as tao6 was): recogniser + converter, registered before a
    layout whose recogniser would also accept its keys."""

    def convert(sd, result):
        for key, value in sd.items():
            result.state_dict[key[len('net.'):]] = value

    wrapped = cl.Layout('test-wrapped', 'keys under net.',
                        cl.keys_matching(r'^net\.backbone\.'), convert)
    keys = {'net.backbone.block1.0.attn.q.weight': _t(2, 2)}
    assert cl.detect_layout(keys) == 'tao'  # tao's recogniser accepts these keys too
    cl.register_layout(wrapped, before='tao')
    try:
        assert list(cl.LAYOUTS)[:3] == ['tao6', 'test-wrapped', 'tao']
        assert cl.detect_layout(keys) == 'test-wrapped'
        assert list(cl.to_model_layout(keys)[1]) == ['backbone.block1.0.attn.q.weight']
        with pytest.raises(ValueError, match='already registered'):
            cl.register_layout(wrapped)
    finally:
        del cl.LAYOUTS['test-wrapped']
    with pytest.raises(ValueError, match="no checkpoint layout 'nope'"):
        cl.register_layout(wrapped, before='nope')


def test_rename_rules():
    rules = [(r'layers\.(?P<s>\d+)\.norm\.(?P<p>\w+)', 'norm{s}.{p}')]
    assert cl.rename('layers.0.norm.weight', rules) == 'norm1.weight'
    assert cl.rename('layers.0.other.weight', rules) is None


def test_unwrap_checkpoint():
    sd = OrderedDict([('module.a', _t(1))])
    assert list(cl.unwrap_checkpoint(dict(state_dict=sd, meta={}))) == ['a']
    with pytest.raises(ValueError, match="entry 'meta' is a dict"):
        cl.unwrap_checkpoint(dict(weights=_t(1), meta={}))


def test_own_checkpoint_with_mmseg_head_keeps_its_classifier():
    """Our backbone with mmseg's SegformerHead: its checkpoint is in the 'tao' layout and
    its conv_seg is the classifier, kept on load and required by the fit check."""
    from mmengine.config import ConfigDict
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    cfg = dict(type='TAOEncoderDecoder', data_preprocessor=dict(type='SegDataPreProcessor'),
               backbone=dict(type='mit_b0'),
               decode_head=dict(type='SegformerHead', in_index=[0, 1, 2, 3], channels=16,
                                num_classes=3),
               test_cfg=ConfigDict(mode='whole'))
    model, other = MODELS.build(cfg), MODELS.build(cfg)
    sd = model.state_dict()
    assert cl.detect_layout(sd) == 'tao'
    cl.check_state_dict_fits(other, sd)
    assert other.load_state_dict(sd, strict=True)
    assert torch.equal(other.decode_head.conv_seg.weight, sd['decode_head.conv_seg.weight'])
    # TAO's head (ours) has none: the same rule drops it there.
    ours = tiny_segmentor('mit_b0', embed_dim=32, num_classes=3, perturbed=False)
    tao = dict(ours.state_dict(), **{'decode_head.conv_seg.weight': _t(3, 32, 1, 1)})
    assert ours.load_state_dict(tao, strict=True)
