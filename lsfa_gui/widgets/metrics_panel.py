"""Metrics panel: I-AUROC, P-AUROC, AUPRO of the scored set, and the confusion matrix live."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

from core.self_check import interval_text
from core.thresholds import confusion_rates, threshold_warnings
from lsfa_gui.state import InspectionState
from lsfa_gui.widgets import result_refresh


@dataclass
class MetricsInput:
    """Copies of what the threshold-free metrics need, safe to hand to a worker thread."""

    labels: np.ndarray  # (n,) bool, True = defective
    scores: np.ndarray  # (n,) raw image scores
    masks: list[np.ndarray]  # GT masks of samples that have one
    maps: list[np.ndarray]  # their anomaly maps (raw)


def metrics_input(state: InspectionState) -> MetricsInput:
    y, s = state.labelled_scores()
    masks, maps = [], []
    for e in state.entries:
        if e.result is not None and e.mask is not None and np.shape(e.mask) == np.shape(e.result.anomaly_map):
            masks.append(np.asarray(e.mask, bool))
            maps.append(np.asarray(e.result.anomaly_map, np.float32))
    return MetricsInput(y, s, masks, maps)


def compute_metrics(data: MetricsInput, progress=None) -> dict[str, float | None]:
    """I-AUROC, P-AUROC and AUPRO@0.3 (None where undefined). Runs in a worker thread."""
    from core import metrics
    from core.progress import ensure

    p = ensure(progress)
    p.update("Metrics", 0, 3)
    out: dict[str, float | None] = {"i_auroc": None, "p_auroc": None, "aupro": None}
    if data.labels.size:
        out["i_auroc"] = metrics.image_auroc(data.labels, data.scores)
    p.update("Metrics", 1, 3)
    if data.masks:
        out["p_auroc"] = metrics.pixel_auroc(data.masks, data.maps)
        p.update("Metrics", 2, 3)
        out["aupro"] = metrics.aupro(data.masks, data.maps)
    p.update("Metrics", 3, 3)
    return out


DEFAULT_NOTE = "Computed over labelled scored samples."


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class MetricsPanel(QWidget):
    """Threshold-free metrics (``state.metrics``, computed after scoring) + live confusion matrix."""

    NAMES = (("i_auroc", "I-AUROC"), ("p_auroc", "P-AUROC"), ("aupro", "AUPRO@0.3"))

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        top = QGroupBox("Detection and segmentation")
        grid = QGridLayout(top)
        self.metric_labels: dict[str, QLabel] = {}
        for col, (key, title) in enumerate(self.NAMES):
            name = QLabel(title)
            name.setAlignment(Qt.AlignmentFlag.AlignCenter)
            name.setStyleSheet("color:#666")
            value = QLabel("–")
            value.setAlignment(Qt.AlignmentFlag.AlignCenter)
            value.setStyleSheet("font-size:18px;font-weight:bold;")
            grid.addWidget(name, 0, col)
            grid.addWidget(value, 1, col)
            self.metric_labels[key] = value
        self.metric_note = QLabel(DEFAULT_NOTE)
        self.metric_note.setWordWrap(True)
        self.metric_note.setStyleSheet("color:#888")
        grid.addWidget(self.metric_note, 2, 0, 1, 3)
        self.estimate = QLabel("")
        self.estimate.setWordWrap(True)
        self.estimate.setStyleSheet("color:#555;font-style:italic")
        self.estimate.setToolTip("Measured at fit time on synthetic defects painted on held-out good "
                                 "samples; real defects may score differently.")
        grid.addWidget(self.estimate, 3, 0, 1, 3)

        cm = QGroupBox("Confusion matrix at the image threshold")
        cgrid = QGridLayout(cm)
        cgrid.addWidget(QLabel(""), 0, 0)
        for c, text in enumerate(("pred NG", "pred OK"), start=1):
            lab = QLabel(f"<b>{text}</b>")
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cgrid.addWidget(lab, 0, c)
        self.cells: dict[str, QLabel] = {}
        for r, (text, keys) in enumerate((("GT defective", ("tp", "fn")), ("GT good", ("fp", "tn"))), start=1):
            cgrid.addWidget(QLabel(f"<b>{text}</b>"), r, 0)
            for c, key in enumerate(keys, start=1):
                cell = QLabel("–")
                cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setFrameShape(QFrame.Shape.StyledPanel)
                cell.setMinimumHeight(30)
                good = key in ("tp", "tn")
                cell.setStyleSheet(
                    f"font-size:16px;font-weight:bold;background:{'#e8f5e9' if good else '#ffebee'};"
                )
                cell.setToolTip(key.upper())
                cgrid.addWidget(cell, r, c)
                self.cells[key] = cell
        self.rates = QLabel("–")
        self.rates.setWordWrap(True)
        cgrid.addWidget(self.rates, 3, 0, 1, 3)
        self.threshold_note = QLabel("")  # honest thresholds: what is wrong with this one, how it was chosen
        self.threshold_note.setObjectName("thresholdWarning")
        self.threshold_note.setWordWrap(True)
        self.threshold_note.setStyleSheet("color:#b71c1c;font-weight:bold;")
        cgrid.addWidget(self.threshold_note, 4, 0, 1, 3)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(top)
        layout.addWidget(cm)
        layout.addStretch(1)
        state.thresholds_changed.connect(self.refresh_confusion)
        state.samples_reset.connect(self.refresh_confusion)
        self.refresh_confusion_soon = result_refresh.on_results(self.refresh_confusion, self)  # a burst of results: once
        state.sample_updated.connect(lambda _i: self.refresh_confusion_soon())
        state.model_changed.connect(self.refresh_estimate)
        state.metrics_changed.connect(self.refresh_metrics)
        self.refresh_confusion()
        self.refresh_estimate()
        self.refresh_metrics()

    def _threshold_note(self, counts: dict | None) -> str:
        """Warnings about the image threshold on the labelled samples (core.thresholds), and the
        "optimistic" label when Auto tuned it on the very samples these counts come from."""
        if counts is None:
            return ""
        lines = [f"⚠ {w[0].upper()}{w[1:]}." for w in threshold_warnings(counts)]
        origin = self.state.thresholds.image_origin
        if origin:
            lines.append(f"Image threshold: Auto, {origin}; expect fewer correct verdicts on new parts.")
        return "<br>".join(lines)

    def refresh_estimate(self):
        """The model's self-check estimate, labelled as one (empty when the fit did not run it)."""
        est = getattr(self.state.model, "estimate", None)
        if not est:
            self.estimate.setText("")
            return
        text = (f"Estimate from synthetic defects (not real ones): I-AUROC {est['image_auroc']:.2f}"
                f"{interval_text(est, 2)} · AUPRO@0.3 {est['aupro_30']:.2f}")
        if est.get("n_good"):
            text += f" · held-out good parts flagged at the fitted threshold: {est['good_flagged']} of {est['n_good']}"
        if est.get("n_training"):
            text += f" · training parts scored leave-one-out flagged: {est['training_flagged']} of {est['n_training']}"
        note = getattr(self.state.model, "self_check_note", "")
        if note:
            text += "".join(f"\n⚠ {line[0].upper()}{line[1:]}" for line in note.splitlines())
        self.estimate.setText(text)

    def refresh_metrics(self):
        """Show ``state.metrics`` ("n/a" where not defined, "–" while stale)."""
        values = self.state.metrics
        for key, _title in self.NAMES:
            self.metric_labels[key].setText("–" if values is None else _fmt(values.get(key)))
        self.metric_note.setText(self.state.metrics_note if values is not None and self.state.metrics_note else DEFAULT_NOTE)

    def refresh_confusion(self):
        c = self.state.confusion()
        self.threshold_note.setText(self._threshold_note(c))
        if c is None:
            for cell in self.cells.values():
                cell.setText("–")
            self.rates.setText("Needs labelled, scored samples and an image threshold.")
            return
        for key, cell in self.cells.items():
            cell.setText(str(c[key]))
        r = confusion_rates(c)
        self.rates.setText(
            f"precision {r['precision']:.3f} · recall {r['recall']:.3f} · F1 {r['f1']:.3f} · accuracy {r['accuracy']:.3f}"
        )
