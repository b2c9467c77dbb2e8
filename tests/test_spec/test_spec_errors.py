"""Bad specs: every problem reported at once, each with its key path and expectation."""
import textwrap

import pytest

from mmseg_tao.spec import SpecError, load_spec, parse_override

GOOD = """
model:
  backbone:
    type: mit_b0
dataset:
  train_dataset:
    img_dir: [/d/img]
    ann_dir: [/d/ann]
  palette:
    - {seg_class: a, rgb: [0, 0, 0], label_id: 0, mapping_class: a}
    - {seg_class: b, rgb: [9, 9, 9], label_id: 1, mapping_class: b}
train:
  max_iters: 10
"""


def _write(tmp_path, text):
    path = tmp_path / 'spec.yaml'
    path.write_text(textwrap.dedent(text))
    return str(path)


def _problems(tmp_path, text, overrides=(), task=None):
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, text), overrides, task=task)
    assert str(tmp_path) in str(err.value)  # names the file
    return err.value.problems


def test_good_spec_loads(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD), task='train')
    assert spec.model.backbone.type == 'mit_b0'


def test_unknown_key_suggests_closest(tmp_path):
    problems = _problems(tmp_path, GOOD + '  max_iter: 5\n')
    assert problems == ["train.max_iter: unknown key; did you mean 'train.max_iters'?"]


def test_wrong_type(tmp_path):
    problems = _problems(tmp_path, GOOD.replace('max_iters: 10', 'max_iters: ten'))
    assert problems == ["train.max_iters: 'ten' is not an integer"]


def test_out_of_range_and_choices(tmp_path):
    text = GOOD.replace('type: mit_b0', 'type: mit_b9').replace('max_iters: 10', 'max_iters: 0')
    problems = _problems(tmp_path, text)
    assert any(p.startswith("model.backbone.type: 'mit_b9' is not one of mit_b0, mit_b1")
               and "fan_large_16_p4_hybrid (did you mean 'mit_b" in p for p in problems)
    assert 'train.max_iters: 0 must be > 0' in problems
    assert len(problems) == 2  # both reported in one run


def test_bad_input_type_and_list_length(tmp_path):
    text = GOOD.replace('model:\n', 'dataset_extra: 1\nmodel:\n').replace(
        '  train_dataset:\n', '  input_type: gray\n  img_norm_cfg: {mean: [1, 2]}\n'
        '  train_dataset:\n')
    problems = _problems(tmp_path, text)
    assert sorted(problems) == sorted([
        "dataset.input_type: 'gray' is not one of rgb, grayscale (did you mean 'grayscale'?)",
        'dataset.img_norm_cfg.mean: [1.0, 2.0] must have 3 entries',
        'dataset_extra: unknown key; did you mean \'dataset\'?',
    ])


def test_task_needs_fields(tmp_path):
    text = GOOD.replace('    ann_dir: [/d/ann]\n', '')
    problems = _problems(tmp_path, text, task='train')
    assert problems == ['dataset.train_dataset.ann_dir: required for train (training masks) '
                        'but missing']
    problems = _problems(tmp_path, GOOD + '  validate: true\n', task='train')
    assert problems[0].startswith('dataset.val_dataset.img_dir: required for train')
    assert 'train.validate: false' in problems[0]


def test_palette_mistakes(tmp_path):
    text = GOOD.replace('label_id: 1, mapping_class: b', 'label_id: 0, mapping_class: c')
    problems = _problems(tmp_path, text)
    assert "dataset.palette[1].label_id: 0 is already used by dataset.palette[0] ('a')" in problems
    assert any(p.startswith("dataset.palette[1].mapping_class: 'c' names no class; "
                            "expected one of ['a', 'b']") for p in problems)


def test_yaml_syntax_error_has_line(tmp_path):
    problems = _problems(tmp_path, 'train:\n  max_iters: [1, 2\n')
    assert problems[0].startswith('not valid YAML (line ')


def test_yaml_tags_are_not_code(tmp_path):
    problems = _problems(tmp_path, 'results_dir: !!python/object/apply:os.system ["touch x"]\n')
    assert problems[0].startswith('not valid YAML')
    assert not (tmp_path / 'x').exists()


def test_overrides_typed_by_schema(tmp_path):
    path = _write(tmp_path, GOOD)
    spec = load_spec(path, ['train.max_iters=25', 'train.validate=false', 'results_dir=123',
                            'model.pretrained_model_path=null',
                            'train.trainer.sf_optim.betas=[0.8, 0.99]',
                            'dataset.train_dataset.img_dir=[/a, /b]',
                            'dataset.train_dataset.ann_dir=[/c, /d]',
                            'train.trainer.sf_optim.lr=1e-4'])
    assert spec.train.max_iters == 25 and spec.train.validate is False
    assert spec.results_dir == '123'
    assert spec.model.pretrained_model_path is None
    assert spec.train.trainer.sf_optim.betas == [0.8, 0.99]
    assert spec.dataset.train_dataset.img_dir == ['/a', '/b']
    assert spec.train.trainer.sf_optim.lr == pytest.approx(1e-4)
    assert parse_override('a.b=[1, 2]') == ('a.b', [1, 2])


def test_bad_overrides(tmp_path):
    path = _write(tmp_path, GOOD)
    with pytest.raises(SpecError) as err:
        load_spec(path, ['train.max_iters', 'train.max_iter=3', 'train.max_iters=x'])
    assert err.value.problems[0].startswith("override 'train.max_iters': expected key=value")
    with pytest.raises(SpecError) as err:
        load_spec(path, ['train.max_iter=3', 'train.max_iters=x'])
    assert sorted(err.value.problems) == [
        "train.max_iter: unknown key; did you mean 'train.max_iters'?",
        "train.max_iters: 'x' is not an integer"]


def test_documented_spelling_is_an_alias(tmp_path):
    """TAO's parameter table says decoder_params.embed_dims; its code reads embed_dim."""
    from mmseg_tao.spec import load_spec
    path = tmp_path / 'spec.yaml'
    path.write_text('model:\n  decode_head:\n    decoder_params:\n      embed_dims: 256\n')
    notes = []
    assert load_spec(str(path), notes=notes).model.decode_head.decoder_params.embed_dim == 256
    assert notes == ['model.decode_head.decoder_params.embed_dims read as '
                     "model.decode_head.decoder_params.embed_dim (the spelling of TAO's "
                     "documentation; TAO's code reads the latter)"]
    path.write_text('model:\n  decode_head:\n    decoder_params:\n      embed_dims: 256\n'
                    '      embed_dim: 768\n')
    with pytest.raises(SpecError, match='embed_dims: 256 disagrees with '
                       'model.decode_head.decoder_params.embed_dim: 768'):
        load_spec(str(path))
