"""Histogram of image scores, good vs defective, with a draggable image-threshold line.

The score axis zooms (mouse wheel) and pans (drag) and is re-binned to what is shown; by default
it shows the scores without outliers (``state.score_view``), *Fit to scores* returns there. The
view is the state's, so the image-threshold slider follows it."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from lsfa_gui.state import InspectionState
from lsfa_gui.widgets import result_refresh

GOOD_COLOUR = (46, 160, 67)
DEFECT_COLOUR = (214, 39, 40)
UNLABELLED_COLOUR = (120, 120, 120)
LINE_COLOUR = (255, 152, 0)
BAND_COLOUR = (239, 108, 0, 45)  # the uncertain band [image threshold, uncertain_until)
SPREAD_COLOUR = (110, 110, 110)  # where the fit's seeded threshold's bootstrap cuts fell (light fill, dashed edges)


def score_histograms(
    state: InspectionState, bins: int = 30, view: tuple[float, float] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """Shared bin edges and counts per group ("good", "defective", "unlabelled"); bins over
    ``view`` (raw scores; scores outside it are not counted) or, without one, over all scores."""
    groups: dict[str, list[float]] = {"good": [], "defective": [], "unlabelled": []}
    for e in state.entries:
        if e.result is None:
            continue
        key = "unlabelled" if e.is_defect is None else ("defective" if e.is_defect else "good")
        groups[key].append(e.image_score)
    all_scores = [s for v in groups.values() for s in v]
    if not all_scores:
        return None
    lo, hi = view if view is not None else (min(all_scores), max(all_scores))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    counts = {k: np.histogram(v, bins=edges)[0] for k, v in groups.items() if v}
    return edges, counts


class HistogramPanel(QWidget):
    """Reads scores and the image threshold from ``state``; dragging the line writes it back."""

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)  # wheel zooms and drag pans the score axis only
        self.plot.hideButtons()
        self._showing: tuple[float, float] | None = None  # the x range this panel set last
        self._top: float | None = None  # the y range's top this panel set last (samples)
        self.plot.getViewBox().disableAutoRange()  # only the state's score view sets the range
        self.plot.setLabel("bottom", "image score (raw)")
        self.plot.setLabel("left", "samples")
        self.plot.setTitle(
            f"<span style='color:rgb{GOOD_COLOUR};font-size:9pt'>■ good</span>&nbsp;&nbsp;"
            f"<span style='color:rgb{DEFECT_COLOUR};font-size:9pt'>■ defective</span>&nbsp;&nbsp;"
            f"<span style='color:rgb{LINE_COLOUR};font-size:9pt'>│ threshold</span>"
        )
        self.curves: dict[str, pg.PlotDataItem] = {}  # group -> its step curve, hidden without scores
        self.rebuilds = 0  # times the scores were re-binned (a burst of results: one)
        for key, colour in (("good", GOOD_COLOUR), ("defective", DEFECT_COLOUR), ("unlabelled", UNLABELLED_COLOUR)):
            curve = pg.PlotDataItem(
                stepMode="center", fillLevel=0, pen=pg.mkPen(colour, width=1.5), brush=pg.mkBrush(*colour, 90)
            )
            curve.setVisible(False)
            self.plot.addItem(curve)  # added once; a refresh only sets its data (or hides it)
            self.curves[key] = curve
        self.line = pg.InfiniteLine(
            angle=90, movable=True, pen=pg.mkPen(LINE_COLOUR, width=2.5), hoverPen=pg.mkPen(LINE_COLOUR, width=4),
            label="{value:.4g}", labelOpts=dict(position=0.93, color=LINE_COLOUR, fill=(255, 255, 255, 200)),
        )
        self.line.setZValue(10)
        self.line.setToolTip("Drag to change the image (part verdict) threshold")
        self.plot.setToolTip("Image scores of scored samples: good (green), defective (red), unlabelled (grey).\n"
                             "Drag the orange line to set the image threshold; the mouse wheel zooms the score "
                             "axis (the threshold slider follows), dragging the background pans it.")
        self.line.sigPositionChanged.connect(self._on_line_moved)
        self.plot.addItem(self.line)
        self.line.setVisible(False)
        self.band = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(*BAND_COLOUR), pen=pg.mkPen(None))
        self.band.setZValue(-5)
        self.band.setToolTip("Uncertain band: parts scoring here are UNCERTAIN")
        self.plot.addItem(self.band)
        self.band.setVisible(False)
        self.spread = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(*SPREAD_COLOUR, 30),
                                          pen=pg.mkPen(SPREAD_COLOUR, width=1, style=Qt.DashLine))
        self.spread.setZValue(-6)
        self.plot.addItem(self.spread)
        self.spread.setVisible(False)
        self.empty_label = QLabel("No scored samples yet.")
        self.empty_label.setStyleSheet("color:#888")
        self.empty_label.setWordWrap(True)
        self.empty_label.setMinimumWidth(10)
        self.outside_label = QLabel()
        self.outside_label.setStyleSheet("color:#666")
        self.outside_label.setWordWrap(True)  # a narrow dock wraps it instead of widening the window
        self.outside_label.setMinimumWidth(10)
        self.fit_button = QPushButton("Fit to scores")
        self.fit_button.setToolTip("Show the scored samples' scores again (without outliers) after zooming")
        self.fit_button.clicked.connect(lambda: state.set_score_view(None))
        footer = QHBoxLayout()
        footer.addWidget(self.empty_label)
        footer.addWidget(self.outside_label, 1)
        footer.addWidget(self.fit_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot, 1)
        layout.addLayout(footer)
        self.plot.getViewBox().sigXRangeChanged.connect(self._on_view_moved)
        state.samples_reset.connect(self.refresh)
        self.refresh_soon = result_refresh.on_results(self.refresh, self)  # a burst of results: one refresh
        state.sample_updated.connect(lambda _i: self.refresh_soon())
        state.score_view_changed.connect(self.refresh)
        state.thresholds_changed.connect(self.refresh_line)
        state.model_changed.connect(self.refresh_spread)
        self.refresh_spread()
        self.refresh()

    def refresh(self):
        """Re-bin the scores over the state's score view and show that range. The curves are
        updated in place (``setData``); a group without scores is hidden."""
        self.refresh_soon.cancel()  # a refresh for results that arrived meanwhile: this is it
        self.rebuilds += 1
        view = self.state.score_view()
        hist = None if view is None else score_histograms(self.state, view=view)
        self.empty_label.setVisible(hist is None)
        self.fit_button.setEnabled(self.state.zoomed)
        if hist is None:
            for curve in self.curves.values():
                curve.setVisible(False)
            self.outside_label.setText("")
            self.refresh_line()
            return
        edges, counts = hist
        for key, curve in self.curves.items():
            if key in counts:
                curve.setData(edges, counts[key])
            curve.setVisible(key in counts)
        scores = [e.image_score for e in self.state.entries if e.result is not None]
        below = sum(v < view[0] for v in scores)
        above = sum(v > view[1] for v in scores)
        parts = [f"{n} sample(s) {where} the view" for n, where in ((below, "below"), (above, "above")) if n]
        self.outside_label.setText(("; ".join(parts) + " (Fit to scores shows the bulk again)") if parts else "")
        if self._showing != view:
            self._showing = view
            self.plot.setXRange(*view, padding=0)
        top = max(int(c.max()) for c in counts.values()) * 1.15 + 0.5
        if top != self._top:
            self._top = top
            self.plot.setYRange(0, top, padding=0)
        self.refresh_line()

    def _on_view_moved(self, _vb, rng):
        """The user zoomed or panned the score axis: it becomes the state's score view."""
        lo, hi = (float(v) for v in rng)
        if self._showing is not None and np.allclose((lo, hi), self._showing, rtol=0, atol=1e-9 * (abs(hi) + abs(lo) + 1)):
            return  # the range this panel set itself
        self._showing = (lo, hi)
        self.state.set_score_view((lo, hi))

    def refresh_line(self):
        thr = self.state.thresholds.image
        upper = self.state.thresholds.uncertain_until
        has_band = thr is not None and upper is not None and upper > thr
        self.band.setVisible(has_band)
        if has_band:
            self.band.setRegion((thr, upper))
        self.line.setVisible(thr is not None)
        if thr is not None and self.line.value() != thr:
            self.line.setValue(thr)  # its sigPositionChanged writes the same value back: no change, no event

    def refresh_spread(self):
        """Show the grey range where 80 % of the fit's bootstrap cuts of its seeded image
        threshold fell (hidden for a model whose threshold the self-check did not seed)."""
        spread = self.state.model.threshold_spread
        self.spread.setVisible(spread is not None)
        if spread is not None:
            lo, hi = spread
            self.spread.setRegion((lo, hi))
            self.spread.setToolTip(
                f"Where the fit's image threshold could have landed: 80 % of the best-F1 cuts on bootstrap "
                f"resamples of the self-check's held-out good parts and synthetic defects fell within "
                f"{lo:.4g}–{hi:.4g}, and the fit took their median. A threshold anywhere in this grey "
                "range is about as well supported by the self-check.")

    def _on_line_moved(self):
        self.state.set_thresholds(image=float(self.line.value()))
