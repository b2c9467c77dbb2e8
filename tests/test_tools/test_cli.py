"""``mmseg-tao COMMAND``: every tool is a subcommand, with its own --help, and a user's
mistake ends in one line and exit status 2. In-process (mmseg_tao.cli.main), so quick;
tests/test_tools/test_wheel_install.py runs the installed command from a wheel."""
import os
import os.path as osp

import pytest
import yaml

from mmseg_tao.cli import COMMANDS, main
from mmseg_tao.utils.configs import config_dir, config_path, list_configs, resolve_config

TOOLS = ('spec2cfg', 'convert-spec', 'check-dataset', 'convert-checkpoint', 'prepare-isbi',
         'demo-data', 'configs')


def test_help_lists_every_command(capsys):
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    assert set(COMMANDS) == {'train', 'evaluate', 'inference', 'export', 'quantize', *TOOLS}
    for name in COMMANDS:
        assert f'\n  {name} ' in out, name


@pytest.mark.parametrize('name', list(COMMANDS))
def test_every_command_has_its_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, '--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f'usage: mmseg-tao {name} ')
    assert '--help' in out


@pytest.mark.parametrize('argv, message', [
    ([], 'a command is required'),
    (['trian', '-e', 'x.yaml'], "unknown command 'trian' (did you mean 'train'?"),
    (['convert_spec'], "did you mean 'convert-spec'?"),
])
def test_no_or_unknown_command_exits_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err


@pytest.mark.parametrize('argv, message', [
    (['train', '-e', 'nope.yaml'], 'nope.yaml: no such file'),
    (['spec2cfg', 'nope.yaml'], 'nope.yaml: no such file'),
    (['convert-spec', 'nope.yaml', '--to', '6'], 'nope.yaml: no such file'),
    (['check-dataset', 'nope.yaml'], 'nope.yaml: no such file'),
    (['convert-checkpoint', 'nope.pth', 'x.pth'], 'nope.pth: no such file'),
    (['prepare-isbi', 'out', '--volume', 'nope.tif', '--labels', 'nope2.tif'],
     'nope.tif: no such file'),
    (['configs', 'nope.py'], 'nope.py: no such file, nor a shipped config'),
])
def test_user_errors_are_one_message_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    """One message (a spec's problems are listed under it), prefixed by the command."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'mmseg-tao {argv[0]}: '), err
    assert message in err and 'Traceback' not in err
    assert os.listdir(tmp_path) == []  # nothing written


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['demo-data', 'out', '--size', '8'])
    assert exit_info.value.code == 2
    assert '--size must be at least 32' in capsys.readouterr().err


def test_demo_data_then_check_dataset(tmp_path, capsys):
    assert main(['demo-data', str(tmp_path), '--kind', 'shapes', '--num-train', '2',
                 '--num-val', '1', '--size', '32']) == 0
    spec = tmp_path / 'shapes' / 'spec.yaml'
    assert sorted(os.listdir(tmp_path / 'shapes' / 'images' / 'train')) == \
        ['train_0000.png', 'train_0001.png']
    assert yaml.safe_load(spec.read_text())['model']['input_height'] == 32
    capsys.readouterr()
    assert main(['check-dataset', str(spec), '--splits', 'train']) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith('dataset OK') and '[val]' not in out


def test_spec2cfg_of_a_shipped_spec_writes_to_the_current_directory(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    shipped = sorted(list_configs())
    assert main(['spec2cfg', 'tao_specs/segformer_isbi.yaml', 'train.max_iters=7']) == 0
    assert sorted(os.listdir(tmp_path)) == ['segformer_isbi.py', 'segformer_isbi_spec.yaml']
    text = (tmp_path / 'segformer_isbi.py').read_text()
    assert "type='mit_b5'" in text and "source: 'tao_specs/segformer_isbi.yaml'" in text
    assert yaml.safe_load((tmp_path / 'segformer_isbi_spec.yaml').read_text())['train'][
        'max_iters'] == 7
    assert sorted(list_configs()) == shipped  # nothing written beside the shipped spec
    assert 'wrote segformer_isbi.py' in capsys.readouterr().out


def test_configs_command_and_lookup(capsys):
    assert main(['configs']) == 0
    out = capsys.readouterr().out
    assert out.startswith(f'shipped configs in {config_dir()}:')
    for name in ('segformer_isbi.py', 'tao_specs/segformer_isbi.yaml',
                 'tao_specs/segformer_isbi_tao6.yaml',
                 'deploy/segmentation_onnxruntime_dynamic.py'):
        assert f'\n  {name}\n' in out
    assert main(['configs', 'segformer_isbi_tao6.yaml']) == 0
    path = capsys.readouterr().out.strip()
    assert path == config_path('tao_specs/segformer_isbi_tao6.yaml') == \
        config_path('configs/tao_specs/segformer_isbi_tao6.yaml')
    assert osp.isfile(path)


def test_resolve_config_prefers_an_existing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config('segformer_isbi.py') == config_path('segformer_isbi.py')
    (tmp_path / 'segformer_isbi.py').write_text('# mine\n')
    assert resolve_config('segformer_isbi.py') == 'segformer_isbi.py'
    assert resolve_config('other.yaml') == 'other.yaml'  # for the caller's own error
