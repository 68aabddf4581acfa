"""The status bar in plain words: stage names, a time-left estimate that does not jump."""

import numpy as np
import pytest

from core.progress import ProgressEvent
from lsfa_gui.widgets.status_bar import PLAIN_STAGES, JobStatusBar, TimeLeft, plain_message, plain_stage


def test_engine_stage_names_read_as_plain_steps():
    assert plain_stage("Adapting features") == "Adapting the features to this product (step 3 of 6)"
    assert plain_stage("Scoring") == "Inspecting samples"
    assert plain_stage("Something new") == "Something new"  # unknown names pass through
    assert (plain_stage("Model 2 of 2 (320 px): Extracting features")
            == "Model 2 of 2 (320 px): Looking at the good parts (step 2 of 6)")  # an ensemble's parts
    assert plain_stage("Ensemble: Scoring synthetic defects") == "Ensemble: Testing the model on made-up defects (step 6 of 6)"
    assert plain_message("Adapting features", "epoch 3 · loss 0.412 (la 0.300, ga 0.020, lc 0.050, gc 0.040)") == "round 3"
    assert plain_message("Scoring", "tire_007") == "tire_007"


def test_the_mapping_covers_the_stages_the_engine_reports():
    """Each stage name that core passes to progress.update is in the table (no jargon leaks)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "core"
    names = set()
    for path in root.rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'update\(\s*"([^"]+)"', text))
        names |= set(re.findall(r'^\s*STAGE\s*=\s*"([^"]+)"', text, re.M))
        names |= set(re.findall(r'stage(?::\s*str)?\s*=\s*"([^"]+)"', text))
        names |= set(re.findall(r'\b(?:p|progress),\s*"([^"]+)"', text))  # a stage handed on: f(x, p, "Stage")
    inner = {"DINO ViT-B/8 features", "Point-MAE features"}  # run on a silent progress (tokens.py)
    assert {"Adapting features", "Coreset selection", "Loading training samples", "Calibrating"} <= names
    assert sorted(names - inner - set(PLAIN_STAGES)) == []


def test_the_status_bar_shows_the_plain_stage_and_no_loss_figures(qtbot):
    bar = JobStatusBar()
    qtbot.addWidget(bar)
    bar.job_started("Fitting")
    bar.job_progress(ProgressEvent("Adapting features", 40, 400, "epoch 3 · loss 0.412 (la 0.300, ga 0.020)", 20.0))
    text = bar.stage_label.text()
    assert text.startswith("Adapting the features to this product (step 3 of 6) 40/400 · round 3")
    assert "loss" not in text and "la " not in text


def test_a_progress_step_repaints_the_bar_with_the_label_later_not_at_once(qtbot):
    """The bar shows the new step but is not repainted inside the call (QProgressBar would
    repaint at once, a whole-window composition with the 3D view); it is left repaintable."""
    bar = JobStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    qtbot.waitExposed(bar)
    bar.job_started("Fitting")
    from PySide6.QtCore import QEvent, QObject

    painted = []

    class Paints(QObject):
        def eventFilter(self, _obj, event):
            if event.type() == QEvent.Type.Paint:
                painted.append(1)
            return False

    paints = Paints()
    bar.progress.installEventFilter(paints)
    bar.job_progress(ProgressEvent("Scoring", 20, 400, "", 1.0))
    qtbot.waitUntil(lambda: bool(painted), timeout=2000)
    painted.clear()
    bar.job_progress(ProgressEvent("Scoring", 40, 400, "", 2.0))
    assert painted == [] and bar.progress.updatesEnabled()
    assert bar.progress.value() == 100 and bar.progress.format().startswith("10%")
    qtbot.waitUntil(lambda: bool(painted), timeout=2000)  # repainted in the next paint


def test_no_time_left_before_five_percent():
    left = TimeLeft()
    assert left.update(ProgressEvent("Scoring", 1, 100, "", 1.0)) is None
    assert left.update(ProgressEvent("Scoring", 4, 100, "", 4.0)) is None
    assert left.update(ProgressEvent("Scoring", 5, 100, "", 5.0)) == pytest.approx(95.0)
    # a new stage starts over
    assert left.update(ProgressEvent("Calibrating", 1, 100, "", 1.0)) is None


def test_the_time_left_follows_uneven_steps_smoothly():
    """Steps that alternate 0.2 s and 1.8 s (mean 1 s): the smoothed estimate stays near the true
    time left, where one based on the last step alone swings by a factor of 9."""
    left, t, n = TimeLeft(), 0.0, 200
    errors, last_step_estimates = [], []
    for done in range(1, n + 1):
        step = 0.2 if done % 2 else 1.8
        t += step
        eta = left.update(ProgressEvent("Extracting features", done, n, "", t))
        last_step_estimates.append((n - done) * step)
        if done >= 20 and done < n - 20:
            assert eta is not None
            errors.append(abs(eta - (n - done) * 1.0) / ((n - done) * 1.0))
    assert max(errors) < 0.2
    ratio = np.array(last_step_estimates[20:-20:2]) / np.array(last_step_estimates[21:-20:2])
    assert ratio.min() < 0.2  # the jumpy estimate this replaces


def test_the_time_left_catches_up_when_the_rate_changes():
    """After the rate halves, the estimate moves to the new rate (an average since the start
    of the stage never would)."""
    left, t = TimeLeft(), 0.0
    for done in range(1, 181):
        t += 1.0 if done <= 60 else 2.0
        event = ProgressEvent("Scoring", done, 200, "", t)
        eta = left.update(event)
    assert eta == pytest.approx(20 * 2.0, rel=0.1)  # 20 steps of 2 s left
    assert event.eta_s < 0.85 * 20 * 2.0  # the stage-average estimate is still off
