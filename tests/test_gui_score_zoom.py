"""The score histogram zooms and the image-threshold slider follows it (issue 16, item 9): with an
outlier among the scores, the default view leaves it out, so the useful band spans the slider;
zooming changes the slider's range but never the threshold; thresholds stay in sync."""

import numpy as np
import pytest

from lsfa_gui._testing import scored_state, synthetic_result
from lsfa_gui.state import NG, OK, robust_score_range


@pytest.fixture
def outlier_state():
    """12 good parts scoring ~0.25, 4 defective ~1.0 and one wild outlier at 40 (raw units), with
    the image threshold at 0.6: the useful band is 0.2 – 1.1, under 3 % of 0.2 – 40."""
    labels = ["good"] * 12 + ["crack"] * 4 + ["crack"]
    results = [synthetic_result(i, lab, size=32) for i, lab in enumerate(labels)]
    results[-1].image_score = 40.0
    return scored_state(results)


@pytest.fixture
def panels(qtbot, outlier_state):
    from lsfa_gui.widgets.histogram_panel import HistogramPanel
    from lsfa_gui.widgets.threshold_panel import ThresholdPanel

    hist, thr = HistogramPanel(outlier_state), ThresholdPanel(outlier_state)
    qtbot.addWidget(hist)
    qtbot.addWidget(thr)
    return outlier_state, hist, thr


def test_robust_range_leaves_outliers_out_and_keeps_the_thresholds():
    scores = [0.2, 0.22, 0.25, 0.3, 0.9, 1.0, 40.0]
    lo, hi = robust_score_range(scores)
    assert lo < 0.2 and 1.0 < hi < 1.2
    assert robust_score_range(scores, keep=(5.0,))[1] > 5.0
    assert robust_score_range([]) is None
    assert robust_score_range([1.0, 1.0]) is not None  # equal scores: still a rising range


def test_slider_steps_resolve_the_useful_band(panels):
    state, hist, thr = panels
    lo, hi = thr.image_row.range
    good = [e.image_score for e in state.entries if e.label == "good"]
    bad = [e.image_score for e in state.entries if e.label == "crack"][:-1]
    band = max(bad) - min(good)
    assert hi < 2.0  # the outlier at 40 is outside the default view
    assert band / (hi - lo) > 0.8  # the useful band spans most of the slider
    assert (hi - lo) / 1000 < band / 500  # one slider step is a fine fraction of the band
    # every slider position between the groups separates them
    thr.image_row.slider.setValue(thr.image_row._to_slider(0.5 * (max(good) + min(bad))))
    assert state.confusion() == {"tp": 5, "fp": 0, "fn": 0, "tn": 12}
    assert "1 sample(s) above the view" in hist.outside_label.text()


def test_zoom_changes_the_slider_range_and_keeps_the_threshold(panels):
    state, hist, thr = panels
    before = thr.image_row.range
    value = state.thresholds.image
    vb = hist.plot.getViewBox()
    vb.scaleBy(x=0.5, y=1)  # what a mouse-wheel step does on the score axis
    zoomed = tuple(vb.viewRange()[0])
    assert state.zoomed and state.score_view() == pytest.approx(zoomed)
    assert thr.image_row.range == pytest.approx(zoomed)  # the slider follows the view
    assert thr.image_row.range != pytest.approx(before)
    assert state.thresholds.image == value  # a zoom never moves the threshold
    assert thr.image_row.spin.value() == pytest.approx(value)
    assert hist.line.value() == pytest.approx(value)
    assert thr.image_row.slider.value() == thr.image_row._to_slider(value)
    # zoom away from the threshold: the slider still holds it, at its end
    vb.setXRange(2.0, 3.0, padding=0)
    lo, hi = thr.image_row.range
    assert lo == pytest.approx(value) and hi == pytest.approx(3.0) and state.thresholds.image == value
    # the histogram counts only what it shows
    assert "below the view" in hist.outside_label.text()
    # Fit to scores: back to the default, and the threshold still where it was
    assert hist.fit_button.isEnabled()
    hist.fit_button.click()
    assert not state.zoomed and thr.image_row.range == pytest.approx(state.score_view())
    assert tuple(vb.viewRange()[0]) == pytest.approx(state.score_view())
    assert state.thresholds.image == value


def test_threshold_sync_holds_after_a_zoom(panels):
    """Slider, spin box, histogram line and verdicts agree at every step after zooming."""
    state, hist, thr = panels
    hist.plot.getViewBox().scaleBy(x=0.7, y=1)
    for pos in (0, 137, 500, 999, 1000):
        thr.image_row.slider.setValue(pos)
        value = thr.image_row._from_slider(pos)
        assert state.thresholds.image == pytest.approx(value)
        assert hist.line.value() == pytest.approx(value)
        assert thr.image_row.spin.value() == pytest.approx(value, abs=1e-4)
        expect = [NG if e.image_score >= value else OK for e in state.entries]
        assert [state.verdict(e) for e in state.entries] == expect
    hist.line.setValue(0.55)  # a drag of the line
    assert state.thresholds.image == pytest.approx(0.55)
    assert thr.image_row.slider.value() == thr.image_row._to_slider(0.55)


def test_new_samples_reset_the_zoom(panels):
    state, hist, _thr = panels
    hist.plot.getViewBox().scaleBy(x=0.5, y=1)
    assert state.zoomed
    state.set_entries([])
    assert not state.zoomed and not hist.fit_button.isEnabled()
    assert np.isfinite(hist.line.value())
