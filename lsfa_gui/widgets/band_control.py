"""The uncertain band's upper end as a checkbox + spin box bound to ``InspectionState``.

Parts scoring from the image threshold up to (not including) this value are UNCERTAIN, NG at or
above it (core.thresholds.verdict). The control follows the state (a model's seeded band, Reset,
another panel's control), so every copy of it shows the same band.
"""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QWidget
from superqt.utils import signals_blocked

from lsfa_gui.state import InspectionState


class UncertainBandControl(QWidget):
    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        self.check = QCheckBox("Uncertain band up to")
        self.check.setToolTip("Parts scoring from the image threshold up to this value are UNCERTAIN (check them by "
                              "hand), NG at or above it. A fit seeds it at the highest held-out good score.")
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(4)
        self.spin.setRange(-1e9, 1e9)
        self.spin.setSingleStep(0.01)
        self.spin.setEnabled(False)
        self.check.toggled.connect(self._edited)
        self.spin.valueChanged.connect(self._edited)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.check)
        row.addStretch(1)
        row.addWidget(self.spin)
        state.thresholds_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Show the state's band (signals blocked: showing is not editing)."""
        upper = self.state.thresholds.uncertain_until
        with signals_blocked(self.check), signals_blocked(self.spin):
            self.check.setChecked(upper is not None)
            self.spin.setEnabled(upper is not None)
            if upper is not None:
                self.spin.setValue(upper)

    def _edited(self, *_args) -> None:
        on = self.check.isChecked()
        self.spin.setEnabled(on)
        image = self.state.thresholds.image
        if on and image is not None and self.spin.value() <= image:  # a band starts above the threshold
            with signals_blocked(self.spin):
                self.spin.setValue(image * 1.1 if image > 0 else image + 1.0)
        self.state.set_uncertain_until(self.spin.value() if on else None)
