"""tools/spec2cfg.py writes a composed config: the palette once, the resolved spec beside
it (referenced by path), and stock mmengine reads both."""
import os.path as osp
import subprocess
import sys

import pytest
import yaml
from mmengine.config import Config

ROOT = osp.join(osp.dirname(__file__), '..', '..')
SPEC = osp.join(ROOT, 'configs', 'tao_specs', 'segformer_isbi.yaml')


@pytest.mark.slow  # tools/spec2cfg.py in subprocesses
def test_config_has_the_palette_once_and_the_spec_beside_it(tmp_path):
    out = tmp_path / 'cfgs' / 'isbi.py'
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'spec2cfg.py'), SPEC,
                    'train.max_iters=7', '-o', str(out)], check=True, capture_output=True)
    text = out.read_text()
    assert text.count("seg_class='foreground'") == 1  # the palette entries, once
    assert text.count('palette=tao_palette') == 3  # train, val and test datasets
    assert "tao_spec = '{{ fileDirname }}/isbi_spec.yaml'" in text
    spec_file = tmp_path / 'cfgs' / 'isbi_spec.yaml'
    recorded = yaml.safe_load(spec_file.read_text())
    assert recorded['train']['max_iters'] == 7  # resolved: the override is in it
    assert recorded['train']['exp_config']['manual_seed'] == 49  # defaults filled in
    cfg = Config.fromfile(str(out))
    assert cfg.tao_spec == str(spec_file)
    assert cfg.train_dataloader.dataset.dataset.palette == cfg.tao_palette  # (RepeatDataset)
    assert [e['seg_class'] for e in cfg.test_dataloader.dataset.palette] == \
        ['foreground', 'background']


def test_experiment_record_hook_copies_the_spec_file(tmp_path):
    from types import SimpleNamespace

    from mmseg_tao.engine.hooks.experiment_record_hook import ExperimentRecordHook
    spec_file = tmp_path / 's.yaml'
    spec_file.write_text(yaml.safe_dump({'train': {'max_iters': 3}}))
    work = tmp_path / 'work'
    work.mkdir()
    runner = SimpleNamespace(cfg={'tao_spec': str(spec_file)}, work_dir=str(work),
                             train_dataloader=SimpleNamespace(dataset=object()))
    ExperimentRecordHook().before_train(runner)
    assert yaml.safe_load((work / 'experiment_spec.yaml').read_text()) == \
        {'train': {'max_iters': 3}}
