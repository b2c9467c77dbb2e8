"""Every real TAO spec in tests/data/tao_specs (sources in its README) is accepted unchanged
and translates."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg_tao.spec import compose_config, load_spec, spec_to_config, write_config
from mmseg_tao.spec.compose import unscoped

SPEC_DIR = osp.join(osp.dirname(__file__), '..', 'data', 'tao_specs')
SPECS = sorted(glob.glob(osp.join(SPEC_DIR, '*.yaml')))


def test_specs_are_present():
    assert len(SPECS) >= 5, f'expected the TAO specs in {osp.abspath(SPEC_DIR)}'


@pytest.mark.parametrize('path', SPECS, ids=[osp.basename(p)[:60] for p in SPECS])
@pytest.mark.parametrize('line_end', ['lf', 'crlf'])
def test_spec_translates(path, line_end, tmp_path):
    if line_end == 'crlf':
        data = open(path, 'rb').read().replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
        path = str(tmp_path / 'spec_crlf.yaml')
        open(path, 'wb').write(data)
    spec = load_spec(path)
    cfg = spec_to_config(spec)
    out = str(tmp_path / 'cfg.py')
    text = write_config(compose_config(spec_to_config(spec, resolve=False)), out)
    assert 'pipeline=test_pipeline' in text  # shared parts are written once, by name
    assert text.startswith("_base_ = ['mmseg::_base_/default_runtime.py']\n")
    # What mmengine reads back, through the _base_ file, is exactly what was translated
    # (tuples come back as tuples, dicts as ConfigDicts), once the _scope_='mmseg' marks
    # on what mmseg's base file gives are dropped (the config's default_scope anyway).
    loaded = Config(unscoped(Config.fromfile(out).to_dict(), cfg['default_scope']))
    assert set(loaded.keys()) == set(cfg)
    for key, value in cfg.items():
        assert loaded[key] == value, key
    assert loaded.model.decode_head.num_classes == len(
        {e.mapping_class for e in spec.dataset.palette})
    assert loaded.model.backbone.type == spec.model.backbone.type


def test_task_checks_on_real_specs():
    by_name = {osp.basename(p): p for p in SPECS}
    train = next(p for n, p in by_name.items() if 'train_isbi' in n)
    test = next(p for n, p in by_name.items() if 'test_isbi' in n)
    load_spec(train, task='train')
    # The test spec has no checkpoint: evaluate needs one, named in the error.
    with pytest.raises(ValueError, match=r'evaluate\.checkpoint: required for evaluate'):
        load_spec(test, task='evaluate')
    load_spec(test, ['evaluate.checkpoint=model.pth'], task='evaluate')
