import os.path as osp

import pytest

DATA_DIR = osp.join(osp.dirname(__file__), 'data')


@pytest.fixture(scope='session')
def data_dir() -> str:
    return DATA_DIR


@pytest.fixture(scope='session')
def tiny_segformer_cfg_path() -> str:
    return osp.join(DATA_DIR, 'configs', 'tiny_segformer.py')


@pytest.fixture(autouse=True)
def mmseg_default_scope():
    """Build from mmseg's registries even after a test ran an mmengine Runner (which
    leaves its own default scope current)."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
