"""Install mmseg-tao: ``pip install -e .`` (see README for the full stack).

A wheel (``pip wheel .``, ``pip install .``) also carries the example configs and TAO specs
of ``configs/`` as ``mmseg_tao/.mim/configs``, as mmsegmentation ships ``mmseg/.mim/configs``;
``mmseg_tao.utils.configs`` finds them there, or in ``configs/`` of a checkout.
"""
import os.path as osp
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
# Where the configs go inside the package (mmseg_tao.utils.configs reads the same path).
MIM_CONFIGS = ('mmseg_tao', '.mim', 'configs')


def read_version() -> str:
    with open(osp.join(HERE, 'mmseg_tao', 'version.py'), encoding='utf-8') as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def parse_requirements(name: str) -> list:
    """Requirement lines of ``requirements/<name>.txt``, ``-r`` includes and
    comments resolved the way pip reads them."""
    reqs = []
    with open(osp.join(HERE, 'requirements', name), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += parse_requirements(line[3:].strip())
            else:
                reqs.append(line)
    return reqs


class BuildPyWithConfigs(build_py):
    """``build_py`` that copies ``configs/`` into the built package as
    ``mmseg_tao/.mim/configs`` (copied at build time rather than kept in the source
    package, so the checkout has one copy). An editable install reads the checkout's
    ``configs/`` directly and copies nothing."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        src = osp.join(HERE, 'configs')
        if not osp.isdir(src):  # an sdist made without MANIFEST.in
            raise FileNotFoundError(f'{src}: the example configs are missing')
        dst = osp.join(self.build_lib, *MIM_CONFIGS)
        if osp.isdir(dst):  # a stale copy from an earlier build
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.py[cod]'))


setup(
    name='mmseg-tao',
    version=read_version(),
    description='NVIDIA TAO SegFormer workflow (specs, backbones, checkpoints, '
    'export) for stock mmsegmentation, mmengine and mmdeploy',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('tests', 'tests.*', 'tools', 'configs')),
    python_requires='>=3.8',
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        # mmcv/mmdeploy need special handling (tools/setup_env.sh); these
        # extras are for environments that already provide them.
        'mim': parse_requirements('mminstall.txt'),
        'deploy': parse_requirements('deploy.txt'),
        'tests': parse_requirements('tests.txt'),
        # The quantize task (nvidia-modelopt, torchao).
        'quantize': parse_requirements('quantize.txt'),
    },
    entry_points={
        'console_scripts': ['mmseg-tao = mmseg_tao.cli:main'],
    },
    cmdclass={'build_py': BuildPyWithConfigs},
    zip_safe=False,
)
