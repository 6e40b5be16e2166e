"""Writing files so that a crash or a kill never leaves a half-written one behind: the one atomic writer.

Every writer here fills a temporary file beside the target (same folder, so the same file system),
flushes it to disk (``fsync``), gives it mode `FILE_MODE` and renames it over the target (``os.replace``
is atomic on POSIX and Windows); the folder is then fsynced so the rename itself survives a crash. A
reader sees the old file or the new one, never a part. On any error the temporary file is removed and
the target is left as it was.

- `write_text_atomic(path, text)` / `write_bytes_atomic(path, data)`: a whole file at once;
- `open_atomic(path)`: a text handle to write in pieces (large exports streamed as they are produced);
- `atomic_path(path)`: a temporary path for libraries that write to a path themselves (Parquet, PNG).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

FILE_MODE = 0o644
"""Mode of every file written here: the owner writes, everyone reads (as a plain `open` under umask 022)."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; it replaces `path` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def open_atomic(path: str | Path, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text handle on a temporary file beside `path`; it replaces `path` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with open_atomic(path) as handle:
        handle.write(text)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _publish(tmp: Path, path: Path) -> None:
    """Give the finished temporary file its mode, rename it over `path`, and make the rename durable."""
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a folder cannot be opened on some platforms (Windows): the rename is already done
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["FILE_MODE", "atomic_path", "open_atomic", "write_bytes_atomic", "write_text_atomic"]
