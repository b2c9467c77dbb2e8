"""The package as a user gets it: an sdist (MANIFEST.in) built into a wheel, installed in a
fresh venv outside the checkout, and every ``mmseg-tao`` command run from there, with the
shipped configs found inside the installed package.

The new venv has none of the heavy dependencies itself: a ``.pth`` file names this venv's
site-packages (as tools/setup_env.sh does for USE_SYSTEM_TORCH=1), and the wheel goes in
with ``--no-deps``. That ``.pth`` line adds the directory without running its own ``.pth``
files, so the checkout's editable install stays out of the new venv.
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import tarfile

import pytest
import torch
import yaml

from mmseg_tao.cli import COMMANDS

pytestmark = pytest.mark.slow  # builds and installs a wheel, then ~12 commands in processes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# What setup.py needs to build the package; everything else in the checkout stays out.
SOURCES = ('setup.py', 'MANIFEST.in', 'README.md', 'requirements.txt', 'requirements',
           'configs', 'mmseg_tao')
# The checkout's commands (test_cli pins that list): the installed wheel must have each.
SUBCOMMANDS = tuple(COMMANDS)
# Run by the new venv's python: where the package is, and every command's --help.
PROBE = '''
import contextlib, io, json, sys
import mmseg_tao
from mmseg_tao.cli import COMMANDS, main
from mmseg_tao.utils.configs import config_dir
helps = {}
for name in COMMANDS:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([name, '--help'])
        except SystemExit as done:
            assert done.code == 0, (name, done.code)
    helps[name] = out.getvalue()
print(json.dumps(dict(file=mmseg_tao.__file__, configs=config_dir(), helps=helps,
                      path=sys.path)))
'''


def files_under(root: str) -> set:
    return {osp.relpath(osp.join(d, n), root) for d, _, names in os.walk(root) for n in names
            if '__pycache__' not in d}


def run(cmd, cwd, env, ok=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, (cmd, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def build_wheel(tmp_path, env) -> str:
    """sdist from a clean copy of the sources, then a wheel from that sdist."""
    src = tmp_path / 'src'
    for name in SOURCES:
        from_ = osp.join(REPO, name)
        if osp.isdir(from_):
            shutil.copytree(from_, src / name,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '.mim'))
        else:
            os.makedirs(src, exist_ok=True)
            shutil.copy(from_, src / name)
    run([sys.executable, 'setup.py', '-q', 'sdist', '-d', tmp_path / 'dist'], src, env)
    (sdist, ) = (tmp_path / 'dist').iterdir()
    with tarfile.open(sdist) as tar:
        names = {n.split('/', 1)[1] for n in tar.getnames() if '/' in n}
    assert {'configs/tao_specs/segformer_isbi.yaml', 'configs/segformer_isbi.py',
            'requirements/runtime.txt', 'README.md', 'MANIFEST.in'} <= names
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
         '-w', tmp_path / 'wheels', sdist], tmp_path, env)
    (wheel, ) = (tmp_path / 'wheels').iterdir()
    return str(wheel)


def make_venv(tmp_path, env) -> str:
    """A venv of this venv's base Python that sees this venv's packages through a .pth."""
    venv = tmp_path / 'venv'
    base = getattr(sys, '_base_executable', None) or osp.join(sys.base_prefix, 'bin', 'python3')
    run([base, '-m', 'venv', '--without-pip', venv], tmp_path, env)
    site = run([venv / 'bin' / 'python', '-c',
                'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
               tmp_path, env).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ('purelib', 'platlib'))
    with open(osp.join(site, 'main_venv.pth'), 'w', encoding='utf-8') as f:
        f.write(''.join(f'{d}\n' for d in ours))
    return str(venv)


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('wheel')
    assert not str(tmp_path).startswith(REPO + os.sep)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    wheel = build_wheel(tmp_path, env)
    venv = make_venv(tmp_path, env)
    # pip comes from this venv through the .pth; it installs into the new one (sys.prefix).
    run([osp.join(venv, 'bin', 'python'), '-m', 'pip', 'install', '--no-deps', '--no-index',
         '-q', wheel], tmp_path, env)
    env['PATH'] = osp.join(venv, 'bin') + os.pathsep + env.get('PATH', '')
    work = tmp_path / 'work'
    work.mkdir()
    return dict(venv=venv, env=env, work=work, wheel=wheel)


def tao(installed, *args, ok=True) -> subprocess.CompletedProcess:
    """``mmseg-tao ARGS`` (the new venv's console script) in the work dir."""
    return run([osp.join(installed['venv'], 'bin', 'mmseg-tao'), *args], installed['work'],
               installed['env'], ok=ok)


def test_the_package_comes_from_the_new_venv_with_every_command(installed):
    venv = installed['venv']
    probe = json.loads(run([osp.join(venv, 'bin', 'python'), '-c', PROBE], installed['work'],
                           installed['env']).stdout.strip().splitlines()[-1])
    assert probe['file'].startswith(venv + os.sep), probe['file']
    assert not probe['file'].startswith(REPO + os.sep)
    assert probe['configs'] == osp.join(osp.dirname(probe['file']), '.mim', 'configs')
    assert REPO not in probe['path'] and '' not in probe['path'][1:]
    assert sorted(probe['helps']) == sorted(SUBCOMMANDS)
    for name, text in probe['helps'].items():
        assert text.startswith(f'usage: mmseg-tao {name} '), (name, text[:200])
    # The console script itself, and no tools/ or tests/ in the installed package.
    out = tao(installed, '--help').stdout
    for name in SUBCOMMANDS:
        assert f'\n  {name} ' in out, name
    site = osp.dirname(osp.dirname(probe['file']))
    assert not {'tools', 'tests', 'configs'} & set(os.listdir(site))
    out = tao(installed, 'configs').stdout
    assert out.startswith(f'shipped configs in {probe["configs"]}:')
    assert '\n  tao_specs/segformer_isbi.yaml\n' in out and '\n  segformer_isbi.py\n' in out
    assert tao(installed, 'configs', 'segformer_isbi_tao6.yaml').stdout.strip() == \
        osp.join(probe['configs'], 'tao_specs', 'segformer_isbi_tao6.yaml')


def test_data_and_spec_commands_outside_the_checkout(installed):
    work = installed['work']
    # demo-data: TAO's folders and a spec with absolute paths
    out = tao(installed, 'demo-data', 'demo', '--num-train', '2', '--num-val', '1',
              '--size', '32').stdout
    assert 'done: 2 kind(s), 6 images' in out
    for kind in ('membranes', 'shapes'):
        assert sorted(os.listdir(work / 'demo' / kind / 'masks' / 'val')) == ['val_0000.png']
        spec = yaml.safe_load((work / 'demo' / kind / 'spec.yaml').read_text())
        assert spec['dataset']['train_dataset']['img_dir'] == \
            [str(work / 'demo' / kind / 'images' / 'train')]
    # prepare-isbi: the data the shipped ISBI spec and config read (data/isbi, relative)
    tao(installed, 'prepare-isbi', 'data/isbi', '--num-train', '2', '--num-val', '1',
        '--size', '64')
    assert len(os.listdir(work / 'data' / 'isbi' / 'images' / 'train')) == 2
    # spec2cfg on a shipped spec: -o, and the default (the current directory)
    assert tao(installed, 'spec2cfg', 'tao_specs/segformer_isbi.yaml', '-o', 'cfgs/isbi.py',
               'train.max_iters=5').stdout.strip() == 'wrote cfgs/isbi.py'
    text = (work / 'cfgs' / 'isbi.py').read_text()
    assert "custom_imports = dict(imports=['mmseg_tao']" in text and "type='mit_b5'" in text
    assert yaml.safe_load((work / 'cfgs' / 'isbi_spec.yaml').read_text())['train'][
        'max_iters'] == 5
    tao(installed, 'spec2cfg', 'segformer_isbi_tao6.yaml')
    assert (work / 'segformer_isbi_tao6.py').is_file()
    # convert-spec: TAO 5 -> 6 of a shipped spec (epochs from the 2 images of data/isbi)
    proc = tao(installed, 'convert-spec', 'tao_specs/segformer_isbi.yaml', '--to', '6')
    converted = yaml.safe_load((work / 'segformer_isbi_tao6.yaml').read_text())
    assert converted['dataset']['segment']['root_dir'] == 'data/isbi'
    assert converted['train']['num_epochs'] == 1000  # 1000 iterations of 1 batch per epoch
    assert 'no TAO 6 counterpart' in proc.stderr
    # check-dataset: a demo spec, and a config written by spec2cfg
    assert tao(installed, 'check-dataset', 'demo/shapes/spec.yaml').stdout.rstrip().endswith(
        'dataset OK')
    assert tao(installed, 'check-dataset', 'cfgs/isbi.py').stdout.rstrip().endswith(
        'dataset OK')
    # nothing was written into the installed package
    (mim, ) = glob.glob(osp.join(installed['venv'], 'lib', 'python*', 'site-packages',
                                 'mmseg_tao', '.mim', 'configs'))
    assert files_under(mim) == files_under(osp.join(REPO, 'configs'))


def test_convert_checkpoint_and_user_errors(installed):
    from mmseg.registry import MODELS
    work = installed['work']
    mit = MODELS.build(dict(type='MixVisionTransformer', embed_dims=32, num_heads=[1, 2, 5, 8],
                            num_layers=[2, 2, 2, 2]))
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in mit.state_dict().items()}},
               work / 'mmseg_mit.pth')
    out = tao(installed, 'convert-checkpoint', 'mmseg_mit.pth', 'ckpt/tao.pth').stdout
    assert "recognised layout 'mmseg-mit'" in out
    converted = torch.load(work / 'ckpt' / 'tao.pth', weights_only=True)
    assert converted['meta']['converted_from'] == 'mmseg-mit'
    assert any(k.startswith('backbone.block1.0.attn.kv.') for k in converted['state_dict'])
    assert not [n for n in os.listdir(work / 'ckpt') if n.startswith('.')]  # no temporary
    # a user's mistake: one message, exit 2, no traceback
    proc = tao(installed, 'train', '-e', 'nope.yaml', ok=False)
    assert proc.returncode == 2 and 'nope.yaml: no such file' in proc.stderr
    assert 'Traceback' not in proc.stderr
    proc = tao(installed, 'convert-checkpoint', 'nope.pth', 'x.pth', ok=False)
    assert proc.returncode == 2
    assert proc.stderr == 'mmseg-tao convert-checkpoint: nope.pth: no such file\n'
