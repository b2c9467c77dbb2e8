"""Install mmseg-tao: ``pip install -e .`` (see README for the full stack)."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


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
    },
    entry_points={
        'console_scripts': ['mmseg-tao = mmseg_tao.cli:main'],
    },
    zip_safe=False,
)
