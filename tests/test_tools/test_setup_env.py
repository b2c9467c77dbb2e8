"""tools/setup_env.sh and tools/fill_wheelhouse.sh: arguments, the offline (wheelhouse) pip
sources and the mmcv build environment, through their --dry-run output (nothing installed)."""
import os
import os.path as osp
import shutil
import subprocess
from typing import Dict, List, Optional

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SETUP_ENV = osp.join(REPO, 'tools', 'setup_env.sh')
FILL = osp.join(REPO, 'tools', 'fill_wheelhouse.sh')
# Variables of the scripts that must not leak in from the machine running the tests.
SCRIPT_VARS = ('MMSEG_TAO_VENV', 'MMSEG_TAO_WHEELHOUSE', 'MMCV_WITH_CUDA', 'USE_SYSTEM_TORCH',
               'TORCH_SPEC', 'TORCH_INDEX_URL', 'PYTHON', 'MAX_JOBS')


def run(script: str, *args: str,
        env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARS}
    full_env.update(env or {})
    return subprocess.run(['bash', script, *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=60)


def line(out: str, prefix: str) -> str:
    found = [ln for ln in out.splitlines() if ln.startswith(prefix)]
    assert len(found) == 1, (prefix, out)
    return found[0]


def build_env(out: str, cuda: str) -> List[str]:
    """The VAR=value words of the mmcv build for cuda=0|1 in a --dry-run output."""
    return line(out, f'mmcv build env (cuda={cuda}').split(': ', 1)[1].split()


# setup_env.sh

def test_help_documents_the_offline_install():
    proc = run(SETUP_ENV, '--help')
    assert proc.returncode == 0, proc.stderr
    for word in ('--wheelhouse DIR', '--no-index', 'fill_wheelhouse.sh', '--dry-run',
                 'USE_SYSTEM_TORCH=1', '.pth', 'MMCV_WITH_CUDA=0|1', 'MMSEG_TAO_WHEELHOUSE'):
        assert word in proc.stdout, word
    assert 'set -E' not in proc.stdout  # the comment block only


@pytest.mark.parametrize('args, message', [
    (['--bogus'], "unknown argument '--bogus'"),
    (['--venv'], '--venv needs a directory'),
    (['--wheelhouse'], '--wheelhouse needs a directory'),
    (['--wheelhouse', '/nonexistent/wheels'],
     "wheelhouse '/nonexistent/wheels' is not a directory"),
])
def test_bad_arguments_exit_2_before_doing_anything(tmp_path, args, message):
    venv = tmp_path / 'venv'
    proc = run(SETUP_ENV, '--venv', str(venv), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert 'usage: setup_env.sh' in proc.stderr
    assert not venv.exists()


def test_online_path_uses_the_index(tmp_path):
    proc = run(SETUP_ENV, '--dry-run', '--venv', str(tmp_path / 'v'))
    assert proc.returncode == 0, proc.stderr
    assert line(proc.stdout, 'venv: ') == f'venv: {tmp_path / "v"}'
    sources = line(proc.stdout, 'pip install sources: ')
    assert '--no-index' not in sources and '--find-links' not in sources
    assert 'wheelhouse' not in proc.stdout
    assert not (tmp_path / 'v').exists()


@pytest.mark.parametrize('how', ['option', 'environment'])
def test_wheelhouse_means_no_index_and_only_that_directory(tmp_path, how):
    wheels = tmp_path / 'wheels'
    (wheels / 'mmcv-2.1.0' / 'torch2.14.1+cu130-cp311-cuda0').mkdir(parents=True)
    (wheels / 'mmcv-2.1.0' / 'torch2.14.1+cu130-cp311-cuda0' /
     'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'')
    (wheels / 'mmcv-2.1.0.tar.gz').write_bytes(b'')
    (wheels / 'numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl').write_bytes(b'')
    if how == 'option':
        proc = run(SETUP_ENV, '--dry-run', '--wheelhouse', str(wheels))
    else:
        proc = run(SETUP_ENV, '--dry-run', env={'MMSEG_TAO_WHEELHOUSE': str(wheels)})
    assert proc.returncode == 0, proc.stderr
    assert line(proc.stdout, 'pip install sources: ') == \
        f'pip install sources: --no-index --find-links {wheels}'
    assert line(proc.stdout, 'wheelhouse: ') == 'wheelhouse: 1 wheels; torch: none'
    mmcv = line(proc.stdout, 'mmcv: ')
    assert 'prebuilt wheels for torch2.14.1+cu130-cp311-cuda0' in mmcv
    assert 'sdist: mmcv-2.1.0.tar.gz' in mmcv


def test_cpu_only_mmcv_build_hides_the_gpu():
    # mmcv 2.1.0's setup.py builds the CUDA ops whenever torch sees a GPU, whatever
    # FORCE_CUDA says: MMCV_WITH_CUDA=0 must hide the GPU from the build.
    proc = run(SETUP_ENV, '--dry-run', env={'MMCV_WITH_CUDA': '0', 'MAX_JOBS': '3'})
    assert proc.returncode == 0, proc.stderr
    words = build_env(proc.stdout, '0')
    assert 'CUDA_VISIBLE_DEVICES=' in words
    assert 'FORCE_CUDA=0' in words
    assert 'MMCV_WITH_OPS=1' in words and 'MAX_JOBS=3' in words
    assert not any(w.startswith('PYTORCH_NVCC=') for w in words)
    assert 'mmcv build env (cuda=1' not in proc.stdout


def test_cuda_mmcv_build_keeps_the_gpu():
    proc = run(SETUP_ENV, '--dry-run', env={'MMCV_WITH_CUDA': '1'})
    assert proc.returncode == 0, proc.stderr
    words = build_env(proc.stdout, '1')
    assert 'FORCE_CUDA=1' in words
    assert any(w.startswith('PYTORCH_NVCC=') and w.endswith('/bin/nvcc') for w in words)
    assert not any(w.startswith('CUDA_VISIBLE_DEVICES') for w in words)
    assert 'mmcv build env (cuda=0' not in proc.stdout


def test_automatic_cuda_choice_shows_both_build_environments():
    proc = run(SETUP_ENV, '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert 'CUDA_VISIBLE_DEVICES=' in build_env(proc.stdout, '0')
    assert 'CUDA_VISIBLE_DEVICES=' not in build_env(proc.stdout, '1')


# fill_wheelhouse.sh

def test_fill_help_and_bad_arguments(tmp_path):
    proc = run(FILL, '--help')
    assert proc.returncode == 0, proc.stderr
    for word in ('--python-version', '--platform', '--with-torch', 'setup_env.sh --wheelhouse',
                 'timm', 'TORCH_SPEC', '--no-deps'):
        assert word in proc.stdout, word
    for args, message in ((['--bogus'], "unknown argument '--bogus'"),
                          ([], 'missing DIR'),
                          ([str(tmp_path), str(tmp_path / 'b')], 'unexpected argument'),
                          ([str(tmp_path), '--python-version', '312'], 'must look like 3.12'),
                          ([str(tmp_path), '--platform'], '--platform needs a value')):
        proc = run(FILL, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)


def test_fill_dry_run_leaves_torch_out_unless_asked(tmp_path):
    wheels = tmp_path / 'wheels'
    proc = run(FILL, str(wheels), '--python-version', '3.12', '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert line(proc.stdout, 'target: ') == \
        f'target: python 3.12 (cp312), platforms manylinux_2_28_{os.uname().machine}'
    together = line(proc.stdout, 'resolved together: ')
    for req in ('requirements/build.txt', 'requirements/runtime.txt', 'requirements/tests.txt',
                'mmengine==0.10.7', 'mmsegmentation==1.2.2', "mmcv 2.1.0's runtime"):
        assert req in together, req
    assert line(proc.stdout, 'without dependencies: ') == 'without dependencies: mmdeploy==1.3.1'
    assert line(proc.stdout, 'torch: ').startswith(
        'torch: not downloaded (placeholders torch==2.14.1')
    assert 'cp312-cuda' in line(proc.stdout, 'mmcv wheels from: ')
    assert not wheels.exists()

    proc = run(FILL, str(wheels), '--python-version', '3.12', '--dry-run', '--with-torch',
               env={'TORCH_SPEC': 'torch==2.9.1 torchvision==0.24.1',
                    'TORCH_INDEX_URL': 'https://download.pytorch.org/whl/cu126'})
    assert proc.returncode == 0, proc.stderr
    assert line(proc.stdout, 'torch: ') == (
        'torch: torch==2.9.1 torchvision==0.24.1 from https://download.pytorch.org/whl/cu126, '
        'with dependencies')

    proc = run(FILL, str(wheels), '--python-version', '3.12', '--dry-run',
               env={'TORCH_SPEC': 'torch torchvision'})
    assert proc.returncode == 2
    assert 'TORCH_SPEC must pin' in proc.stderr


def test_fill_expands_manylinux_to_older_glibc_levels(tmp_path):
    proc = run(FILL, str(tmp_path), '--python-version', '3.10', '--dry-run',
               '--platform', 'manylinux_2_17_aarch64')
    assert proc.returncode == 0, proc.stderr
    tags = line(proc.stdout, 'platform tags: ').split(': ', 1)[1].split()
    assert tags[0] == 'manylinux_2_17_aarch64'
    for tag in ('manylinux2014_aarch64', 'manylinux_2_12_aarch64', 'manylinux1_aarch64',
                'linux_aarch64'):
        assert tag in tags, tag
    assert 'manylinux_2_18_aarch64' not in tags
    assert not any('x86_64' in t for t in tags)


# tools/lib/env_common.sh and requirements/pins.txt, shared by both scripts

def pins() -> Dict[str, str]:
    with open(osp.join(REPO, 'requirements', 'pins.txt'), encoding='utf-8') as f:
        return dict(ln.strip().split('==') for ln in f if ln.strip() and ln[0] != '#')


@pytest.mark.parametrize('script', [SETUP_ENV, FILL])
def test_help_ends_with_the_pins(script):
    proc = run(script, '--help')
    assert proc.returncode == 0, proc.stderr
    listed = line(proc.stdout, 'Pinned versions (requirements/pins.txt): ')
    assert listed.split(': ', 1)[1].split() == [f'{k}=={v}' for k, v in pins().items()]


def test_pins_come_from_one_file(tmp_path):
    """A copy of the scripts with other pins installs the other versions, whichever script."""
    shutil.copytree(osp.join(REPO, 'tools'), tmp_path / 'tools')
    shutil.copytree(osp.join(REPO, 'requirements'), tmp_path / 'requirements')
    text = (tmp_path / 'requirements' / 'pins.txt').read_text()
    for name, version in pins().items():
        text = text.replace(f'{name}=={version}\n', f'{name}==9.{len(name)}.0\n')
    (tmp_path / 'requirements' / 'pins.txt').write_text(text)
    proc = run(str(tmp_path / 'tools' / 'fill_wheelhouse.sh'), str(tmp_path / 'w'),
               '--dry-run')
    assert proc.returncode == 0, proc.stderr
    together = line(proc.stdout, 'resolved together: ')
    assert 'mmengine==9.8.0' in together and 'mmsegmentation==9.14.0' in together
    assert "mmcv 9.4.0's runtime" in together
    assert line(proc.stdout, 'without dependencies: ') == 'without dependencies: mmdeploy==9.8.0'
    assert line(proc.stdout, 'torch: ').startswith(
        'torch: not downloaded (placeholders torch==9.5.0 torchvision==9.11.0')
    assert '/mmcv-9.4.0/' in line(proc.stdout, 'mmcv wheels from: ')
    wheels = tmp_path / 'wheels'
    (wheels / 'mmcv-9.4.0' / 'torch9.5.0-cp311-cuda0').mkdir(parents=True)
    (wheels / 'mmcv-9.4.0' / 'torch9.5.0-cp311-cuda0' / 'mmcv-9.4.0-cp311-x.whl').write_bytes(b'')
    proc = run(str(tmp_path / 'tools' / 'setup_env.sh'), '--dry-run', '--wheelhouse', str(wheels))
    assert proc.returncode == 0, proc.stderr
    assert 'prebuilt wheels for torch9.5.0-cp311-cuda0' in line(proc.stdout, 'mmcv: ')


STEPS = '''set -Eeuo pipefail
SCRIPT=demo.sh
source "{lib}"
FAIL_HINT="nothing was changed"
steps_begin
ok() {{ echo "hidden output"; note "did it"; }}
bad() {{ echo "why it failed"; return 3; }}
run_step "first step" ok
run_step "second step" bad
echo "not reached"
'''


def test_step_runner_shows_a_failing_steps_log_and_stops(tmp_path):
    script = tmp_path / 'demo.sh'
    script.write_text(STEPS.format(lib=osp.join(REPO, 'tools', 'lib', 'env_common.sh')))
    proc = subprocess.run(['bash', str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, 'TMPDIR': str(tmp_path)})
    assert proc.returncode == 3
    first = line(proc.stdout, '==> first step')
    assert first.split()[-2:] == ['did', 'it'] and first.split()[-3].endswith('s')
    assert 'hidden output' not in proc.stdout + proc.stderr
    assert 'not reached' not in proc.stdout
    assert "demo.sh: FAILED at step 'second step' (exit 3)." in proc.stderr
    assert 'why it failed' in proc.stderr and proc.stderr.rstrip().endswith('nothing was changed')
    kept = [p.name for p in tmp_path.iterdir() if p.name.startswith('mmseg-tao-step.')]
    assert len(kept) == 1  # the failing step's log is kept (its path is printed)
