"""Checkpoint layout ``tao6`` (TAO 6/7 Lightning files) against facts recorded from TAO
7.0.1's own model code (tests/data/tao_oracle/record_tao7_facts.py): its checkpoint keys,
and its outputs under weights made from those keys (a non-zero fuse-convolution bias)."""
from collections import OrderedDict

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint

from mmseg_tao.models.utils import (
    CheckpointMismatchError,
    check_state_dict_fits,
    load_pretrained,
)
from mmseg_tao.models.utils import checkpoint_layout as cl
from mmseg_tao.models.utils.checkpoint_layout.tao6 import LIGHTNING_VERSION
from model_utils import oracle_record, tiny_segmentor

RECORD, OUTPUTS, facts = oracle_record('tao7')
NAMES = sorted(RECORD['models'])


def tao7_keys(name: str) -> dict:
    return {k: tuple(s) for k, s in RECORD['models'][name]['keys'].items()}


def oracle_state_dict(name: str) -> 'OrderedDict':
    """TAO 7's Lightning state dict of ``name`` with the recorded (oracle) weights."""
    return facts.oracle_weights(RECORD['models'][name]['keys'].items())


def lightning_checkpoint(name: str, **extra) -> dict:
    """What TAO 6/7 saves (Lightning's dict, plain data) around the oracle weights."""
    return {'epoch': 4, 'global_step': 10, 'pytorch-lightning_version': '2.6.1',
            'state_dict': oracle_state_dict(name),
            'loops': {'fit_loop': {'epoch_progress': {'total': {'completed': 5}}}},
            'callbacks': {"ModelCheckpoint{'monitor': None}": {'best_model_path': ''}},
            'optimizer_states': [{'state': {}, 'param_groups': [{'lr': 6e-5, 'params': []}]}],
            'lr_schedulers': [{'last_epoch': 10, 'lr_lambdas': [None]}], **extra}


def our_model(name: str):
    head = RECORD['models'][name]['head']
    return tiny_segmentor(name, embed_dim=head['embed_dim'], num_classes=head['num_classes'],
                          perturbed=False).eval()


@pytest.mark.parametrize('name', NAMES)
def test_tao7_keys_convert_to_exactly_ours(name):
    model = our_model(name)
    fake = {k: torch.zeros(s) for k, s in tao7_keys(name).items()}
    assert cl.detect_layout(fake) == 'tao6'
    layout, converted, count = cl.to_model_layout(fake, model_keys=model.state_dict())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == ours
    assert count == len(ours)  # the fuse bias is folded, not a tensor of its own
    check_state_dict_fits(model, fake)


@pytest.mark.parametrize('name', NAMES)
def test_ours_written_as_tao7_keys_exactly(name):
    model = our_model(name)
    written = cl.to_tao6_state_dict(model.state_dict())
    assert {k: tuple(v.shape) for k, v in written.items()} == tao7_keys(name)
    own = model.state_dict()
    assert torch.equal(written['model.decoder.linear_fuse.0.bias'],
                       torch.zeros_like(own['decode_head.linear_fuse.bn.running_mean']))
    assert torch.equal(written['model.decoder.linear_fuse.1.running_mean'],
                       own['decode_head.linear_fuse.bn.running_mean'])
    ckpt = cl.to_tao6_checkpoint(own, epoch=3, global_step=120)
    assert {k: ckpt[k] for k in ('epoch', 'global_step', 'pytorch-lightning_version')} == \
        {'epoch': 3, 'global_step': 120, 'pytorch-lightning_version': LIGHTNING_VERSION}


def test_fuse_bias_folded_into_running_mean():
    sd = oracle_state_dict('mit_b0')
    bias = sd['model.decoder.linear_fuse.0.bias']
    assert bias.abs().max() > 0.1  # the record exercises the fold
    out = cl.convert_state_dict(sd).state_dict
    assert torch.equal(out['decode_head.linear_fuse.bn.running_mean'],
                       sd['model.decoder.linear_fuse.1.running_mean'] - bias)
    assert torch.equal(out['decode_head.linear_fuse.bn.running_var'],
                       sd['model.decoder.linear_fuse.1.running_var'])
    assert not [k for k in out if k.startswith('decode_head.linear_fuse.conv.bias')]
    # BN(conv + b) = BN'(conv) also in training: the batch mean absorbs the bias.
    bn, x = torch.nn.BatchNorm2d(bias.numel()).train(), torch.randn(2, bias.numel(), 3, 3)
    torch.testing.assert_close(bn(x + bias[None, :, None, None]), bn(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize('name', NAMES)
def test_logits_equal_tao7_after_loading_a_tao6_file(name, tmp_path):
    """Loaded as mmengine / mmseg load checkpoints (TAOEncoderDecoder's load hook)."""
    path = str(tmp_path / 'model_epoch_004_step_00010.pth')
    torch.save(lightning_checkpoint(name), path)
    model = our_model(name)
    load_checkpoint(model, path, map_location='cpu', strict=True)
    with torch.no_grad():
        feats = model.extract_feat(facts.oracle_input())
        logits = model.decode_head.forward(feats)
    for i, f in enumerate(feats):
        torch.testing.assert_close(f, OUTPUTS[name][f'feat{i}'], atol=1e-4, rtol=0)
    diff = float((logits - OUTPUTS[name]['logits']).abs().max())
    print(f'{name}: max |ours - TAO 7.0.1| logits {diff:.2e}')
    assert diff <= 1e-4


def test_round_trip_is_identical():
    model = tiny_segmentor('mit_b0', embed_dim=32, num_classes=4)
    own = model.state_dict()
    back = cl.convert_state_dict(cl.to_tao6_state_dict(own)).state_dict
    assert set(back) == set(own)
    assert all(torch.equal(back[k], own[k]) for k in own)


def test_keys_without_a_rule_are_reported():
    sd = oracle_state_dict('mit_b0')
    sd['model.criterion.weight'] = torch.ones(3)
    result = cl.convert_state_dict(sd)
    assert result.layout == 'tao6' and result.unmatched == ['model.criterion.weight']
    with pytest.raises(CheckpointMismatchError, match='model.criterion.weight'):
        check_state_dict_fits(our_model('mit_b0'), sd)
    with pytest.raises(ValueError, match='no TAO 6/7 name: decode_head.convs.0'):
        cl.to_tao6_state_dict({'decode_head.convs.0.conv.weight': torch.ones(1)})
    with pytest.raises(ValueError, match='not a whole model'):
        cl.to_tao6_state_dict({'backbone.block1.0.attn.q.weight': torch.ones(1)})


@pytest.mark.parametrize('name', NAMES)
def test_backbone_from_a_tao6_file(name, tmp_path):
    """``pretrained_backbone_path``: the backbone out of a whole TAO 6/7 checkpoint."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    path = str(tmp_path / 'tao6.pth')
    torch.save(lightning_checkpoint(name), path)
    init_default_scope('mmseg')
    backbone = MODELS.build(dict(type=name)).eval()
    report = load_pretrained(backbone, path)
    assert report.layout == 'tao6' and report.loaded == len(backbone.state_dict())
    assert 'decode_head.linear_pred.weight' in report.ignored
    with torch.no_grad():
        feats = backbone(facts.oracle_input())
    for i, f in enumerate(feats):
        torch.testing.assert_close(f, OUTPUTS[name][f'feat{i}'], atol=1e-4, rtol=0)


def test_pretrained_backbone_is_strict(tmp_path):
    """Every backbone key must come from the file: a partial or another backbone's file
    is refused with the keys named, nothing is loaded."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    b0 = MODELS.build(dict(type='mit_b0'))
    partial = {f'backbone.{k}': v for k, v in b0.state_dict().items() if 'block4' not in k}
    torch.save({'state_dict': partial}, tmp_path / 'partial.pth')
    before = {k: v.clone() for k, v in b0.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=r'missing from the checkpoint'):
        load_pretrained(b0, str(tmp_path / 'partial.pth'))
    assert all(torch.equal(v, before[k]) for k, v in b0.state_dict().items())

    b1 = MODELS.build(dict(type='mit_b1'))
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in b1.state_dict().items()}},
               tmp_path / 'b1.pth')
    with pytest.raises(CheckpointMismatchError, match=r'(?s)another shape.*looks like mit_b1'):
        load_pretrained(b0, str(tmp_path / 'b1.pth'))
    torch.save({'fc.weight': torch.ones(1)}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointMismatchError, match='unrecognised checkpoint layout'):
        load_pretrained(b0, str(tmp_path / 'other.pth'))
