"""Status bar: message, active model, progress bar with ETA, Cancel button."""

from __future__ import annotations

import math
import re

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from core.progress import ProgressEvent

FIT_STEPS = 6
# The engine's stage names (core.pipeline, core.adaptation, core.scoring, core.self_check…) in
# plain words, with the step of a fit they are (None: not a fit step). Unknown names show as they are.
PLAIN_STAGES: dict[str, tuple[str, int | None]] = {
    "Reading dataset": ("Reading the dataset", None),
    "Reading samples": ("Reading the samples", None),
    "Demo data": ("Making the demo data", None),
    "Generating parts data": ("Making the test parts data", None),
    "Measuring the parts": ("Reading the good training images", 1),
    "Loading training samples": ("Reading the good training images", 1),
    "Extracting features": ("Looking at the good parts", 2),
    "Adapting features": ("Adapting the features to this product", 3),
    "Extracting features of turned training images": ("Looking at the good parts turned by 90° steps", 4),
    "Extracting features of shifted training images": ("Looking at the good parts shifted by half a cell", 4),
    "Measuring the patches' distances for the position channel": ("Noting where on the part each patch lies", 4),
    "Coreset selection": ("Remembering what normal looks like", 4),
    "Loading calibration samples": ("Calibrating on good parts", 5),
    "Extracting features of calibration samples": ("Calibrating on good parts", 5),
    "Calibrating": ("Calibrating on good parts", 5),
    "Checking approximate search": ("Setting up a faster search, checked against the exact one", 5),
    "Self-check on synthetic defects": ("Testing the model on made-up defects", 6),
    "Self-check: features of good samples": ("Testing the model on made-up defects", 6),
    "Self-check: features of synthetic defects": ("Testing the model on made-up defects", 6),
    "Self-check: synthetic defects for the estimate": ("Testing the model on made-up defects", 6),
    "Self-check: training parts scored leave-one-out": ("Checking good training parts one at a time", 6),
    "Scoring held-out good samples": ("Calibrating on good parts", 5),  # an ensemble's own calibration
    "Scoring synthetic defects": ("Testing the model on made-up defects", 6),
    "Scoring synthetic defects for the estimate": ("Testing the model on made-up defects", 6),
    "Done": ("Finishing", None),
    "Saving model": ("Saving the model", None),
    "Loading model": ("Loading the model", None),
    "Scoring": ("Inspecting samples", None),
    "Scoring test samples": ("Inspecting samples", None),
    "Watching": ("Watching the folder", None),
    "Metrics": ("Computing the metrics", None),
    "Export overlays": ("Exporting overlay images", None),
}


# A part of a longer task (core.progress.Progress.prefixed): "Model 1 of 2 (224 px): <stage>".
PART_PREFIX = re.compile(r"^((?:Model \d+ of \d+ \(\d+ px\))|Ensemble): (.+)$")


def plain_stage(stage: str) -> str:
    """The stage name a user reads, e.g. "Adapting the features to this product (step 3 of 6)";
    an ensemble's stages keep their part: "Model 2 of 2 (320 px): Looking at the good parts (step 2 of 6)"."""
    part = PART_PREFIX.match(stage)
    if part:
        return f"{part.group(1)}: {plain_stage(part.group(2))}"
    text, step = PLAIN_STAGES.get(stage, (stage, None))
    return f"{text} (step {step} of {FIT_STEPS})" if step else text


def plain_message(stage: str, message: str) -> str:
    """The detail worth showing: adaptation's loss figures become "round N"."""
    if stage == "Adapting features":
        epoch = re.search(r"epoch (\d+)", message)
        return f"round {epoch.group(1)}" if epoch else ""
    return message


def format_seconds(seconds: float) -> str:
    """"45 s", "3 min", "1 h 5 min"."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


class TimeLeft:
    """Seconds left in the running stage from a smoothed rate: an exponential moving average
    (time constant TAU_S seconds) of the progress per second, shown only from MIN_FRACTION of
    the stage on, so the figure does not jump with each uneven step."""

    MIN_FRACTION = 0.05
    TAU_S = 10.0

    def __init__(self) -> None:
        self.reset()

    def reset(self, stage: str | None = None) -> None:
        self.stage, self.rate, self.last = stage, None, None

    def update(self, event: ProgressEvent) -> float | None:
        """The estimate after ``event`` (None: not yet known or not shown)."""
        if event.stage != self.stage:
            self.reset(event.stage)
        if not event.total:
            return None
        f, t = event.fraction, event.elapsed_s
        if self.rate is None:
            if f < self.MIN_FRACTION or t <= 0:
                return None
            self.rate = f / t  # the mean rate so far starts the average
        elif self.last is not None and t > self.last[1]:
            f0, t0 = self.last
            weight = 1.0 - math.exp(-(t - t0) / self.TAU_S)
            self.rate += weight * ((f - f0) / (t - t0) - self.rate)
        self.last = (f, t)
        return (1.0 - f) / self.rate if self.rate > 0 else None


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
        self.time_left = TimeLeft()

    def job_started(self, title: str) -> None:
        self.time_left.reset()
        self.stage_label.setText(f"{title}…")
        self.progress.setRange(0, 0)  # busy indicator until the first progress event
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)

    def job_progress(self, event: ProgressEvent) -> None:
        text = plain_stage(event.stage)
        eta = self.time_left.update(event)
        # QProgressBar.setValue repaints at once when its text changes; with the 3D (OpenGL)
        # view in the window each repaint composes the whole window (tens of ms in software GL),
        # so the bar is repainted with the label, in the event loop's next paint
        self.progress.setUpdatesEnabled(False)
        if event.total:
            text += f" {event.done}/{event.total}"
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.fraction))
            self.progress.setFormat(f"{100 * event.fraction:.0f}%" + (f" · about {format_seconds(eta)} left" if eta is not None else ""))
        else:
            self.progress.setRange(0, 0)
        self.progress.setUpdatesEnabled(True)  # schedules the repaint
        message = plain_message(event.stage, event.message)
        if message:
            text += f" · {message}"
        self.stage_label.setText(text)

    def job_ended(self, text: str) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(False)
        self.stage_label.setText(text)

    def set_model(self, text: str) -> None:
        self.model_label.setText(text)
