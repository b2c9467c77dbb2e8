"""The quantize section in both spec forms: TAO 7.0.1's defaults, TAO 6/7 -> TAO 5 form by
the correspondence, and TAO 5's addition (dataset.quant_calibration_dataset.img_dir)."""
from mmseg_tao.spec import load_spec
from mmseg_tao.spec.ignored import IGNORED_TAO6
from mmseg_tao.spec.tao6_schema import Tao6Spec

# /work/shared/tao6/tao7_0_1_defaults.txt (TAO 7.0.1's hydra defaults).
TAO701_DEFAULTS = dict(backend='torchao', mode='weight_only_ptq', algorithm='minmax',
                       layers=[], skip_names=[], model_path='', results_dir='',
                       backend_kwargs={}, device='cuda')

TAO6_SPEC = """\
results_dir: {root}/results
dataset:
  segment:
    root_dir: {root}
    quant_calibration_dataset:
      images_dir: {root}/calib
quantize:
  backend: modelopt.pytorch
  mode: static_ptq
  algorithm: max
  layers:
    - module_name: '*'
      weights: {{dtype: fp8_e4m3fn}}
      activations: {{dtype: fp8_e4m3fn}}
  skip_names: ['*head*', BatchNorm2d]
"""


def test_tao701_defaults():
    q = Tao6Spec().quantize
    assert {k: getattr(q, k) for k in TAO701_DEFAULTS} == TAO701_DEFAULTS
    assert Tao6Spec().dataset.segment.quant_calibration_dataset.images_dir == ''
    assert not [r for r in IGNORED_TAO6 if 'quant' in r.source]


def test_tao6_section_reaches_the_tao5_form(tmp_path):
    path = tmp_path / 'spec.yaml'
    path.write_text(TAO6_SPEC.format(root=tmp_path))
    spec = load_spec(str(path), ['quantize.device=cpu'], task='quantize')
    q = spec.quantize
    assert (q.backend, q.mode, q.algorithm, q.device) == ('modelopt.pytorch', 'static_ptq',
                                                         'max', 'cpu')
    assert q.layers[0].weights.dtype == 'fp8_e4m3fn' and q.skip_names[1] == 'BatchNorm2d'
    assert spec.dataset.quant_calibration_dataset.img_dir == f'{tmp_path}/calib'


def test_tao5_addition(tmp_path):
    path = tmp_path / 'spec.yaml'
    path.write_text('dataset:\n  quant_calibration_dataset:\n    img_dir: calib\n'
                    '  palette:\n  - {seg_class: a, label_id: 0, rgb: [0, 0, 0], '
                    'mapping_class: a}\nquantize:\n  backend: modelopt.onnx\n'
                    '  mode: static_ptq\n')
    spec = load_spec(str(path), task='quantize')
    assert spec.quantize.backend == 'modelopt.onnx'
    assert spec.dataset.quant_calibration_dataset.img_dir == 'calib'
