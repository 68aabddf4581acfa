"""Live inspection panel ("Watch folder…"): the newest part with a big OK / NG / UNCERTAIN
label, running counts and yield, the last parts, the uncertain band, Pause/Resume and Stop.

A thin view over ``InspectionState``: the parts are the state's entries (the window adds one
per watched part and selects it, so the 2D and 3D views show the newest part); verdicts come
from ``state.verdict`` and so follow the threshold slider live.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.thresholds import verdict
from core.watch import tally
from lsfa_gui.state import NG, OK, UNCERTAIN, InspectionState
from lsfa_gui.widgets.band_control import UncertainBandControl

VERDICT_STYLE = {
    OK: "background:#2e7d32;color:white;",
    NG: "background:#c62828;color:white;",
    UNCERTAIN: "background:#ef6c00;color:white;",
    "ERROR": "background:#6d4c41;color:white;",
    None: "background:#757575;color:white;",
}
RECENT = 30  # parts listed in the strip


class WatchPanel(QWidget):
    """Signals: ``pause_toggled(bool paused)``, ``stop_requested()``."""

    pause_toggled = Signal(bool)
    stop_requested = Signal()

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        self.watching = False
        self.folder_label = QLabel("Not watching. File ▸ Watch folder… starts live inspection.")
        self.folder_label.setWordWrap(True)
        self.verdict_label = QLabel("—")
        self.verdict_label.setObjectName("watchVerdict")
        self.verdict_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict_label.setMinimumHeight(90)
        self.part_label = QLabel("")
        self.part_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.counts_label = QLabel("")
        self.counts_label.setObjectName("watchCounts")
        self.recent = QListWidget()
        self.recent.setObjectName("watchRecent")
        self.recent.itemClicked.connect(self._select)
        self.band = UncertainBandControl(state)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop_requested.emit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.folder_label)
        lay.addWidget(self.verdict_label)
        lay.addWidget(self.part_label)
        lay.addWidget(self.counts_label)
        lay.addWidget(self.band)
        lay.addWidget(self.recent, 1)
        lay.addLayout(buttons)
        self._errors: dict[int, str] = {}  # entry index -> error of a part that could not be scored
        self._archived: list[float | None] = []  # image scores (None: error) of parts no longer in the state
        state.thresholds_changed.connect(self.refresh)
        state.samples_reset.connect(self.refresh)
        state.sample_updated.connect(lambda _i: self.refresh())
        self.set_watching(False)
        self.refresh()

    # ------------------------------------------------------------------ control
    def set_watching(self, on: bool, folder: str = "", csv_path: str | None = None) -> None:
        self.watching = on
        self.pause_button.setEnabled(on)
        self.stop_button.setEnabled(on)
        if on:
            self._errors.clear()
            self._archived.clear()
            self.pause_button.setChecked(False)
            log = f" → {csv_path}" if csv_path else ""
            self.folder_label.setText(f"Watching {folder}{log}")
        elif folder == "":
            self.folder_label.setText(self.folder_label.text().replace("Watching", "Stopped watching", 1)
                                      if self.folder_label.text().startswith("Watching") else self.folder_label.text())
        self.refresh()

    @property
    def paused(self) -> bool:
        return self.pause_button.isChecked()

    def _pause(self, on: bool) -> None:
        self.pause_button.setText("Resume" if on else "Pause")
        self.pause_toggled.emit(on)

    def mark_error(self, index: int, message: str) -> None:
        """Entry ``index`` is a watched part that could not be scored."""
        self._errors[index] = message
        self.refresh()

    def archive(self, n: int) -> None:
        """The first ``n`` entries are about to leave the state (a long watch keeps only the
        newest parts with their maps): keep their scores so the counts and yield stay whole and
        still follow the thresholds."""
        for i in range(n):
            self._archived.append(None if i in self._errors else self.state.entries[i].image_score)
        self._errors = {i - n: msg for i, msg in self._errors.items() if i >= n}

    @property
    def parts_seen(self) -> int:
        return len(self._archived) + len(self.state.entries)

    def _select(self, item: QListWidgetItem) -> None:
        index = item.data(Qt.ItemDataRole.UserRole)
        if index is not None and 0 <= index < len(self.state.entries):
            self.state.set_current(index)

    # ------------------------------------------------------------------ view
    def verdict_of(self, index: int) -> str | None:
        if index in self._errors:
            return "ERROR"
        return self.state.verdict(self.state.entries[index])

    def refresh(self) -> None:
        entries = self.state.entries
        n = len(entries)
        verdicts = [self.verdict_of(i) for i in range(n)]
        thr = self.state.thresholds
        old = [] if thr.image is None else [
            "ERROR" if s is None else verdict(s, thr.image, thr.uncertain_until) for s in self._archived]
        t = tally("SKIPPED" if v == "ERROR" else v for v in old + verdicts if v is not None)
        self.counts_label.setText(t.summary() if t.total else "no parts yet")
        if n:
            v = verdicts[-1]
            e = entries[-1]
            self.verdict_label.setText(v or "—")
            score = "" if e.image_score is None else f"  score {e.image_score:.4g}"
            self.part_label.setText(f"{e.name}{score}" + (f"  ({self._errors[n - 1]})" if n - 1 in self._errors else ""))
        else:
            self.verdict_label.setText("—")
            self.part_label.setText("")
            v = None
        self.verdict_label.setStyleSheet(f"{VERDICT_STYLE.get(v, VERDICT_STYLE[None])}font-size:36pt;"
                                         "font-weight:bold;border-radius:6px;")
        self.recent.clear()
        for i in range(n - 1, max(-1, n - 1 - RECENT), -1):
            e, v = entries[i], verdicts[i]
            score = "" if e.image_score is None else f"{e.image_score:.4g}"
            item = QListWidgetItem(f"{v or '—':<9}  {score:>8}  {e.name}")
            item.setData(Qt.ItemDataRole.UserRole, i)
            self.recent.addItem(item)
