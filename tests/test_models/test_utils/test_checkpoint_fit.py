"""A whole-model checkpoint that does not fit is refused, naming keys and the likely cause;
TAO checkpoints with mmseg's unused conv_seg fit, and load without warnings about it."""
import pytest
import torch

from mmseg_tao.models.utils import CheckpointMismatchError, check_state_dict_fits
from model_utils import tiny_segmentor


def test_own_and_tao_checkpoints_fit():
    model = tiny_segmentor('mit_b0', embed_dim=32, num_classes=3, perturbed=False)
    sd = model.state_dict()
    check_state_dict_fits(model, sd)
    # TAO saves mmseg's classifier, which its head (and ours) does not use.
    tao = dict(sd, **{'decode_head.conv_seg.weight': torch.zeros(3, 32, 1, 1),
                      'decode_head.conv_seg.bias': torch.zeros(3)})
    check_state_dict_fits(model, tao)
    missing, unexpected = model.load_state_dict(tao, strict=False)
    assert missing == [] and unexpected == []  # dropped on load: no warning buries others


@pytest.mark.slow  # builds full-size models
def test_other_backbone_is_named():
    model = tiny_segmentor('mit_b1', embed_dim=32, num_classes=3, perturbed=False)
    ckpt = tiny_segmentor('mit_b0', embed_dim=32, num_classes=3, perturbed=False).state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        check_state_dict_fits(model, ckpt, 'b0.pth')
    msg = str(err.value)
    assert msg.startswith('b0.pth does not fit the model:')
    assert 'of another shape (model vs checkpoint)' in msg
    assert 'backbone.patch_embed1.proj.weight: [64, 3, 7, 7] vs [32, 3, 7, 7]' in msg
    assert 'likely cause: the backbone differs from model.backbone.type (the checkpoint ' \
        'looks like mit_b0)' in msg
    deeper = tiny_segmentor('mit_b2', embed_dim=32, num_classes=3, perturbed=False)
    with pytest.raises(CheckpointMismatchError, match=r'key\(s\) missing from the checkpoint'
                       r'[\s\S]*backbone\.block1\.2\.norm1\.weight[\s\S]*looks like mit_b1'):
        check_state_dict_fits(deeper, model.state_dict())


def test_classes_and_decoder_width_are_named():
    model = tiny_segmentor('mit_b0', embed_dim=32, num_classes=3, perturbed=False)
    ckpt = tiny_segmentor('mit_b0', embed_dim=32, num_classes=5, perturbed=False).state_dict()
    with pytest.raises(CheckpointMismatchError, match='num_classes: the checkpoint predicts 5 '
                       'classes, the palette gives 3'):
        check_state_dict_fits(model, ckpt)
    ckpt = tiny_segmentor('mit_b0', embed_dim=64, num_classes=3, perturbed=False).state_dict()
    with pytest.raises(CheckpointMismatchError, match='the decoder width: the checkpoint has '
                       'embed_dim 64, model.decode_head.decoder_params.embed_dim is 32'):
        check_state_dict_fits(model, ckpt)


def test_unknown_layout_is_refused():
    model = tiny_segmentor('mit_b0', embed_dim=32, num_classes=3, perturbed=False)
    with pytest.raises(CheckpointMismatchError, match='unrecognised checkpoint layout'):
        check_state_dict_fits(model, {'fc.weight': torch.zeros(2, 2)})


def test_mmseg_whole_model_head_is_named():
    """mmseg's SegformerHead has BN + ReLU per level: its weights do not map onto TAO's
    head, so such a checkpoint is refused with that reason (its backbone converts)."""
    from mmengine.config import ConfigDict
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    mmseg_model = MODELS.build(dict(
        type='EncoderDecoder', data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=dict(type='MixVisionTransformer', embed_dims=32, num_layers=[2, 2, 2, 2],
                      num_heads=[1, 2, 5, 8]),
        decode_head=dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                         in_index=[0, 1, 2, 3], channels=32, num_classes=3),
        test_cfg=ConfigDict(mode='whole')))
    model = tiny_segmentor('mit_b0', embed_dim=32, num_classes=3, perturbed=False)
    with pytest.raises(CheckpointMismatchError) as err:
        check_state_dict_fits(model, mmseg_model.state_dict())
    msg = str(err.value)
    assert "the checkpoint has mmseg's SegformerHead" in msg
    assert 'the backbone differs' not in msg  # the mmseg backbone converts and fits
    assert 'decode_head.convs.0.conv.weight' in msg
