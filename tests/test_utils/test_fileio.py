import os

import pytest

from mmseg_tao.utils import atomic_path, atomic_write


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / 'sub' / 'a.txt'
    atomic_write(str(path), 'first')
    atomic_write(str(path), 'second é')
    assert path.read_text(encoding='utf-8') == 'second é'
    atomic_write(str(path), b'\x00\x01')
    assert path.read_bytes() == b'\x00\x01'
    assert os.listdir(path.parent) == ['a.txt']


def test_failure_keeps_old_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'a.txt'
    path.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp:
            with open(tmp, 'w') as f:
                f.write('half')
            raise RuntimeError('killed mid-write')
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['a.txt']


def test_temporary_is_hidden_in_target_directory(tmp_path):
    path = tmp_path / 'model.pth'
    with atomic_path(str(path), durable=False) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        assert os.path.basename(tmp).startswith('.model.pth.')
        assert not path.exists()
        open(tmp, 'w').close()
    assert path.exists()
