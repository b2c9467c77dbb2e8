"""A missing split folder: the message names it; only the shipped ISBI examples add the
command that makes their data (a user's own data root is not for synthetic EM images)."""
import os.path as osp

from mmseg_tao.cli import main
from mmseg_tao.utils.configs import config_path, example_data_hint
from seg_data import write_isbi_spec


def test_own_spec_missing_validation_split_names_folder_without_isbi_advice(tmp_path, capsys):
    spec = write_isbi_spec(tmp_path, dict(max_iters=1, validation_interval=1, validate=True),
                           val='same')
    missing = osp.join(str(tmp_path), 'landcover', 'images', 'nosuch')
    code = main(['train', '-e', spec, f'dataset.val_dataset.img_dir={missing}',
                 f'results_dir={tmp_path / "results"}'])
    err = capsys.readouterr().err
    assert code == 2
    assert missing in err
    assert 'prepare-isbi' not in err and 'prepare_isbi' not in err
    assert 'Traceback' not in err


def test_hint_only_for_shipped_isbi_examples(tmp_path):
    missing = [osp.join('data', 'isbi', 'images', 'train')]
    for name in ('segformer_isbi.py', 'tao_specs/segformer_isbi_tao6.yaml'):
        hint = example_data_hint(config_path(name), missing)
        assert 'mmseg-tao prepare-isbi data/isbi' in hint
    own = tmp_path / 'segformer_isbi.py'  # same name, not the shipped file
    own.write_text(open(config_path('segformer_isbi.py')).read())
    assert example_data_hint(str(own), missing) == ''
    assert example_data_hint(config_path('segformer_isbi.py'), []) == ''
