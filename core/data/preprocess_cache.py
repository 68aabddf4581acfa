"""The preprocessing cache: each cloud's kept-pixel mask (background plane and stray clusters
removed, :func:`core.data.preprocess.foreground_mask`) stored under a SHA-256 of the cloud's
content and the parameters that decide it, so that fitting, evaluating and re-opening the same
files skips the RANSAC and the clustering (~30 ms per 400×400 cloud).

Each entry is one ``<key>.npz`` (the mask bit-packed: ~20 KB at 400×400, ~60 KB at 800×600). A
line that scores every new part writes one per part, so the folder is bounded: when its entries
pass :func:`max_bytes` (``$LSFA_CACHE_MAX_MB``, default 1024 MB) the least recently used go
(a hit refreshes an entry's time) until they take 80 % of it. The folder is measured at a process's
first write to it and every :data:`PRUNE_EVERY` writes after. A read-only, full or missing folder,
an unusable entry, or another process pruning the same folder never stops preprocessing: the mask
is then computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from pathlib import Path

import numpy as np

from core.atomic import atomic_target
from core.errors import UserError

CACHE_VERSION = "lsfa-preprocess-v1"
DEFAULT_MAX_MB = 1024
MAX_MB_VARIABLE = "LSFA_CACHE_MAX_MB"
PRUNE_EVERY = 256  # writes to one folder between two measurements of it
KEEP_FRACTION = 0.8  # pruning leaves the entries at this share of the limit
log = logging.getLogger(__name__)

_writes: dict[Path, int] = {}  # per folder: writes by this process since its last measurement
_lock = threading.Lock()
_warned: set[str] = set()


def _warn_once(key: str, message: str, *args) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def cache_key(xyz: np.ndarray, fields: dict) -> str:
    """SHA-256 (40 hex digits) of the xyz content (shape, dtype, bytes) and ``fields``, the
    preprocessing parameters that change which points are kept."""
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(json.dumps(fields, sort_keys=True).encode())
    arr = np.ascontiguousarray(xyz, dtype=np.float32)
    h.update(str(arr.shape).encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()[:40]


def check_cache_dir(cache_dir: Path, data_files) -> None:
    """UserError when ``cache_dir`` is the folder of one of ``data_files`` (paths or None): the
    cache must never write beside, or prune among, the user's files."""
    target = cache_dir.resolve()
    for p in data_files:
        if p is not None and Path(p).resolve().parent == target:
            raise UserError(f"cache folder {cache_dir} is a data folder; choose a separate cache folder")


def read(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, dict] | None:
    """The cached kept-pixel mask and its summary, or None (missing, or unusable: then it is
    recomputed; a corrupt entry is deleted). A hit refreshes the entry's time (pruning keeps the
    entries used last)."""
    try:
        fh = open(path, "rb")
    except OSError:
        return None  # not cached (or pruned by another process meanwhile), or not readable
    try:
        with fh, np.load(fh, allow_pickle=False) as z:
            stored_shape = tuple(int(v) for v in z["shape"])
            if stored_shape != shape:
                return None
            keep = np.unpackbits(z["keep"], count=shape[0] * shape[1]).astype(bool).reshape(shape)
            info = json.loads(bytes(z["info"]).decode())
    except Exception as exc:  # truncated zip (BadZipFile), bad JSON, bad arrays, a failing read
        _warn_once(f"read:{path.parent}", "preprocessing cache: dropping unusable entry %s (%s); recomputing",
                   path, exc.__class__.__name__)
        _remove(path)
        return None
    try:
        os.utime(path)
    except OSError:
        pass
    return keep, info


def write(path: Path, keep: np.ndarray, info: dict) -> None:
    """Store an entry (atomically), then prune the folder when it is due; a read-only, full or
    missing cache folder is logged once and ignored."""
    try:
        with atomic_target(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                shape=np.array(keep.shape, dtype=np.int64),
                keep=np.packbits(keep.ravel()),
                info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8),
            )
    except OSError as exc:
        _warn_once(f"write:{path.parent}", "preprocessing cache %s cannot be written (%s); continuing without it",
                   path.parent, exc.strerror or exc.__class__.__name__)
        return
    folder = path.parent
    with _lock:
        since = _writes.get(folder)  # None: this process has not measured the folder yet
        due = since is None or since + 1 >= PRUNE_EVERY
        _writes[folder] = 0 if due else since + 1
    if due:
        prune(folder, max_bytes())


def max_bytes() -> int:
    """The cache folder's size limit in bytes: ``$LSFA_CACHE_MAX_MB`` megabytes (a positive number),
    else :data:`DEFAULT_MAX_MB`; a value that is not one is logged once and the default used."""
    text = os.environ.get(MAX_MB_VARIABLE, "").strip()
    if text:
        try:
            mb = float(text)
            if mb > 0 and math.isfinite(mb):
                return int(mb * 1024 * 1024)
        except ValueError:
            pass
        _warn_once(f"limit:{text}", "%s=%r is not a positive number of megabytes; using %d",
                   MAX_MB_VARIABLE, text, DEFAULT_MAX_MB)
    return DEFAULT_MAX_MB * 1024 * 1024


def prune(folder: Path, limit: int) -> int:
    """Delete the least recently used entries (``*.npz`` only) of ``folder`` until they take at
    most ``KEEP_FRACTION`` × ``limit`` bytes, if they take more than ``limit``; returns how many
    were deleted. Entries another process removes meanwhile are skipped."""
    entries = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.endswith(".npz"):
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    entries.append((st.st_mtime, st.st_size, e.path))
    except OSError:
        return 0
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return 0
    target, removed = KEEP_FRACTION * limit, 0
    for _, size, p in sorted(entries):
        if total <= target:
            break
        if _remove(Path(p)):
            removed += 1
        total -= size
    log.info("preprocessing cache %s: %d least recently used entries removed (limit %.0f MB)",
             folder, removed, limit / 2**20)
    return removed


def _remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:
        return False
