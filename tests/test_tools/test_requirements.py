"""The version ranges in requirements/*.txt: the installed packages are inside them, the
packages whose internals we use have an upper bound, and the versions that the set-up scripts
install (requirements/pins.txt, written nowhere else) fall inside the declared ranges."""
import importlib.metadata as md
import os.path as osp
import re
from typing import Dict, List, Tuple

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
REQ_DIR = osp.join(ROOT, 'requirements')
FILES = ('build.txt', 'runtime.txt', 'mminstall.txt', 'deploy.txt', 'tests.txt',
         'quantize.txt')
# mmseg_tao uses their internals (compat patches, timm's ConvNeXtStage, mmdeploy's rewriter):
# a new minor (major for mmengine's 0.x: minor) release may break them.
NEEDS_UPPER_BOUND = ('timm', 'mmcv', 'mmengine', 'mmsegmentation', 'mmdeploy', 'ruff',
                     'nvidia-modelopt', 'torchao')


def read_requirements(path: str) -> List[Requirement]:
    """The requirements of a file as pip reads them (comments, ``-r`` includes)."""
    reqs = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += read_requirements(osp.join(osp.dirname(path), line[3:].strip()))
            else:
                reqs.append(Requirement(line))
    return reqs


def all_requirements() -> List[Tuple[str, Requirement]]:
    return [(name, req) for name in FILES
            for req in read_requirements(osp.join(REQ_DIR, name))
            if req.marker is None or req.marker.evaluate()]


def by_name(reqs) -> Dict[str, Requirement]:
    return {canonicalize_name(req.name): req for _, req in reqs}


@pytest.mark.parametrize('source,req', all_requirements(),
                         ids=[f'{s}:{r.name}' for s, r in all_requirements()])
def test_installed_version_is_in_declared_range(source, req):
    try:
        installed = md.version(req.name)
    except md.PackageNotFoundError:
        pytest.fail(f'{req} (requirements/{source}) is not installed: run tools/setup_env.sh')
    assert req.specifier.contains(installed, prereleases=True), (
        f'{req.name} {installed} is installed, outside the range {req.specifier} of '
        f'requirements/{source}: update the range (and its reason) or the environment')


def test_top_level_requirements_txt_reads_the_split_files():
    top = {str(r) for r in read_requirements(osp.join(ROOT, 'requirements.txt'))}
    for name in ('runtime.txt', 'deploy.txt', 'tests.txt', 'quantize.txt'):
        assert {str(r) for r in read_requirements(osp.join(REQ_DIR, name))} <= top, name


def test_packages_whose_internals_we_use_have_an_upper_bound():
    reqs = by_name(all_requirements())
    for name in NEEDS_UPPER_BOUND:
        assert name in reqs, f'{name} is not declared in requirements/'
        ops = {spec.operator for spec in reqs[name].specifier}
        assert ops & {'<', '<=', '==', '~=', '==='}, (
            f'{reqs[name]}: no upper bound, though mmseg_tao depends on its internals')


def pinned_versions() -> Dict[str, str]:
    """requirements/pins.txt: name -> the exact version the set-up scripts install."""
    pins = {}
    for req in read_requirements(osp.join(REQ_DIR, 'pins.txt')):
        (spec, ) = req.specifier
        assert spec.operator == '==', f'{req}: pins.txt holds exact versions only'
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_setup_scripts_install_versions_inside_mminstall_ranges():
    """The pins of the OpenMMLab packages lie inside the ranges the package declares."""
    pins = pinned_versions()
    assert {'torch', 'torchvision', 'mmcv', 'mmengine', 'mmsegmentation', 'mmdeploy'} <= \
        set(pins), pins
    ranges = by_name((('mminstall.txt', r) for r in
                      read_requirements(osp.join(REQ_DIR, 'mminstall.txt'))))
    ranges.update(by_name((('deploy.txt', r) for r in
                           read_requirements(osp.join(REQ_DIR, 'deploy.txt')))))
    for name in ('mmcv', 'mmengine', 'mmsegmentation', 'mmdeploy'):
        assert ranges[name].specifier.contains(pins[name], prereleases=True), (
            f'requirements/pins.txt installs {name}=={pins[name]}, outside the range '
            f'{ranges[name]} of requirements/')


def test_quantize_pins_inside_quantize_ranges():
    """The quantize task's pins lie inside requirements/quantize.txt, and ModelOpt's
    setuptools>=80 meets requirements/build.txt's range (mmcv's build needs < 81)."""
    pins = pinned_versions()
    ranges = by_name((('quantize.txt', r) for r in
                      read_requirements(osp.join(REQ_DIR, 'quantize.txt'))))
    for name in ('nvidia-modelopt', 'torchao', 'requests'):
        assert ranges[name].specifier.contains(pins[name], prereleases=True), (
            f'requirements/pins.txt installs {name}=={pins[name]}, outside {ranges[name]}')
    build = by_name((('build.txt', r) for r in
                     read_requirements(osp.join(REQ_DIR, 'build.txt'))))['setuptools']
    assert build.specifier.contains('80.9.0') and not build.specifier.contains('79.0.0'), build
    assert not build.specifier.contains('81.0.0'), build


@pytest.mark.parametrize('script', ['setup_env.sh', 'fill_wheelhouse.sh',
                                    'test_offline_install.sh', 'lib/env_common.sh'])
def test_pinned_versions_are_written_once(script):
    """The set-up scripts take every pinned version from requirements/pins.txt (through
    tools/lib/env_common.sh): none is written in a script, nor the cache path."""
    with open(osp.join(ROOT, 'tools', script), encoding='utf-8') as f:
        code = ''.join(line for line in f if not line.lstrip().startswith('#'))
    for name, version in pinned_versions().items():
        assert not re.search(rf'{re.escape(name)}[=-]+{re.escape(version)}\b', code), \
            (script, name, version)
        assert not re.search(rf'(?<![\w.]){re.escape(version)}(?![\w.])', code), \
            (script, version)
    cache_path = re.search(r'\.cache\}?/mmseg-tao', code)  # the default of MMSEG_TAO_CACHE_DIR
    assert bool(cache_path) == (script == 'lib/env_common.sh'), script
