"""Loads the selected sample at its original resolution, off the UI thread, so the views show a
listed sample's RGB image and point cloud before any fit or scoring (and draw the scored map
back onto the original image). The loaded samples are kept on the state
(:meth:`InspectionState.set_original`, a few at a time)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal

from lsfa_gui.state import InspectionState, SampleEntry

log = logging.getLogger(__name__)


class OriginalLoader(QObject):
    """Loads ``state.current_entry``'s sample (``entry.ref.load()``) in one background thread
    whenever the selection changes; the result reaches the state on the UI thread."""

    _loaded = Signal(object, object)  # (entry, Sample or None)

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsfa-load")
        self._pending: set[int] = set()  # id(entry) of loads under way
        self._failed: set[int] = set()  # id(entry) whose files could not be read (not retried)
        self._loaded.connect(self._on_loaded)
        state.current_changed.connect(lambda _i: self.request(state.current_entry))
        state.samples_reset.connect(self._failed.clear)

    def request(self, entry: SampleEntry | None) -> None:
        """Start loading ``entry``'s sample unless it is kept, loading, failed or has no ref."""
        ref = getattr(entry, "ref", None)
        if entry is None or not hasattr(ref, "load") or self.state.original(entry) is not None:
            return
        key = id(entry)
        if key in self._pending or key in self._failed:
            return
        self._pending.add(key)
        self._pool.submit(self._load, entry)

    def _load(self, entry: SampleEntry) -> None:  # worker thread
        try:
            sample = entry.ref.load()
        except Exception as exc:  # noqa: BLE001 - an unreadable file: the views keep what they show
            log.warning("%s: cannot show it at original resolution (%s)", entry.source or entry.name, exc)
            sample = None
        self._loaded.emit(entry, sample)

    def _on_loaded(self, entry: SampleEntry, sample) -> None:  # UI thread
        self._pending.discard(id(entry))
        if sample is None:
            self._failed.add(id(entry))
            return
        self.state.set_original(entry, sample)

    def shutdown(self) -> None:
        """Stop taking work; a load under way finishes in its thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)
