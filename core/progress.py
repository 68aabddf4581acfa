"""Progress reporting and cancellation shared by the CLI, batch runs and the GUI worker.

Long engine functions take a ``progress: Progress | None`` argument and call
``progress.update(stage, done, total)`` at every step. ``update`` raises :class:`Cancelled`
as soon as ``cancel()`` was called (from any thread), so work stops within one step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable


class Cancelled(Exception):
    """Raised inside engine code when the user cancelled the running task."""


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # short human-readable stage name, e.g. "RGB features"
    done: int  # steps finished in this stage
    total: int  # steps in this stage (0 = unknown)
    message: str = ""  # optional detail (losses, file name)
    elapsed_s: float = 0.0  # seconds since this stage started

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left in this stage, extrapolated linearly; None if unknown."""
        if not self.total or not self.done:
            return None
        return self.elapsed_s * (self.total - self.done) / self.done


class Progress:
    """Thread-safe progress sink with a cancel flag."""

    def __init__(self, callback: Callable[[ProgressEvent], None] | None = None):
        self._callback = callback
        self._cancel = threading.Event()
        self._stage: str | None = None
        self._stage_t0 = time.perf_counter()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def silent(self) -> "Progress":
        """A Progress that shares this one's cancel flag but reports nothing: for inner loops
        (an extractor's samples) whose steps the outer stage already counts."""
        inner = Progress()
        inner._cancel = self._cancel
        return inner

    def prefixed(self, prefix: str) -> "Progress":
        """A Progress that shares this one's cancel flag and reports here with every stage name
        prefixed (``"224 px model: Extracting features"``): for one part of a longer task."""
        parent = self

        def forward(event: ProgressEvent) -> None:
            parent.update(f"{prefix}: {event.stage}", event.done, event.total, event.message)

        inner = Progress(forward)
        inner._cancel = self._cancel
        return inner

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._cancel.is_set():
            raise Cancelled()

    def update(self, stage: str, done: int, total: int = 0, message: str = "") -> None:
        self.check()
        if stage != self._stage:
            self._stage = stage
            self._stage_t0 = time.perf_counter()
        if self._callback is not None:
            self._callback(
                ProgressEvent(stage, done, total, message, time.perf_counter() - self._stage_t0)
            )


def ensure(progress: Progress | None) -> Progress:
    """The given progress sink, or a silent one."""
    return progress if progress is not None else Progress()
