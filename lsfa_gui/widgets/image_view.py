"""RGB view: the image with the anomaly heatmap, predicted and ground-truth outlines, read-out."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QSlider, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

from core import render
from lsfa_gui.colormaps import lut
from lsfa_gui.state import InspectionState, SampleEntry, normalised
from lsfa_gui.widgets.flow_layout import FlowLayout

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

BADGE_STYLE = {
    "OK": "background:#2e7d32;color:white;",
    "NG": "background:#c62828;color:white;",
    "UNCERTAIN": "background:#ef6c00;color:white;",
    None: "background:#757575;color:white;",
}


def header_html(entry: SampleEntry | None, verdict: str | None) -> str:
    """Rich-text line above the image: name, GT, raw image score and the verdict badge."""
    if entry is None:
        return "<span style='color:#888'>No sample selected</span>"
    parts = [f"<b>{entry.name}</b>"]
    if entry.split:
        parts.append(f"<span style='color:#666'>{entry.split}</span>")
    if entry.label is not None:
        colour = "#c62828" if entry.is_defect else "#2e7d32"
        parts.append(f"GT: <span style='color:{colour}'>{entry.label}</span>")
    if entry.image_score is not None:
        parts.append(f"score <b>{entry.image_score:.4g}</b>")
        badge = verdict or "—"
        parts.append(
            f"<span style='{BADGE_STYLE.get(verdict, BADGE_STYLE[None])}font-weight:bold;'>&nbsp;{badge}&nbsp;</span>"
        )
    else:
        parts.append("<span style='color:#888'>not scored yet</span>")
    return " &nbsp;·&nbsp; ".join(parts)


def timing_text(result) -> str:
    """Per-stage scoring times of a result, e.g. "scored in 1.20 s: features 0.30 s, knn 0.80 s"."""
    if result is None or getattr(result, "seconds", None) is None:
        return ""
    parts = [f"{k} {v:.2f} s" for k, v in (getattr(result, "timings", None) or {}).items() if v >= 0.005]
    return f"scored in {result.seconds:.2f} s" + (": " + ", ".join(parts) if parts else "")


def part_mask(result, on_original: bool) -> np.ndarray | None:
    """H×W bool of the part in the view: the scored sample's valid 3D points (the preprocessing
    zeroes the background), carried back by its grid when the view shows the original image;
    None when unknown (unscored or no point cloud)."""
    valid = getattr(result, "valid", None) if result is not None else None
    grid = getattr(result, "grid", None)
    if valid is None or not on_original or grid is None:
        return valid
    return grid.mask_to_original(valid)


class ImageView(QWidget):
    """pyqtgraph view of the current sample. Reads ``state``; its controls write ``state.display``."""

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        self._amap: np.ndarray | None = None
        self._gt: np.ndarray | None = None
        self._hover: tuple[int, int] | None = None
        self._shown = None  # (entry, result, loaded original) that refresh_sample drew last

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setObjectName("imageHeader")

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("#1e1e1e")
        self.view = self.canvas.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.base_item = pg.ImageItem()
        self.heat_item = pg.ImageItem()
        self.pred_item = pg.ImageItem()
        self.gt_item = pg.ImageItem()
        for z, item in enumerate((self.base_item, self.heat_item, self.gt_item, self.pred_item)):
            item.setZValue(z)
            self.view.addItem(item)
        self.colorbar = pg.ColorBarItem(
            values=(0.0, 1.0), colorMap=pg.colormap.get(state.display.colormap), interactive=False, width=14
        )
        self.colorbar.setToolTip("Colour range of the anomaly map (raw score units)")
        self.canvas.addItem(self.colorbar, row=0, col=1)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setMinimumWidth(40)
        self.opacity_slider.setMaximumWidth(90)
        self.opacity_slider.setToolTip("Heatmap opacity (maximum, with Fade)")
        self.opacity_slider.valueChanged.connect(lambda v: state.set_display(opacity=v / 100.0))
        self.heat_check = QCheckBox("Heatmap")
        self.pred_check = QCheckBox("Prediction")
        self.pred_check.setToolTip("Outline of pixels at or above the pixel threshold (cyan)")
        self.gt_check = QCheckBox("GT")
        self.gt_check.setToolTip("Outline of the ground-truth defect mask (green)")
        self.hide_check = QCheckBox("≥ thr")
        self.hide_check.setToolTip("Hide the heatmap where the score is below the pixel threshold")
        self.fade_check = QCheckBox("Fade")
        self.fade_check.setToolTip("Fade low scores: heatmap opacity grows with the score, so normal areas show the image")
        self.fade_check.toggled.connect(lambda on: state.set_display(fade_low_scores=on))
        self.heat_check.toggled.connect(lambda on: state.set_display(show_heatmap=on))
        self.pred_check.toggled.connect(lambda on: state.set_display(show_prediction=on))
        self.gt_check.toggled.connect(lambda on: state.set_display(show_ground_truth=on))
        self.hide_check.toggled.connect(lambda on: state.set_display(hide_below_threshold=on))

        self.readout = QLabel(" ")
        self.readout.setObjectName("readout")
        self.readout.setMinimumWidth(10)
        self.readout.setWordWrap(True)  # a narrow window wraps the readout instead of widening
        self.header.setMinimumWidth(10)
        self.header.setWordWrap(True)

        controls = FlowLayout()  # wraps onto a second row in a narrow window
        controls.addWidget(self.heat_check)
        controls.addWidget(self.opacity_slider)
        for w in (self.fade_check, self.pred_check, self.gt_check, self.hide_check):
            controls.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(3)
        layout.addWidget(self.header)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(controls)
        layout.addWidget(self.readout)

        state.current_changed.connect(lambda _i: self.refresh_sample())
        state.original_loaded.connect(lambda i: self.refresh_sample() if i == state.current else None)
        state.thresholds_changed.connect(self.refresh_thresholds)
        state.display_changed.connect(self.refresh_display)
        state.colour_range_changed.connect(self.refresh_display)
        self._sync_controls()
        self.refresh_sample()

    # ------------------------------------------------------------------ state -> widget
    def _sync_controls(self):
        d = self.state.display
        for widget, value in (
            (self.opacity_slider, round(d.opacity * 100)),
            (self.heat_check, d.show_heatmap),
            (self.pred_check, d.show_prediction),
            (self.gt_check, d.show_ground_truth),
            (self.hide_check, d.hide_below_threshold),
            (self.fade_check, d.fade_low_scores),
        ):
            with signals_blocked(widget):
                if isinstance(widget, QSlider):
                    widget.setValue(value)
                else:
                    widget.setChecked(value)

    def refresh_sample(self):
        """New current sample: base image, heatmap, outlines, header. Drawn on the original
        image once the sample is loaded (state.original), on the model grid until then.
        Nothing is redrawn (and the zoom stays) when the view already shows this very sample,
        result and loaded original, e.g. when a new model clears results the current sample
        did not have; threshold and display changes have their own refreshes."""
        entry = self.state.current_entry
        result = entry.result if entry is not None else None
        original = self.state.original(entry)
        shown = (entry, result, original)
        if self._shown is not None and all(a is b for a, b in zip(shown, self._shown)):
            return
        self._shown = shown
        drawn = None if result is None and original is None else render.layers(result, original)
        self._amap = None if drawn is None else drawn.amap
        self._gt = None if drawn is None else drawn.gt
        base = None if drawn is None else drawn.base
        if base is None:
            self.base_item.clear()
        else:
            self.base_item.setImage(np.ascontiguousarray(base), autoLevels=False, levels=(0, 255))
        if self._gt is not None and np.any(self._gt):
            self.gt_item.setImage(render.outline_rgba(render.outline(self._gt, 1), render.GROUND_TRUTH_RGB), autoLevels=False, levels=(0, 255))
        else:
            self.gt_item.clear()
        self._draw_heat()
        self._draw_prediction()
        self._apply_visibility()
        self.header.setText(header_html(entry, self.state.verdict(entry) if entry else None))
        self.header.setToolTip(timing_text(result))
        if base is not None:
            self._fit_view(part_mask(result, drawn.on_original), base.shape[:2])
        self._update_readout()

    def refresh_thresholds(self):
        """Pixel/image threshold moved: outline, (optionally) heatmap alpha, header, read-out."""
        if self.state.display.hide_below_threshold:
            self._draw_heat()
        self._draw_prediction()
        entry = self.state.current_entry
        self.header.setText(header_html(entry, self.state.verdict(entry) if entry else None))
        self._update_readout()

    def refresh_display(self):
        self._sync_controls()
        self._draw_heat()
        self._apply_visibility()
        self._update_readout()

    def _draw_heat(self):
        rng = self.state.display_range()
        cmap_name = self.state.display.colormap
        if rng is not None:
            self.colorbar.setColorMap(pg.colormap.get(cmap_name))
            self.colorbar.setLevels(values=rng)
        if self._amap is None or rng is None:
            self.heat_item.clear()
            return
        below = self.state.thresholds.pixel if self.state.display.hide_below_threshold else None
        heat = render.colorize(self._amap, rng, lut(cmap_name), below, self.state.display.fade_low_scores)
        self.heat_item.setImage(heat, autoLevels=False, levels=(0, 255))

    def _draw_prediction(self):
        if self._amap is None or self.state.thresholds.pixel is None:
            self.pred_item.clear()
            return
        edge = render.outline(render.predicted_mask(self._amap, self.state.thresholds.pixel), 1)
        self.pred_item.setImage(render.outline_rgba(edge, render.PREDICTION_RGB), autoLevels=False, levels=(0, 255))

    def _apply_visibility(self):
        d = self.state.display
        self.heat_item.setVisible(d.show_heatmap)
        self.heat_item.setOpacity(d.opacity)
        self.pred_item.setVisible(d.show_prediction)
        self.gt_item.setVisible(d.show_ground_truth)

    def _fit_view(self, valid, shape):
        """Frame the part: the bounding box of ``valid`` (:func:`part_mask`) plus a margin, or
        the whole image without one."""
        h, w = shape
        if valid is not None and np.any(valid):
            rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            m = 0.08 * max(r1 - r0, c1 - c0)
            self.view.setRange(xRange=(max(0, c0 - m), min(w, c1 + m)), yRange=(max(0, r0 - m), min(h, r1 + m)), padding=0)
        else:
            self.view.setRange(xRange=(0, w), yRange=(0, h), padding=0.01)

    # ------------------------------------------------------------------ read-out
    def _on_mouse_moved(self, scene_pos: QPointF):
        if self._amap is None:
            return
        p = self.view.mapSceneToView(scene_pos)
        x, y = int(np.floor(p.x())), int(np.floor(p.y()))
        h, w = self._amap.shape
        self._hover = (x, y) if 0 <= x < w and 0 <= y < h else None
        self._update_readout()

    def set_hover(self, x: int | None, y: int | None):
        """Show the read-out for pixel (x, y) (column, row); None clears it."""
        self._hover = None if x is None or y is None else (int(x), int(y))
        self._update_readout()

    def readout_text(self) -> str:
        return self.readout.text()

    def _update_readout(self):
        if self._amap is None:
            self.readout.setText("Move the mouse over the image to read the anomaly score.")
            return
        if self._hover is None:
            rng = self.state.display_range()
            rng_txt = f"colour range {rng[0]:.4g} – {rng[1]:.4g}" if rng else ""
            d = self.state.display
            mode = " (per-sample stretch)" if d.per_sample_range else " (from the pixel threshold)" if d.from_threshold and self.state.thresholds.pixel is not None else " (fixed)"
            entry = self.state.current_entry
            secs = getattr(entry.result, "seconds", None) if entry is not None and entry.result is not None else None
            took = f" · scored in {secs:.2f} s" if secs else ""
            self.readout.setText(f"Map max {float(self._amap.max()):.4g} · {rng_txt}{mode if rng else ''}{took}")
            return
        x, y = self._hover
        value = float(self._amap[y, x])
        norm = normalised(value, self.state.display_range())
        thr = self.state.thresholds.pixel
        where = ""
        if thr is not None:
            where = " · <b style='color:#c62828'>defect region</b>" if value >= thr else " · below pixel threshold"
        norm_txt = f" ({norm:.2f} of range)" if norm is not None else ""
        gt = ""
        if self._gt is not None:
            gt = " · GT defect" if bool(self._gt[y, x]) else ""
        self.readout.setText(f"x {x}, y {y}: score <b>{value:.4g}</b>{norm_txt}{where}{gt}")
