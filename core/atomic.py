"""Atomic file writes: the data goes to a temp file in the target's folder, which replaces the
target (``os.replace``) only once it is complete; on any error the temp file is removed and an
existing target stays as it was. The one implementation used by model files, caches and exports.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_target", "atomic_write", "current_umask"]


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """Yield a temp file path (already created, empty) beside ``path``; write it inside the
    ``with`` block. It replaces ``path`` when the block ends without error, else is removed.
    The folder of ``path`` is created if needed. The result gets the mode of the file it
    replaces, else 0666 minus the umask (mkstemp's own 0600 is not kept)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; ``fsync``: flush it to the disk before the rename
    (model files, whose loss would cost a fit)."""
    with atomic_target(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
