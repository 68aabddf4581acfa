"""The window's live inspection: watching a folder with the open model (``tasks.watch_job``
on the main job runner), one entry per new part, the watch panel, a bounded browser."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

from lsfa_gui import tasks
from lsfa_gui.state import SampleEntry

WATCH_KEEP = 300  # parts a watch keeps in the browser with their maps (older ones: scores only)
WATCH_TRIM = 50  # dropped at a time once WATCH_KEEP + WATCH_TRIM are listed


class WatchControl:
    """MainWindow's part for live inspection. Needs the window's ``state``, ``watch_panel``,
    ``docks``, ``log`` and its job control (``jobs``, ``model``, ``_start_job``)."""

    def _init_watch(self) -> None:
        self._watch_paused = threading.Event()
        self._watch_rid: int | None = None
        self._watch_model = None  # the open model with its own live thresholds, while watching

    def _connect_watch(self) -> None:
        self.state.thresholds_changed.connect(self._sync_watch_thresholds)
        self.watch_panel.stop_requested.connect(self.stop_watch)
        self.watch_panel.pause_toggled.connect(lambda on: self._watch_paused.set() if on else self._watch_paused.clear())
        self.jobs.finished.connect(self._on_job_finished)

    @property
    def watching(self) -> bool:
        return self._watch_rid is not None and self.jobs.current_id == self._watch_rid

    def start_watch(self, folder: str, csv_path: str | None = "", recursive: bool = False,
                    settle_s: float | None = None, poll_s: float | None = None) -> bool:
        """Watch ``folder`` with the open model (core.watch in the background job runner); each
        new part becomes an entry, is selected and shown. ``csv_path``: the CSV log ("" =
        ``lsfa-watch.csv`` in the folder, None = none). False if no model is open."""
        if self.model is None:
            self.log("Open or fit a model first: watching a folder scores each new part with it.", "warning")
            return False
        if csv_path == "":
            csv_path = str(Path(folder) / "lsfa-watch.csv")
        # the job scores with its own copy of the thresholds (kept equal to the live ones);
        # the open model's own thresholds are left as they are
        self._watch_model = copy.copy(self.model)
        self._watch_model.thresholds = copy.copy(self.model.thresholds)
        self._sync_watch_thresholds()
        self._watch_paused.clear()
        self.state.set_entries([])
        self.watch_panel.set_watching(True, folder, csv_path)
        self.docks["watch"].show()
        self.docks["watch"].raise_()
        self.log(f"Watching {folder}" + (f"; CSV log {csv_path}" if csv_path else ""))
        self._watch_rid = self._start_job("Watching", tasks.watch_job(
            self._watch_model, folder, csv_path, recursive=recursive, settle_s=settle_s, poll_s=poll_s,
            paused=self._watch_paused.is_set))
        return True

    def stop_watch(self) -> None:
        if self.watching:
            self.jobs.cancel()

    def _sync_watch_thresholds(self):
        """The watch job scores with the model's thresholds: keep them equal to the live ones,
        so the CSV log records the verdicts the window shows."""
        thr = getattr(self._watch_model, "thresholds", None)
        if thr is None:
            return
        t = self.state.thresholds
        if t.image is not None:
            thr.image = t.image
        if t.pixel is not None:
            thr.pixel = t.pixel
        thr.uncertain_until = t.uncertain_until
        thr.min_defect_area = t.min_defect_area

    def _on_job_finished(self, rid: int):
        if rid == self._watch_rid:
            self._watch_rid = None
            self.watch_panel.set_watching(False)

    def _on_watch_scored(self, record):
        row = record.row
        entries = self.state.entries
        if len(entries) >= WATCH_KEEP + WATCH_TRIM:  # a long run: keep the newest parts (maps, images)
            drop = len(entries) - WATCH_KEEP + 1
            self.watch_panel.archive(drop)
            self.state.set_entries(entries[drop:])
        entry = SampleEntry(name=row["name"], source=row["path"], ref=record.ref)
        (index,) = self.state.add_entries([entry])
        if record.result is not None:
            self.state.set_result(index, record.result)
        else:
            self.watch_panel.mark_error(index, row["error"])
            self.log(f"{row['name']}: {row['error']}", "warning")
        self.state.set_current(index)
