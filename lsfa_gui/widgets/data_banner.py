"""A warning banner above the views when the open model does not fit the data being scored
(core.compat findings): the findings, a *Fit on this data* button and a close button."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton

STYLE = "QFrame#dataBanner { background: #fff3e0; border: 1px solid #e65100; border-radius: 3px; }" \
        "QFrame#dataBanner QLabel { color: #8a3200; }"


class DataBanner(QFrame):
    """Hidden until :meth:`show_findings`; ``fit_requested`` when the user asks to fit on this data."""

    fit_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("dataBanner")
        self.setStyleSheet(STYLE)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_button = QPushButton("Fit on this data")
        self.fit_button.setToolTip("Fit a new model on the open dataset's good training samples")
        self.fit_button.clicked.connect(self.fit_requested)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Hide this warning")
        close.setAutoRaise(True)
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.fit_button)
        layout.addWidget(close)
        self.messages: list[str] = []
        self.hide()

    def show_findings(self, messages: list[str]) -> None:
        """Add these findings (one line each) and show the banner."""
        self.messages += [m for m in messages if m not in self.messages]
        if not self.messages:
            return
        lines = "<br>".join(f"• {m}" for m in self.messages)
        self.label.setText(f"<b>This model may not fit this data.</b><br>{lines}")
        self.show()

    def clear(self) -> None:
        self.messages = []
        self.label.clear()
        self.hide()
