"""Background jobs on superqt's thread workers: progress, streamed messages, cancel, errors.

A job is a Qt-free function ``fn(progress)``: a generator that ``yield``s messages for the
window (``lsfa_gui.tasks``) and ``return``s its result, or a plain function that returns it.
It reports through ``progress.update(...)`` (a :class:`core.progress.Progress`). Cancelling
uses the engine's protocol: ``progress.cancel()`` makes the next ``progress.update`` (deep in
the engine) raise :class:`~core.progress.Cancelled`; between two yielded messages the job is
checked too, so it stops within one step either way and its ``finally`` blocks run in its
own thread. Each job runs in a :func:`superqt.utils.create_worker` generator worker;
:class:`JobRunner` runs one job at a time, a new one supersedes (cancels) the old one, and
late signals of a superseded job are dropped by request id.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from inspect import isgenerator
from typing import Any, Callable

from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import GeneratorWorker, create_worker

from core.errors import UserError
from core.progress import Cancelled, Progress, ProgressEvent

JobFn = Callable[[Progress], Any]

PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress signals per second reach the UI thread
MIN_POOL_THREADS = 8  # a watch, a superseded job winding down, metrics and a save may all run at once


@dataclass
class Outcome:
    """How a job ended: ``kind`` is "succeeded" (``value``), "failed" (``message``,
    ``details`` = traceback, empty for user errors) or "cancelled"."""

    kind: str
    value: Any = None
    message: str = ""
    details: str = ""


def run_job(fn: JobFn, progress: Progress, ended: threading.Event):
    """Generator run by the worker: yields ``fn``'s messages, returns an :class:`Outcome`.

    Every exception becomes an Outcome here (superqt would swallow a RuntimeError, e.g. from
    torch, as "worker deleted" and never report it)."""
    try:
        out = fn(progress)
        if isgenerator(out):
            try:
                while True:
                    try:
                        message = next(out)
                    except StopIteration as stop:
                        out = stop.value
                        break
                    yield message
                    progress.check()  # cancelled while the message was on its way
            finally:
                if isgenerator(out):
                    out.close()
        return Outcome("succeeded", out)
    except Cancelled:
        return Outcome("cancelled")
    except UserError as exc:
        return Outcome("failed", message=str(exc))
    except MemoryError:
        return Outcome("failed", message="Out of memory. Try fewer samples or a smaller coreset.",
                       details=traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - every failure must reach the user, not kill the thread
        return Outcome("failed", message=f"{type(exc).__name__}: {exc}", details=traceback.format_exc())
    finally:
        ended.set()


@dataclass
class _Job:
    worker: GeneratorWorker
    progress: Progress
    ended: threading.Event


class JobRunner(QObject):
    """Runs at most one job at a time; a new ``start`` supersedes (cancels) the running one.

    Signals carry the request id returned by :meth:`start` and are only relayed for the
    current request: ``started(id, title)``, ``progressed(id, ProgressEvent)``,
    ``partial(id, message)``, ``succeeded(id, result)``, ``failed(id, message, details)``,
    ``cancelled(id)``, then always ``finished(id)``.
    """

    started = Signal(int, str)
    progressed = Signal(int, object)
    partial = Signal(int, object)
    succeeded = Signal(int, object)
    failed = Signal(int, str, str)
    cancelled = Signal(int)
    finished = Signal(int)
    _job_progressed = Signal(int, object)  # emitted in a job's thread, delivered on the UI thread

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        pool = QThreadPool.globalInstance()
        if pool.maxThreadCount() < MIN_POOL_THREADS:
            pool.setMaxThreadCount(MIN_POOL_THREADS)
        self._next_id = 0
        self._current: int | None = None
        self._title = ""
        self._jobs: dict[int, _Job] = {}  # started and not yet finished (superseded ones too)
        self._job_progressed.connect(lambda rid, ev: self._relay(rid, self.progressed, ev))

    # ------------------------------------------------------------------ public
    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def current_id(self) -> int | None:
        return self._current

    @property
    def title(self) -> str:
        return self._title

    @property
    def live_threads(self) -> int:
        """Jobs whose worker has not finished yet (superseded jobs winding down count too)."""
        return len(self._jobs)

    def start(self, title: str, fn: JobFn) -> int:
        """Start ``fn`` in a worker thread (cancelling any current job); returns its request id."""
        self.cancel()
        self._next_id += 1
        rid = self._next_id
        throttle = _ProgressThrottle(lambda ev: self._job_progressed.emit(rid, ev))
        progress = Progress(throttle.forward)
        ended = threading.Event()
        worker = create_worker(run_job, fn, progress, ended, _worker_class=GeneratorWorker,
                               _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(lambda msg: self._relay(rid, self.partial, msg))
        worker.returned.connect(lambda outcome: self._on_returned(rid, outcome))
        worker.finished.connect(lambda: self._jobs.pop(rid, None))
        self._jobs[rid] = _Job(worker, progress, ended)
        self._current = rid
        self._title = title
        self.started.emit(rid, title)
        worker.start()
        return rid

    def cancel(self) -> None:
        """Ask the current job to stop at its next progress step; its signals stop at once."""
        if self._current is None:
            return
        rid = self._current
        job = self._jobs.get(rid)
        if job is not None:
            job.progress.cancel()
        self._current = None
        self.cancelled.emit(rid)
        self.finished.emit(rid)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel every job and wait for their functions to return; True if all did in time."""
        self.cancel()
        deadline = time.monotonic() + timeout_ms / 1000
        ok = True
        for job in list(self._jobs.values()):
            job.progress.cancel()
            ok = job.ended.wait(max(0.0, deadline - time.monotonic())) and ok
        return ok

    # ------------------------------------------------------------------ relays
    def _relay(self, rid: int, signal, obj: object) -> None:
        if rid == self._current:
            signal.emit(rid, obj)

    def _on_returned(self, rid: int, outcome: Outcome) -> None:
        if rid != self._current:
            return
        if outcome.kind == "succeeded":
            self.succeeded.emit(rid, outcome.value)
        elif outcome.kind == "failed":
            self.failed.emit(rid, outcome.message, outcome.details)
        else:  # cancelled from inside (not via cancel())
            self.cancelled.emit(rid)
        self._current = None
        self.finished.emit(rid)


class _ProgressThrottle:
    """Forwards a progress event when its stage changes, at its last step, or every
    ``PROGRESS_INTERVAL_S``; called in the job's thread."""

    def __init__(self, send: Callable[[ProgressEvent], None]) -> None:
        self._send = send
        self._last_emit = 0.0
        self._last_stage: str | None = None

    def forward(self, event: ProgressEvent) -> None:
        now = time.perf_counter()
        final = event.total and event.done >= event.total
        if event.stage != self._last_stage or final or now - self._last_emit >= PROGRESS_INTERVAL_S:
            self._last_stage = event.stage
            self._last_emit = now
            self._send(event)
