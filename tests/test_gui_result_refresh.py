"""Results streaming in redraw the panels that read all samples once per burst, not once per
sample (lsfa_gui.widgets.result_refresh), and the panels end exactly where panels built on the
finished state start; the histogram updates its curves in place."""

import numpy as np
import pytest

from lsfa_gui._testing import synthetic_result
from lsfa_gui.state import InspectionState, ModelInfo, SampleEntry, ThresholdSettings
from lsfa_gui.widgets.result_refresh import RESULTS_REFRESH_MS

LABELS = ["good"] * 8 + ["crack"] * 3 + [None]


def listed_state(results) -> InspectionState:
    """``results`` listed as test samples under a model, none scored yet."""
    st = InspectionState()
    st.set_entries([SampleEntry(r.name, "test", r.label) for r in results])
    st.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5), colour_range=(0.1, 1.1)))
    return st


def panels(qtbot, state):
    from lsfa_gui.widgets.histogram_panel import HistogramPanel
    from lsfa_gui.widgets.metrics_panel import MetricsPanel
    from lsfa_gui.widgets.sample_browser import SampleBrowser
    from lsfa_gui.widgets.threshold_panel import ThresholdPanel

    made = dict(hist=HistogramPanel(state), thr=ThresholdPanel(state), metrics=MetricsPanel(state),
                browser=SampleBrowser(state))
    for w in made.values():
        qtbot.addWidget(w)
    return made


def shown(p) -> dict:
    """What the panels show that depends on all scored samples."""
    curves = {k: (c.isVisible(), None if not c.isVisible() else (list(c.xData), list(c.yData)))
              for k, c in p["hist"].curves.items()}
    return dict(
        curves=curves,
        x_range=p["hist"]._showing,
        y_range=tuple(p["hist"].plot.getViewBox().viewRange()[1]),
        outside=p["hist"].outside_label.text(),
        slider_range=p["thr"].image_row.range,
        slider=p["thr"].image_row.slider.value(),
        confusion={k: c.text() for k, c in p["metrics"].cells.items()},
        rates=p["metrics"].rates.text(),
        summary=p["browser"].summary.text(),
    )


def test_a_burst_of_results_rebuilds_the_histogram_once_and_ends_as_unthrottled(qtbot):
    results = [synthetic_result(i, lab, size=32) for i, lab in enumerate(LABELS)]
    results[-2].image_score = 9.0  # an outlier: the default view leaves it out ("above the view")
    st = listed_state(results)
    live = panels(qtbot, st)
    hist = live["hist"]
    before = hist.rebuilds
    for i, r in enumerate(results):  # a batch's results, faster than the refresh interval
        st.set_result(i, r)
    assert hist.rebuilds == before  # nothing re-binned inside the burst
    qtbot.waitUntil(lambda: hist.rebuilds > before, timeout=5000)
    qtbot.wait(3 * RESULTS_REFRESH_MS)  # any further (wrong) refresh would have run by now
    assert hist.rebuilds == before + 1
    fresh = panels(qtbot, st)  # panels built on the finished state: the unthrottled result
    assert shown(live) == shown(fresh)
    assert sum(int(np.sum(y)) for visible, (x, y) in [v for v in shown(live)["curves"].values() if v[0]]) == 11
    assert "1 sample(s) above the view" in shown(live)["outside"]
    assert shown(live)["confusion"] == {"tp": "3", "fn": "0", "fp": "0", "tn": "8"}
    assert f"{len(LABELS)} samples · {len(LABELS)} scored" in shown(live)["summary"]


def test_a_threshold_change_inside_a_burst_shows_at_once_and_stays(qtbot):
    results = [synthetic_result(i, lab, size=32) for i, lab in enumerate(LABELS)]
    st = listed_state(results)
    live = panels(qtbot, st)
    for i, r in enumerate(results[:6]):
        st.set_result(i, r)
    st.set_thresholds(image=0.0)  # the user drags the line while results stream in
    assert live["metrics"].cells["fp"].text() == "6"  # at once, not at the next refresh
    assert live["hist"].line.value() == pytest.approx(0.0)
    for i, r in enumerate(results[6:], start=6):
        st.set_result(i, r)
    qtbot.waitUntil(lambda: live["metrics"].cells["tp"].text() == "3", timeout=5000)
    qtbot.wait(3 * RESULTS_REFRESH_MS)
    assert shown(live) == shown(panels(qtbot, st))
    assert st.thresholds.image == 0.0


def test_histogram_curves_stay_in_the_plot_and_hide_without_scores(qtbot):
    from lsfa_gui.widgets.histogram_panel import HistogramPanel

    results = [synthetic_result(i, "good", size=32) for i in range(3)]
    st = listed_state(results)
    hist = HistogramPanel(st)
    qtbot.addWidget(hist)
    items = hist.plot.listDataItems()
    assert not any(c.isVisible() for c in hist.curves.values()) and not hist.empty_label.isHidden()
    for i, r in enumerate(results):
        st.set_result(i, r)
    qtbot.waitUntil(lambda: hist.curves["good"].isVisible(), timeout=5000)
    assert hist.plot.listDataItems() == items  # the same items, updated in place
    assert int(hist.curves["good"].yData.sum()) == 3
    assert not hist.curves["defective"].isVisible() and hist.empty_label.isHidden()
    st.set_entries([])  # a new (empty) listing: at once, without waiting
    assert not any(c.isVisible() for c in hist.curves.values()) and not hist.empty_label.isHidden()
