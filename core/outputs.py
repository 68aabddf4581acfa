"""Files the CLI writes (model files, JSON, CSV, PNG maps): checked before the work starts,
written atomically with the user's umask, and every write failure becomes one UserError line.

A failed write never touches an existing file: data goes to a temp file in the same folder
that replaces the target only once it is complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.atomic import atomic_write
from core.errors import UserError


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def _probe(folder: Path, what: str) -> None:
    """UserError unless a file can be created in ``folder``."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".lsfa-write-check.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UserError(f"{folder}: cannot write the {what} there ({_reason(exc)})") from None


def _make_folder(folder: Path, path: Path, what: str) -> None:
    """Create ``folder`` (for ``path``), with one UserError line when an existing ancestor is a
    file or the folder cannot be made."""
    for anc in (folder, *folder.parents):
        if anc.exists():
            if not anc.is_dir():
                raise UserError(f"{path}: cannot write the {what}: {anc} is not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the folder for the {what} ({_reason(exc)})") from None


def check_output_file(path: str | Path, what: str = "output file") -> None:
    """Before any work: UserError unless ``path`` can be written (its folder exists or can be
    made, is a folder, is writable; the path itself is not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name for the {what}")
    _make_folder(path.parent, path, what)
    _probe(path.parent, what)


def check_output_dir(path: str | Path, what: str = "output folder") -> None:
    """Before any work: make ``path`` (a folder) and check that files can be written in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a folder; cannot write the {what}")
    _make_folder(path, path, what)
    _probe(path, what)


def write_output(path: str | Path, data: bytes, what: str = "output file") -> None:
    """:func:`core.atomic.atomic_write` (flushed to disk), with a write failure (disk full, file-size limit, read-only
    folder) turned into one UserError line; an existing file at ``path`` stays as it was."""
    try:
        atomic_write(path, data, fsync=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the {what} ({_reason(exc)}); nothing was changed") from None


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A CSV cell that spreadsheets will not run as a formula: text starting with = + - @
    (or tab/CR) gets a leading apostrophe. Numbers are left alone."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value
