"""Log / notification area: timestamped messages; errors stand out and can show details."""

from __future__ import annotations

import html
import time

from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QTextEdit, QVBoxLayout, QWidget

LEVEL_COLOURS = {"info": "#333333", "success": "#2e7d32", "warning": "#e65100", "error": "#c62828"}


class LogPanel(QWidget):
    """Append-only log. ``log(text, level)`` with level info / success / warning / error."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = QTextEdit()
        self.view.setReadOnly(True)
        self.view.setObjectName("logView")
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        self.details.setMaximumHeight(160)
        self.details_button = QPushButton("Error details")
        self.details_button.setEnabled(False)
        self.details_button.clicked.connect(lambda: self.details.setVisible(not self.details.isVisible()))
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.details_button)
        buttons.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        self.entries: list[tuple[str, str]] = []

    def log(self, text: str, level: str = "info", details: str = "") -> None:
        self.entries.append((level, text))
        colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS["info"])
        stamp = time.strftime("%H:%M:%S")
        weight = "bold" if level in ("error", "warning") else "normal"
        self.view.append(
            f"<span style='color:#999'>{stamp}</span> "
            f"<span style='color:{colour};font-weight:{weight}'>{html.escape(text)}</span>"
        )
        if details:
            self.details.setPlainText(details)
            self.details_button.setEnabled(True)

    def clear(self) -> None:
        self.entries.clear()
        self.view.clear()
        self.details.clear()
        self.details.setVisible(False)
        self.details_button.setEnabled(False)
