"""Status bar: message, active model, progress bar with ETA, Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from core.progress import ProgressEvent


class JobStatusBar(QStatusBar):
    """Shows the running job's stage and progress; Cancel is enabled only while busy."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.stage_label = QLabel("Ready")
        self.model_label = QLabel("No model")
        self.model_label.setStyleSheet("color:#555;padding:0 8px;")
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(False)
        self.addWidget(self.stage_label, 1)
        self.addPermanentWidget(self.model_label)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.cancel_button)

    def job_started(self, title: str) -> None:
        self.stage_label.setText(f"{title}…")
        self.progress.setRange(0, 0)  # busy indicator until the first progress event
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)

    def job_progress(self, event: ProgressEvent) -> None:
        text = event.stage
        if event.total:
            text += f" {event.done}/{event.total}"
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.fraction))
            eta = event.eta_s
            self.progress.setFormat(f"{100 * event.fraction:.0f}%" + (f" · {eta:.0f} s left" if eta is not None and event.done else ""))
        else:
            self.progress.setRange(0, 0)
        if event.message:
            text += f" · {event.message}"
        self.stage_label.setText(text)

    def job_ended(self, text: str) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(False)
        self.stage_label.setText(text)

    def set_model(self, text: str) -> None:
        self.model_label.setText(text)
