"""The quantize section refused as TAO 7.0.1's backends refuse it (exit 2, one message naming
the key, the value and the accepted values), and the device fallbacks.

TAO facts (nvidia_tao_pytorch/core/quantization/, TAO 7.0.1): SUPPORTED_MODES of
backends/torchao/torchao.py = {weight_only_ptq}, of backends/modelopt_pytorch and
backends/modelopt_onnx = {static_ptq}; ModelQuantizationConfig.algorithm valid options
minmax,max,entropy (modelopt.pytorch) and max,entropy,awq_clip,awq_lite,awq_full,rtn_dq
(modelopt.onnx); SupportedDtype int8, fp8_e4m3fn, fp8_e5m2; device regex
^(cuda|cpu|trt|cuda:[0-9]+)$, CUDA falls back to the CPU without a GPU.
"""
import pytest
import torch

from mmseg_tao.apis.quantize import resolve_device
from mmseg_tao.quantization.config import (
    BACKEND_MODES,
    QuantizeConfigError,
    effective_algorithm,
    settings_of,
)

TAO_SUPPORTED_MODES = {'torchao': ('weight_only_ptq', ),
                       'modelopt.pytorch': ('static_ptq', ),
                       'modelopt.onnx': ('static_ptq', )}


def test_modes_are_taos():
    assert BACKEND_MODES == TAO_SUPPORTED_MODES


@pytest.mark.parametrize('section,message', [
    (dict(backend='torchao', mode='static_ptq'),
     "quantize.mode: 'static_ptq' is not supported by backend 'torchao'; accepted: "
     'weight_only_ptq'),
    (dict(backend='modelopt.pytorch', mode='weight_only_ptq'),
     "quantize.mode: 'weight_only_ptq' is not supported by backend 'modelopt.pytorch'; "
     'accepted: static_ptq'),
    (dict(backend='modelopt.pytorch', mode='static_ptq', algorithm='awq_lite'),
     "quantize.algorithm: 'awq_lite' is not supported by backend 'modelopt.pytorch'; "
     'accepted: minmax, max, entropy'),
    (dict(backend='modelopt.onnx', mode='static_ptq', algorithm='rtn_dq'),
     "quantize.algorithm: 'rtn_dq' is one of ModelOpt's INT4 weight-only algorithms"),
    (dict(backend='torchao', device='gpu'),
     "quantize.device: 'gpu' is not accepted; accepted: cuda, cpu, trt, cuda:N"),
    (dict(backend='torchao', backend_kwargs=dict(group_size=32)),
     "quantize.backend_kwargs: 'group_size' is not taken by backend 'torchao'; accepted: "
     'device'),
])
def test_refusals(section, message):
    with pytest.raises(QuantizeConfigError) as err:
        settings_of(section)
    assert message in str(err.value)
    assert len(err.value.problems) == 1


def test_schema_refuses_unknown_backend_and_dtype():
    from mmseg_tao.spec import SpecError
    with pytest.raises(SpecError, match="quantize.backend: 'tensorrt' is not one of "
                       'modelopt.pytorch, torchao, modelopt.onnx'):
        settings_of(dict(backend='tensorrt'))
    with pytest.raises(SpecError, match=r"quantize.layers\[0\].weights.dtype: 'int4'"):
        settings_of(dict(layers=[dict(module_name='*', weights=dict(dtype='int4'))]))


def test_algorithms_that_run():
    assert effective_algorithm(settings_of(dict(backend='modelopt.pytorch',
                                                mode='static_ptq'))) == 'max'  # minmax
    assert effective_algorithm(settings_of(dict(backend='modelopt.onnx', mode='static_ptq',
                                                algorithm='entropy'))) == 'entropy'
    assert effective_algorithm(settings_of(dict(backend='torchao'))) is None


def test_cli_refusal_is_one_message_exit_2(tmp_path, capsys):
    from mmseg_tao.cli.tasks import main
    spec = tmp_path / 'spec.yaml'
    spec.write_text('dataset:\n  palette:\n  - {seg_class: a, label_id: 0, rgb: [0, 0, 0], '
                    'mapping_class: a}\n')
    rc = main(['-e', str(spec), 'quantize.backend=torchao', 'quantize.mode=static_ptq',
               f'results_dir={tmp_path}'], task='quantize')
    err = capsys.readouterr().err
    assert rc == 2
    assert "quantize.mode: 'static_ptq' is not supported by backend 'torchao'" in err
    assert 'Traceback' not in err


def test_cuda_falls_back_to_cpu_with_a_note(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    s = settings_of(dict(backend='modelopt.pytorch', mode='static_ptq', device='cuda'))
    assert resolve_device(s) == torch.device('cpu')
    assert 'no CUDA GPU here; running on the CPU' in capsys.readouterr().err


def test_trt_and_missing_gpu_index(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    s = settings_of(dict(backend='modelopt.pytorch', mode='static_ptq', device='trt'))
    assert resolve_device(s) == torch.device('cuda', 0)  # TAO: trt -> CUDA for calibration
    assert 'calibrating with CUDA' in capsys.readouterr().err
    s = settings_of(dict(backend='modelopt.pytorch', mode='static_ptq', device='cuda:3'))
    assert resolve_device(s) == torch.device('cuda', 0)
    assert 'shows 1 GPU(s); using cuda:0' in capsys.readouterr().err
