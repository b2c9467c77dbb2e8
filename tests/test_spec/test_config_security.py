"""Nothing in a spec can run as code (or be substituted) when the config is loaded."""
import os

import pytest
import yaml
from mmengine.config import Config

from mmseg_tao.spec import compose_config, load_spec, spec_to_config, write_config

HOSTILE = [
    "'; import os; os.system('touch {marker}') #",
    '"""\nimport os\nos.system("touch {marker}")\n"""',
    "__import__('os').system('touch {marker}')",
    'f"{{__import__(\'os\').system(\'touch {marker}\')}}"',
    '{{$ENV:HOME}}',
    '{{ fileDirname }}/x',
    '{{_base_.model}}',
    '{0.__class__.__mro__}',
    "\\x41\\n' + str(1) + '\r\n\t\\",
    'line\u2028sep\u0000nul',
]


def _spec(value: str) -> dict:
    """A spec whose every free-form string field that reaches the config is ``value``."""
    return dict(
        results_dir=value,
        model=dict(pretrained_model_path=value, backbone=dict(type='mit_b0')),
        dataset=dict(
            data_root=value, img_suffix=value, seg_map_suffix=value,
            train_dataset=dict(img_dir=[value, value + '2'], ann_dir=[value, value + '3']),
            val_dataset=dict(img_dir=value, ann_dir=[value]),
            test_dataset=dict(img_dir=value, ann_dir=value),
            palette=[dict(seg_class=value, mapping_class=value, label_id=0, rgb=[0, 0, 0]),
                     dict(seg_class=value + 'b', mapping_class=value + 'b', label_id=1,
                          rgb=[1, 1, 1])]),
        train=dict(resume_training_checkpoint_path=value, validate=True))


@pytest.mark.parametrize('template', HOSTILE)
def test_hostile_strings_stay_data(template, tmp_path, monkeypatch):
    marker = tmp_path / 'pwned'
    value = template.replace('{marker}', str(marker)) if '{marker}' in template else template
    monkeypatch.setenv('HOME', '/should/not/appear')
    path = tmp_path / 'spec.yaml'
    path.write_text(yaml.safe_dump(_spec(value), allow_unicode=True))
    spec = load_spec(str(path))
    out = str(tmp_path / 'cfg.py')
    text = write_config(compose_config(spec_to_config(spec, resolve=False)), out,
                        source=value)
    assert '{' not in text  # braces only as \x7b escapes: nothing for mmengine to substitute
    loaded = Config.fromfile(out)
    assert not marker.exists()
    inner = loaded.train_dataloader.dataset.dataset
    assert inner.data_root == value
    assert inner.img_dirs == [value, value + '2'] and inner.ann_dirs == [value, value + '3']
    assert [p['seg_class'] for p in inner.palette] == [value, value + 'b']
    assert loaded.model.backbone.init_cfg.checkpoint == value
    assert loaded.load_from == value
    assert loaded.val_dataloader.dataset.img_suffix == value
    assert '/should/not/appear' not in repr(loaded._cfg_dict.to_dict())
    assert not os.path.exists(marker)
