"""The uncertain band in the GUI: a model's seeded band is applied on load, shown in the
threshold panel and the watch panel (one state, two controls), restored by Reset and kept by
Save thresholds."""

import pytest

from lsfa_gui._testing import scored_state, synthetic_result
from lsfa_gui.state import NG, OK, UNCERTAIN

LABELS = ["good"] * 4 + ["crack"] * 2


@pytest.fixture
def state():
    # image threshold 0.6, pixel 0.5, band up to 0.9: crack scores ~1.0, good ~0.25
    return scored_state([synthetic_result(i, lab, size=64) for i, lab in enumerate(LABELS)], thresholds=(0.6, 0.5, 0.9))


def test_seeded_band_is_applied_and_shown_in_both_panels(qtbot, state):
    from lsfa_gui.widgets.threshold_panel import ThresholdPanel
    from lsfa_gui.widgets.watch_panel import WatchPanel

    panel, watch = ThresholdPanel(state), WatchPanel(state)
    qtbot.addWidget(panel)
    qtbot.addWidget(watch)
    assert state.thresholds.uncertain_until == 0.9
    for control in (panel.band, watch.band):
        assert control.check.isChecked() and control.spin.value() == pytest.approx(0.9)
    crack = state.entries[4]
    assert state.verdict(crack) == NG  # ~1.0 is above the band
    # widening the band in one panel shows in the other and moves the verdict
    wider = round(crack.image_score + 0.1, 2)  # the spin boxes show 4 decimals
    panel.band.spin.setValue(wider)
    assert watch.band.spin.value() == pytest.approx(wider) and state.thresholds.uncertain_until == pytest.approx(wider)
    assert state.verdict(crack) == UNCERTAIN
    assert state.verdict(state.entries[0]) == OK
    # switching the band off in the watch panel gives plain OK / NG everywhere
    watch.band.check.setChecked(False)
    assert state.thresholds.uncertain_until is None and not panel.band.check.isChecked()
    assert state.verdict(crack) == NG
    # Reset to model restores the seeded band
    panel.reset_button.click()
    assert state.thresholds.uncertain_until == 0.9 and watch.band.check.isChecked()


def test_turning_the_band_on_starts_it_above_the_image_threshold(qtbot, state):
    from lsfa_gui.widgets.threshold_panel import ThresholdPanel

    panel = ThresholdPanel(state)
    qtbot.addWidget(panel)
    panel.band.check.setChecked(False)
    panel.band.spin.setValue(0.1)  # disabled: no effect on the state
    assert state.thresholds.uncertain_until is None
    panel.band.check.setChecked(True)
    assert state.thresholds.uncertain_until > state.thresholds.image


def test_save_thresholds_keeps_the_band(tmp_path):
    """The model file written by Save thresholds carries the band; a band at or below the image
    threshold is no band."""
    from core.config import FitConfig
    from core.demo import generate_demo_dataset
    from core.model_io import load_model, save_model
    from core.pipeline import fit
    from core.progress import Progress
    from lsfa_gui import tasks

    root = generate_demo_dataset(tmp_path / "d", seed=3, categories=["puck"], size=96, n_train=4, n_validation=0,
                                 n_test_good=1, n_test_per_defect=0)
    model = fit(root, "puck", FitConfig(adapt=False, self_check=False, cache_dir=str(tmp_path / "c")))
    path = tmp_path / "m.lsfa"
    save_model(model, path)
    saved = tasks.save_model_job(model, path, 1.0, 0.8, 0, 1.5)(Progress())
    assert saved.thresholds.uncertain_until == 1.5
    assert load_model(path).thresholds.uncertain_until == 1.5
    tasks.save_model_job(model, path, 1.0, 0.8, 0, 0.9)(Progress())
    assert load_model(path).thresholds.uncertain_until is None
