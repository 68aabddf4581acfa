"""Background jobs: run engine calls off the UI thread with progress, streaming and cancel.

A job is a plain function ``fn(progress, emit) -> result`` with no Qt in it: it reports through
``progress.update(...)`` (a :class:`core.progress.Progress`, which raises ``Cancelled`` after
``cancel()``) and streams partial results with ``emit(obj)``. :class:`JobRunner` runs one job
at a time in its own ``QThread``; starting a new job cancels the old one, and late signals of
a superseded job are dropped by request id, so the window only ever sees the current job.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.errors import UserError
from core.progress import Cancelled, Progress, ProgressEvent

JobFn = Callable[[Progress, Callable[[Any], None]], Any]

PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress signals per second reach the UI thread


class _Worker(QObject):
    """Lives in the job thread; runs ``fn`` once and reports by signals tagged with the id."""

    progressed = Signal(int, object)
    partial = Signal(int, object)
    succeeded = Signal(int, object)
    failed = Signal(int, str, str)
    cancelled = Signal(int)
    done = Signal(int)

    def __init__(self, request_id: int, fn: JobFn, progress_holder: list):
        super().__init__()
        self.request_id = request_id
        self.fn = fn
        self._last_emit = 0.0
        self._last_stage: str | None = None
        self.progress = Progress(self._on_progress)
        progress_holder.append(self.progress)

    def _on_progress(self, event: ProgressEvent) -> None:
        now = time.perf_counter()
        final = event.total and event.done >= event.total
        if event.stage != self._last_stage or final or now - self._last_emit >= PROGRESS_INTERVAL_S:
            self._last_stage = event.stage
            self._last_emit = now
            self.progressed.emit(self.request_id, event)

    @Slot()
    def run(self) -> None:
        rid = self.request_id
        try:
            result = self.fn(self.progress, lambda obj: self.partial.emit(rid, obj))
        except Cancelled:
            self.cancelled.emit(rid)
        except UserError as exc:
            self.failed.emit(rid, str(exc), "")
        except MemoryError:
            self.failed.emit(rid, "Out of memory. Try fewer samples or a smaller coreset.", traceback.format_exc())
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user, not kill the thread
            self.failed.emit(rid, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        else:
            self.succeeded.emit(rid, result)
        finally:
            self.done.emit(rid)


class JobRunner(QObject):
    """Runs at most one job at a time; a new ``start`` supersedes (cancels) the running one.

    Signals carry the request id returned by :meth:`start` and are only relayed for the
    current request: ``started(id, title)``, ``progressed(id, ProgressEvent)``,
    ``partial(id, obj)``, ``succeeded(id, result)``, ``failed(id, message, details)``,
    ``cancelled(id)``, then always ``finished(id)``.
    """

    started = Signal(int, str)
    progressed = Signal(int, object)
    partial = Signal(int, object)
    succeeded = Signal(int, object)
    failed = Signal(int, str, str)
    cancelled = Signal(int)
    finished = Signal(int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._next_id = 0
        self._current: int | None = None
        self._title = ""
        self._progress: Progress | None = None
        self._threads: dict[int, tuple[QThread, _Worker]] = {}

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

    def start(self, title: str, fn: JobFn) -> int:
        """Start ``fn`` in a new thread (cancelling any current job); returns its request id."""
        self.cancel()
        self._next_id += 1
        rid = self._next_id
        holder: list[Progress] = []
        thread = QThread()
        thread.setObjectName(f"lsfa-job-{rid}")
        worker = _Worker(rid, fn, holder)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progressed.connect(self._on_progressed)
        worker.partial.connect(self._on_partial)
        worker.succeeded.connect(self._on_succeeded)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.done.connect(self._reap)
        self._threads[rid] = (thread, worker)
        self._current = rid
        self._title = title
        self._progress = holder[0]
        self.started.emit(rid, title)
        thread.start()
        return rid

    def cancel(self) -> None:
        """Ask the current job to stop at its next progress step; its signals stop at once."""
        if self._current is None:
            return
        rid = self._current
        if self._progress is not None:
            self._progress.cancel()
        self._current = None
        self._progress = None
        self.cancelled.emit(rid)
        self.finished.emit(rid)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and wait for the threads; True if all stopped in time."""
        self.cancel()
        ok = True
        for thread, worker in list(self._threads.values()):
            worker.progress.cancel()
            thread.quit()
            ok = thread.wait(timeout_ms) and ok
        return ok

    @property
    def live_threads(self) -> int:
        """Job threads not yet reaped (superseded jobs still winding down count too)."""
        return len(self._threads)

    # ------------------------------------------------------------------ relays
    def _is_current(self, rid: int) -> bool:
        return rid == self._current

    def _on_progressed(self, rid: int, event: object) -> None:
        if self._is_current(rid):
            self.progressed.emit(rid, event)

    def _on_partial(self, rid: int, obj: object) -> None:
        if self._is_current(rid):
            self.partial.emit(rid, obj)

    def _finish(self, rid: int) -> None:
        self._current = None
        self._progress = None
        self.finished.emit(rid)

    def _on_succeeded(self, rid: int, result: object) -> None:
        if self._is_current(rid):
            self.succeeded.emit(rid, result)
            self._finish(rid)

    def _on_failed(self, rid: int, message: str, details: str) -> None:
        if self._is_current(rid):
            self.failed.emit(rid, message, details)
            self._finish(rid)

    def _on_cancelled(self, rid: int) -> None:
        if self._is_current(rid):  # cancelled from inside (not via cancel())
            self.cancelled.emit(rid)
            self._finish(rid)

    def _reap(self, rid: int) -> None:
        """The job function has returned: stop its thread's event loop and free both objects."""
        entry = self._threads.pop(rid, None)
        if entry is not None:
            thread, worker = entry
            thread.quit()
            thread.wait(2000)
            worker.deleteLater()
            thread.deleteLater()
