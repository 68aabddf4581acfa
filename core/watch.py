"""Live line inspection: watch a folder for new samples and score each one once, in arrival order.

Qt-free; used by ``lsfa watch`` and the GUI's "Watch folder…" mode.

* :class:`FolderWatcher` polls a folder (optionally recursive). Files are grouped into samples
  by folder and file stem the way the plain-folder reader pairs them (``NAME.png`` +
  ``NAME.tiff|.tif|.npy|.pcd``; ``NAME_mask.png`` is an optional mask; with ``recursive``,
  MVTec-style ``rgb/NAME.png`` + ``xyz/NAME.tiff`` (+ ``gt/NAME.png``) too). A sample is *complete*
  when it has every modality the model needs and no file of it changed size or mtime for
  ``settle_s`` seconds. A sample still missing a partner file ``partner_timeout_s`` after it
  appeared becomes an error. Hidden files (``.NAME…``: temp files of atomic copies) are ignored.
* :func:`watch` scores complete samples, queued in arrival order (a burst is queued, none
  dropped); a sample that cannot be read or scored becomes an error row, never a crash.
* :class:`WatchLog` is the CSV log: the ``lsfa score`` columns plus ``timestamp``, one row
  appended (and flushed to disk) per sample. On restart its rows tell which samples were already
  scored, so they are not scored again, while samples that arrived in between are.

Stop with :meth:`core.progress.Progress.cancel` (checked at every poll and before every sample:
:class:`core.progress.Cancelled` is raised out of :func:`watch`); pause with the ``paused``
callable (samples keep being tracked and are scored once it returns False).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

from core.data.folder import MASK_SUFFIX, PCD_EXT, pcd_fields, ref_for_file
from core.data.imageio import IMAGE_EXTS, XYZ_EXTS
from core.data.refs import SampleRef
from core.errors import UserError
from core.outputs import csv_safe
from core.progress import Cancelled, Progress, ensure
from core.rows import COLUMNS, SKIPPED, error_reason, error_row, result_row
from core.thresholds import NG, OK, UNCERTAIN

__all__ = [
    "SETTLE_S", "POLL_S", "PARTNER_TIMEOUT_S", "WATCH_COLUMNS", "Arrival", "FolderWatcher", "WatchRecord",
    "WatchLog", "Tally", "tally", "watch", "score_arrival", "sample_key",
]

SETTLE_S = 0.5  # a sample's files must keep their size and mtime this long before it is scored
POLL_S = 0.2  # seconds between two looks at the folder
PARTNER_TIMEOUT_S = 30.0  # a sample still missing a partner file this long after it appeared is an error
WATCH_COLUMNS = ["timestamp", *COLUMNS]
STAGE = "Watching"
MVTEC_FOLDERS = ("rgb", "xyz", "gt")


def sample_key(path: str | os.PathLike) -> str:
    """How a sample is recognised across restarts: the absolute, normalised path of its main
    file (the CSV ``path`` column: the image, else the point cloud)."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


@dataclass
class Arrival:
    """A sample ready to score (``ref``), or one that cannot be (``error``)."""

    key: str
    path: str
    name: str
    ref: SampleRef | None = None
    error: str = ""


@dataclass
class _Seen:
    sig: tuple[int, int]  # (size, mtime_ns)
    changed_at: float  # clock time of the last change
    first_poll: int  # poll number the file was first seen in (arrival order)


class FolderWatcher:
    """Finds complete, settled samples in ``folder`` by polling (see the module docstring).

    ``modalities``: what the model needs ("rgb", "xyz"). ``done``: sample keys
    (:func:`sample_key`) not to report again (already scored). ``ignore``: folders to skip
    (e.g. the maps folder inside the watched one). ``clock``: seconds (tests may pass a fake).
    Each call of :meth:`poll` returns the samples that became ready, oldest arrival first;
    each sample is reported once.
    """

    def __init__(self, folder: str | Path, modalities: Iterable[str] = ("rgb", "xyz"), *, recursive: bool = False,
                 settle_s: float = SETTLE_S, partner_timeout_s: float = PARTNER_TIMEOUT_S,
                 done: Iterable[str] = (), ignore: Iterable[str | Path] = (),
                 clock: Callable[[], float] = time.monotonic):
        self.folder = Path(folder).expanduser().absolute()
        if not self.folder.is_dir():
            raise UserError(f"{self.folder}: not a folder (give the folder to watch)")
        self.modalities = tuple(modalities)
        self.recursive = bool(recursive)
        self.settle_s = float(settle_s)
        self.partner_timeout_s = float(partner_timeout_s)
        self.done: set[str] = set(done)
        self.ignore = {sample_key(p) for p in ignore}
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._polls = 0

    # ------------------------------------------------------------------ scanning
    def _files(self) -> Iterator[os.DirEntry]:
        stack = [str(self.folder)]
        while stack:
            top = stack.pop()
            try:
                entries = sorted(os.scandir(top), key=lambda e: e.name)
            except OSError:  # vanished or unreadable: look again next poll
                continue
            subdirs = []
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    if e.is_dir():
                        if self.recursive and sample_key(e.path) not in self.ignore:
                            subdirs.append(e.path)
                    elif e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTS + XYZ_EXTS + (PCD_EXT,):
                        yield e
                except OSError:
                    continue
            stack += reversed(subdirs)

    def _group_of(self, path: str) -> tuple[str, str, bool]:
        """(folder, sample stem, is a mask file) of a sample file."""
        parent, name = os.path.split(path)
        stem, ext = os.path.splitext(name)
        kind = os.path.basename(parent)
        if kind in MVTEC_FOLDERS:  # MVTec-style <type>/{rgb,xyz,gt}/NAME.*: one sample across the three
            return os.path.dirname(parent), stem, kind == "gt"
        if ext.lower() in IMAGE_EXTS and stem.endswith(MASK_SUFFIX):
            return parent, stem[: -len(MASK_SUFFIX)], True
        return parent, stem, False

    def poll(self) -> list[Arrival]:
        """Look at the folder once; the samples that became ready, in arrival order."""
        self._polls += 1
        now = self.clock()
        present: dict[str, _Seen] = {}
        for e in self._files():
            try:
                st = e.stat()
            except OSError:
                continue
            sig = (st.st_size, st.st_mtime_ns)
            old = self._seen.get(e.path)
            if old is None:
                present[e.path] = _Seen(sig, now, self._polls)
            elif old.sig != sig:
                present[e.path] = _Seen(sig, now, old.first_poll)
            else:
                present[e.path] = old
        self._seen = present
        groups: dict[tuple[str, str], dict[str, list[str]]] = {}
        for path in present:
            parent, stem, is_mask = self._group_of(path)
            g = groups.setdefault((parent, stem), {"images": [], "clouds": [], "masks": []})
            ext = os.path.splitext(path)[1].lower()
            g["masks" if is_mask else "images" if ext in IMAGE_EXTS else "clouds"].append(path)
        ready: list[tuple[tuple, Arrival]] = []
        for (parent, stem), g in groups.items():
            main = (g["images"] or g["clouds"] or [None])[0]
            if main is None:  # a mask alone
                continue
            key = sample_key(main)
            if key in self.done:
                continue
            files = g["images"] + g["clouds"] + g["masks"]
            seen = [present[p] for p in files]
            settled = all(now - s.changed_at >= self.settle_s for s in seen)
            first = min(s.first_poll for s in seen)
            order = (first, min(s.sig[1] for s in seen), key)
            if not settled:
                continue
            name = self._name(main)
            missing = self._missing(g)
            if missing is None:
                ready.append((order, self._arrival(key, main, name)))
            elif now - min(s.changed_at for s in seen) >= self.partner_timeout_s:
                ready.append((order, Arrival(key, main, name, error=f"{main}: {missing}")))
        ready.sort(key=lambda t: t[0])
        out = [a for _o, a in ready]
        self.done.update(a.key for a in out)
        return out

    def _name(self, main: str) -> str:
        rel = os.path.relpath(os.path.splitext(main)[0], self.folder)
        return rel.replace(os.sep, "/")

    def _missing(self, g: dict) -> str | None:
        """None when the group has every modality the model needs, else what is missing."""
        has_rgb = bool(g["images"])
        if not has_rgb and g["clouds"] and g["clouds"][0].lower().endswith(PCD_EXT):
            try:
                has_rgb = bool({"rgb", "rgba"} & set(pcd_fields(Path(g["clouds"][0])).split(",")))
            except (UserError, OSError, ValueError):
                has_rgb = False
        if "rgb" in self.modalities and not has_rgb:
            return "missing RGB image for this point cloud (expected an image with the same name beside it)"
        if "xyz" in self.modalities and not g["clouds"]:
            return "missing point cloud for this image (expected NAME.tiff, .tif, .npy or .pcd beside it)"
        return None

    def _arrival(self, key: str, main: str, name: str) -> Arrival:
        try:
            ref = replace(ref_for_file(Path(main)), name=name)
        except UserError as exc:
            return Arrival(key, main, name, error=error_reason(exc))
        except Exception as exc:  # noqa: BLE001 - a bad file is a row, never a crash
            return Arrival(key, main, name, error=error_reason(exc))
        return Arrival(key, ref.source(), name, ref=ref)


# ---------------------------------------------------------------------- scoring
@dataclass
class WatchRecord:
    """One watched sample: its CSV row (``WATCH_COLUMNS``), and its result when it was scored."""

    row: dict
    result: object | None = None  # core.results.SampleResult
    ref: SampleRef | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def prepare_arrival(model, arrival: Arrival, features: tuple[str, ...] = ()):
    """The arrival read and brought to the model grid, ``features`` extracted
    (core.model.Model.prepare_for_scoring), or None for an arrival that is already an error."""
    return None if arrival.ref is None else model.prepare_for_scoring(arrival.ref.load(), features)


def score_arrival(model, arrival: Arrival, prepared: Callable[[], object] | None = None) -> WatchRecord:
    """Score one arrival with ``model``; any failure (unreadable file, wrong units, out of memory,
    anything else) becomes an error row. ``prepared``: returns (or raises) its
    :func:`prepare_arrival`, done ahead (core.prefetch); default: done here."""
    if arrival.ref is None:
        row = error_row(arrival.path, arrival.name, arrival.error, model.model_id)
        return WatchRecord({"timestamp": _now(), **row})
    try:
        loaded = prepared() if prepared is not None else prepare_arrival(model, arrival)
        result = model.score_loaded(loaded)
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad sample (MemoryError included) must not stop the line
        row = error_row(arrival.ref.source(), arrival.name, error_reason(exc), model.model_id)
        return WatchRecord({"timestamp": _now(), **row}, ref=arrival.ref)
    return WatchRecord({"timestamp": _now(), **result_row(arrival.ref, result, model)}, result, arrival.ref)


def watch(model, folder: str | Path, *, recursive: bool = False, settle_s: float = SETTLE_S,
          poll_s: float = POLL_S, partner_timeout_s: float = PARTNER_TIMEOUT_S, done: Iterable[str] = (),
          ignore: Iterable[str | Path] = (), progress: Progress | None = None,
          paused: Callable[[], bool] | None = None, on_idle: Callable[[], None] | None = None,
          ) -> Iterator[WatchRecord]:
    """Yield a :class:`WatchRecord` per new sample in ``folder``, in arrival order, until
    ``progress`` is cancelled (then :class:`Cancelled` is raised). ``done``: sample keys already
    scored (e.g. :attr:`WatchLog.done`). ``on_idle``: called after every poll that scored nothing
    (nothing new, or paused; tests use it to drop files). With several samples queued, the next
    one is read and preprocessed in a background thread while one is scored (core.prefetch)."""
    from core.prefetch import prefetching

    p = ensure(progress)
    watcher = FolderWatcher(folder, model.modalities, recursive=recursive, settle_s=settle_s,
                            partner_timeout_s=partner_timeout_s, done=done, ignore=ignore)
    queue: deque[Arrival] = deque()
    n = 0
    while True:
        p.update(STAGE, n, 0)
        queue.extend(watcher.poll())
        scored = False
        if queue and not (paused and paused()):
            ahead = model.features_ahead() if len(queue) > 1 else ()
            with prefetching(list(queue), lambda a: prepare_arrival(model, a, ahead), progress=p) as loaded:
                for arrival, prepared in loaded:
                    if paused and paused():
                        break  # the rest stay queued (read again once resumed)
                    queue.popleft()
                    p.update(STAGE, n, 0, arrival.name)
                    record = score_arrival(model, arrival, prepared)
                    n += 1
                    scored = True
                    yield record
                    p.check()
        if on_idle is not None and not scored:
            on_idle()
        p.check()
        time.sleep(poll_s)


# ---------------------------------------------------------------------- CSV log
class WatchLog:
    """The append-only CSV log of a watch (``WATCH_COLUMNS``).

    Opening an existing log checks its header and reads which samples it already holds
    (:attr:`done`); a last line cut short by a crash is dropped (that sample is scored again).
    :meth:`append` writes one whole row per ``write`` call and flushes it to the disk, so a
    crash never damages the rows before it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.done: set[str] = set()
        self.rows_before = 0
        header = self._encode(dict(zip(WATCH_COLUMNS, WATCH_COLUMNS)))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as exc:
            raise UserError(f"{self.path}: cannot open the CSV log ({exc.strerror or exc})") from None
        self._fd = fd
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
            if data and not data.endswith(b"\n"):  # a row cut short by a crash
                cut = data.rfind(b"\n") + 1
                os.ftruncate(fd, cut)
                data = data[:cut]
            if not data:
                self._write(header)
            elif data.split(b"\n", 1)[0] + b"\n" != header:
                raise UserError(f"{self.path}: exists but is not an lsfa watch log (its columns differ); "
                                "give a new CSV file name")
            else:
                for row in csv.DictReader(io.StringIO(data.decode("utf-8", "replace"))):
                    if row.get("path"):
                        self.done.add(sample_key(row["path"].lstrip("'")))
                        self.rows_before += 1
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def _encode(row: dict) -> bytes:
        buf = io.StringIO()
        clean = {k: csv_safe(" ".join(v.splitlines()) if isinstance(v, str) else v) for k, v in row.items()}
        csv.DictWriter(buf, fieldnames=WATCH_COLUMNS, lineterminator="\n", extrasaction="ignore").writerow(clean)
        return buf.getvalue().encode("utf-8")

    def _write(self, data: bytes) -> None:
        try:
            os.write(self._fd, data)
            os.fsync(self._fd)
        except OSError as exc:
            raise UserError(f"{self.path}: cannot write the CSV log ({exc.strerror or exc})") from None

    def append(self, row: dict) -> None:
        """Append one row (a dict with ``WATCH_COLUMNS`` keys) and flush it to the disk."""
        self._write(self._encode(row))
        if row.get("path"):
            self.done.add(sample_key(row["path"]))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "WatchLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------- counts
@dataclass
class Tally:
    """Counts of a watch: verdicts, errors, and the yield (OK share of the parts scored)."""

    ok: int = 0
    ng: int = 0
    uncertain: int = 0
    errors: int = 0
    by_verdict: dict = field(default_factory=dict)

    @property
    def scored(self) -> int:
        return self.ok + self.ng + self.uncertain

    @property
    def total(self) -> int:
        return self.scored + self.errors

    @property
    def yield_(self) -> float | None:
        """OK / scored parts (None before the first part); UNCERTAIN parts are not OK."""
        return self.ok / self.scored if self.scored else None

    def summary(self) -> str:
        y = "n/a" if self.yield_ is None else f"{100 * self.yield_:.1f} %"
        parts = f"{self.total} part(s): {self.ok} OK, {self.ng} NG"
        if self.uncertain:
            parts += f", {self.uncertain} UNCERTAIN"
        if self.errors:
            parts += f", {self.errors} error(s)"
        return f"{parts}; yield {y}"


def tally(verdicts: Iterable[str | None]) -> Tally:
    """A :class:`Tally` of verdicts ("OK", "NG", "UNCERTAIN"; anything else counts as an error)."""
    t = Tally()
    for v in verdicts:
        if v == OK:
            t.ok += 1
        elif v == NG:
            t.ng += 1
        elif v == UNCERTAIN:
            t.uncertain += 1
        else:
            t.errors += 1
        t.by_verdict[v or SKIPPED] = t.by_verdict.get(v or SKIPPED, 0) + 1
    return t
