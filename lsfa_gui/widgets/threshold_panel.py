"""Threshold panel: image-level (part verdict) and pixel-level (defect region) thresholds.

Each row has a slider and a spin box in raw score units and a normalised read-out (position in
the slider's range). The image slider spans the image scores the histogram shows (its zoom, by
default the scores without outliers) and always the current threshold. Moving either writes ``state.thresholds``; nothing re-runs the model. The
rows hold no threshold of their own: they show the state's values whenever it changes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from lsfa_gui.state import InspectionState, normalised
from lsfa_gui.thresholding import apply_auto_thresholds
from lsfa_gui.widgets import result_refresh
from lsfa_gui.widgets.band_control import UncertainBandControl

SLIDER_STEPS = 1000


class ThresholdRow(QWidget):
    """Slider + raw spin box + normalised label + Auto button for one threshold."""

    value_edited = Signal(float)  # user changed the value (raw units)
    auto_clicked = Signal()

    def __init__(self, title: str, tooltip: str, parent=None):
        super().__init__(parent)
        self.range: tuple[float, float] = (0.0, 1.0)  # raw values at the slider's ends
        self.title = QLabel(f"<b>{title}</b>")
        self.title.setToolTip(tooltip)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip(tooltip)
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(4)
        self.spin.setKeyboardTracking(False)
        self.spin.setRange(-1e9, 1e9)
        self.spin.setToolTip("Threshold in raw score units (score ≥ threshold = defect)")
        self.spin.setMinimumWidth(90)
        self.norm_label = QLabel("–")
        self.norm_label.setToolTip("Normalised: position of the threshold in the score range shown")
        self.norm_label.setStyleSheet("color:#666")
        self.auto_button = QPushButton("Auto")
        self.auto_button.setMaximumWidth(60)
        self.auto_button.clicked.connect(self.auto_clicked)
        self.slider.valueChanged.connect(self._on_slider)
        self.spin.valueChanged.connect(self._on_spin)

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(2)
        grid.addWidget(self.title, 0, 0, 1, 3)
        grid.addWidget(self.slider, 1, 0)
        grid.addWidget(self.spin, 1, 1)
        grid.addWidget(self.auto_button, 1, 2)
        grid.addWidget(self.norm_label, 2, 0, 1, 3)
        grid.setColumnStretch(0, 1)

    # ------------------------------------------------------------------ mapping
    def _to_slider(self, value: float) -> int:
        lo, hi = self.range
        return int(round((value - lo) / (hi - lo) * SLIDER_STEPS)) if hi > lo else 0

    def _from_slider(self, pos: int) -> float:
        lo, hi = self.range
        return lo + (hi - lo) * pos / SLIDER_STEPS

    def set_range(self, lo: float, hi: float):
        """The raw values at the slider's ends (shown from the next ``set_value``)."""
        self.range = (float(lo), float(hi))
        step = (hi - lo) / 200.0 if hi > lo else 0.01
        self.spin.setSingleStep(step)

    def contains(self, value: float | None) -> bool:
        lo, hi = self.range
        return value is None or lo <= value <= hi

    def set_value(self, value: float | None):
        """Show ``value`` (raw) without emitting ``value_edited``."""
        enabled = value is not None
        for w in (self.slider, self.spin):
            w.setEnabled(enabled)
        if value is not None:
            with signals_blocked(self.slider), signals_blocked(self.spin):
                self.slider.setValue(max(0, min(SLIDER_STEPS, self._to_slider(value))))
                self.spin.setValue(value)
        norm = normalised(value, self.range)
        lo, hi = self.range
        self.norm_label.setText("–" if norm is None else f"normalised {norm:.3f}  (range {lo:.4g} – {hi:.4g})")

    # ------------------------------------------------------------------ user edits
    def _on_slider(self, pos: int):
        value = self._from_slider(pos)
        self.value_edited.emit(value)

    def _on_spin(self, value: float):
        self.value_edited.emit(float(value))


class ThresholdPanel(QWidget):
    """Both thresholds, auto buttons, reset-to-model and save-to-model-file."""

    save_requested = Signal()
    message = Signal(str)  # how an automatic threshold was chosen, errors

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        self.image_row = ThresholdRow(
            "Part verdict (image threshold)",
            "A sample is NG when its image score is at or above this value (raw units).",
        )
        self.pixel_row = ThresholdRow(
            "Defect region (pixel threshold)",
            "Pixels / points at or above this value form the predicted defect region (raw units).",
        )
        self.image_row.value_edited.connect(lambda v: state.set_thresholds(image=v))
        self.pixel_row.value_edited.connect(lambda v: state.set_thresholds(pixel=v))
        self.image_row.auto_clicked.connect(lambda: self._apply_auto(image=True))
        self.pixel_row.auto_clicked.connect(lambda: self._apply_auto(pixel=True))
        self.image_row.auto_button.setToolTip("Best F1 on labelled samples, else the 0.99 quantile of good scores")
        self.pixel_row.auto_button.setToolTip("Best pixel F1 on samples with masks, else the 0.999 quantile of good pixel scores")

        self.band = UncertainBandControl(state)
        self.min_area = QSpinBox()
        self.min_area.setRange(0, 10_000_000)
        self.min_area.setSuffix(" px")
        self.min_area.setSpecialValueText("off")
        self.min_area.setToolTip("A part whose largest defect region (connected pixels at or above the pixel "
                                 "threshold, in original image pixels) is smaller than this stays OK; 0 = off")
        self.min_area.valueChanged.connect(state.set_min_defect_area)
        min_area_row = QHBoxLayout()
        min_area_row.addWidget(QLabel("Minimum defect area"))
        min_area_row.addStretch(1)
        min_area_row.addWidget(self.min_area)

        self.reset_button = QPushButton("Reset to model")
        self.reset_button.setToolTip("Restore the thresholds stored in the model file")
        self.reset_button.clicked.connect(self.reset_to_model)
        self.save_button = QPushButton("Save thresholds to model file")
        self.save_button.clicked.connect(self.save_requested)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setObjectName("thresholdInfo")

        box = QGroupBox()
        inner = QVBoxLayout(box)
        inner.addWidget(self.image_row)
        inner.addSpacing(6)
        inner.addWidget(self.pixel_row)
        inner.addWidget(self.band)
        inner.addLayout(min_area_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(box)
        layout.addLayout(buttons)
        layout.addWidget(self.info)
        layout.addStretch(1)

        state.thresholds_changed.connect(self.refresh)
        state.samples_reset.connect(self.refresh_ranges)
        self.refresh_ranges_soon = result_refresh.on_results(self.refresh_ranges, self)  # a burst of results: once
        state.sample_updated.connect(lambda _i: self.refresh_ranges_soon())
        state.colour_range_changed.connect(self.refresh_ranges)
        state.score_view_changed.connect(self.refresh_ranges)
        state.model_changed.connect(self.refresh_model)
        self.refresh_model()

    # ------------------------------------------------------------------ state -> widget
    def refresh_ranges(self):
        img = self.state.image_slider_range()  # follows the histogram's view (its zoom)
        if img is not None:
            self.image_row.set_range(*img)
        rng = self.state.colour_range
        if rng is not None:
            lo, hi = rng
            if self.state.thresholds.pixel is not None:
                lo, hi = min(lo, self.state.thresholds.pixel), max(hi, self.state.thresholds.pixel)
            self.pixel_row.set_range(lo, hi)
        self._show_values()

    def refresh(self):
        """The thresholds changed: show them; a value outside its slider's range (set by Auto,
        Reset, the histogram line or typed in) widens the range first. A value inside leaves
        the range as it is, so a slider's scale never moves under the mouse."""
        t = self.state.thresholds
        if self.image_row.contains(t.image) and self.pixel_row.contains(t.pixel):
            self._show_values()
        else:
            self.refresh_ranges()

    def _show_values(self):
        self.image_row.set_value(self.state.thresholds.image)
        self.pixel_row.set_value(self.state.thresholds.pixel)
        with signals_blocked(self.min_area):
            self.min_area.setValue(self.state.thresholds.min_defect_area)

    def refresh_model(self):
        has_model = bool(self.state.model.path)
        self.save_button.setEnabled(has_model)
        seeded = self.state.model.seeded
        self.reset_button.setEnabled(seeded.image is not None or seeded.pixel is not None)
        self.refresh_ranges()

    # ------------------------------------------------------------------ actions
    def _apply_auto(self, image: bool = False, pixel: bool = False):
        self._say(apply_auto_thresholds(self.state, image=image, pixel=pixel))
        self.refresh_ranges()  # fit the sliders to the scores again around the new value

    def auto_image(self):
        """Auto image threshold (labelled "optimistic" when tuned on the labelled samples shown)."""
        self._apply_auto(image=True)

    def auto_pixel(self):
        self._apply_auto(pixel=True)

    def reset_to_model(self):
        seeded = self.state.model.seeded
        self.state.set_thresholds(image=seeded.image, pixel=seeded.pixel)
        self.state.set_uncertain_until(seeded.uncertain_until)
        self.state.set_min_defect_area(seeded.min_defect_area)
        self.refresh_ranges()
        self._say(["Thresholds reset to the values stored in the model."])

    def _say(self, lines: list[str]):
        self.info.setText("\n".join(lines))
        for text in lines:
            self.message.emit(text)
