"""Files that appear whole or not at all.

Every file mmseg-tao writes for a user (configs, specs, checkpoints, masks, status
lines' targets) goes through :func:`atomic_path`: the content is written to a hidden
temporary file in the target's directory, flushed to disk and renamed over the target.
A process killed at any moment leaves the old file or the new one, never half of one,
and a failure leaves no temporary file behind.
"""
import os
import os.path as osp
import tempfile
from contextlib import contextmanager
from typing import Iterator, Union


def fsync_dir(path: str) -> None:
    """Flush a directory entry (a rename) to disk; a no-op where directories can't be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_file(path: str) -> None:
    """Flush a file's content to disk."""
    with open(path, 'rb+') as f:
        os.fsync(f.fileno())


def replace(src: str, dst: str, durable: bool = True) -> None:
    """Rename ``src`` over ``dst`` (same file system); with ``durable``, the content and the
    rename are flushed to disk first and after."""
    if durable:
        fsync_file(src)
    os.replace(src, dst)
    if durable:
        fsync_dir(osp.dirname(osp.abspath(dst)))


@contextmanager
def atomic_path(path: str, durable: bool = True) -> Iterator[str]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` when the
    block ends without an exception, removed when it raises.

    Args:
        path: The file to (re)write. Its directory is created if missing.
        durable: Flush the content and the rename to disk (off for many small files
            where a crash may lose the newest but must not leave half of one).

    Example:
        >>> with atomic_path('model.pth') as tmp:
        ...     torch.save(state, tmp)
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.partial',
                               dir=directory)
    os.close(fd)
    try:
        yield tmp
        replace(tmp, path, durable)
    finally:
        if osp.lexists(tmp):
            os.remove(tmp)


def atomic_write(path: str, content: Union[str, bytes], durable: bool = True) -> None:
    """Write ``content`` (text as UTF-8, or bytes) to ``path`` whole or not at all."""
    with atomic_path(path, durable) as tmp:
        if isinstance(content, bytes):
            with open(tmp, 'wb') as f:
                f.write(content)
        else:
            with open(tmp, 'w', encoding='utf-8') as f:
                f.write(content)
