"""Writing files so that a crash or a kill never leaves a half-written one behind.

Files are written to a temporary file beside the target, fsynced and renamed over it. The temporary file
(`mkstemp` makes it 0600) is given the mode an ordinary `open()` would: 0666 less the umask (0644 usually),
so design.json, run.json and exported configs are readable by the tools and people they are for.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_chunks_atomic(path: Path, chunks: Iterable[str]) -> tuple[int, int]:
    """Write text chunks to a temporary file beside `path`, fsync, rename; returns (bytes, lines)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    size = lines = 0
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
                size += len(chunk.encode("utf-8"))
                lines += chunk.count("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size, lines


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    write_chunks_atomic(path, (text,))
