"""quantize.layers / skip_names select modules as TAO's match_layer does (fnmatch on the
qualified name, then the class name; later layers override, native removes, skip_names last);
checked against hand-written module names."""
import torch.nn as nn

from mmseg_tao.quantization.config import settings_of
from mmseg_tao.quantization.matching import match_layer, resolve_layers


class Block(nn.Module):

    def __init__(self):
        super().__init__()
        self.q = nn.Linear(4, 4)
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.ModuleList([Block(), Block()])
        self.head = nn.Conv2d(4, 2, 1)


def test_match_layer_name_then_class():
    lin = nn.Linear(2, 2)
    assert match_layer(lin, 'backbone.classifier.fc', 'backbone.classifier.*')
    assert match_layer(lin, 'backbone.classifier.fc', 'Linear')
    assert not match_layer(nn.Conv2d(1, 1, 1), 'backbone.features.conv1', 'Linear')
    assert not match_layer(lin, 'x.fc', 'linear')  # case-sensitive (POSIX)


def test_layers_in_order_native_and_skip_names():
    s = settings_of(dict(layers=[
        dict(module_name='*', weights=dict(dtype='int8')),
        dict(module_name='backbone.1.*', weights=dict(dtype='fp8_e4m3fn')),
        dict(module_name='backbone.0.proj', weights=dict(dtype='native')),
    ], skip_names=['LayerNorm', 'head']))
    plan = {n: t.dtype for n, t in resolve_layers(Net(), s, 'weights').items()}
    assert plan == {
        'backbone': 'int8', 'backbone.0': 'int8', 'backbone.0.q': 'int8',
        'backbone.1': 'int8', 'backbone.1.q': 'fp8_e4m3fn',  # .1 is not .1.*
        'backbone.1.proj': 'fp8_e4m3fn'}


def test_empty_layers_mean_every_module_int8():
    s = settings_of(dict(backend='torchao'))
    plan = resolve_layers(Net(), s, 'weights')
    assert set(plan) == {'backbone', 'backbone.0', 'backbone.0.q', 'backbone.0.proj',
                         'backbone.0.norm', 'backbone.1', 'backbone.1.q', 'backbone.1.proj',
                         'backbone.1.norm', 'head'}
    assert resolve_layers(Net(), s, 'activations') == {}  # torchao: weights only


def test_torchao_plan_keeps_linear_only():
    from mmseg_tao.quantization.backends.torchao import plan_weights
    s = settings_of(dict(backend='torchao', skip_names=['*.1.*']))
    assert plan_weights(Net(), s) == {'backbone.0.q': 'int8', 'backbone.0.proj': 'int8'}


def test_modelopt_config_keys():
    from mmseg_tao.quantization.backends.modelopt_torch import modelopt_config
    s = settings_of(dict(backend='modelopt.pytorch', mode='static_ptq', layers=[
        dict(module_name='Linear', weights=dict(dtype='int8', quant_axis=0),
             activations=dict(dtype='int8'))], skip_names=['backbone.1.q']))
    cfg = modelopt_config(Net(), s, 'max')
    keys = list(cfg['quant_cfg'])
    assert keys[0] == 'default' and cfg['quant_cfg']['default'] == {'enable': False}
    assert cfg['quant_cfg']['backbone.0.q.weight_quantizer'] == {'num_bits': 8, 'axis': 0}
    assert cfg['quant_cfg']['backbone.0.q.input_quantizer'] == {'num_bits': 8, 'axis': None}
    assert cfg['quant_cfg']['backbone.1.q.weight_quantizer'] == {'enable': False}
    assert 'head.weight_quantizer' not in cfg['quant_cfg']
    assert cfg['algorithm'] == 'max'
