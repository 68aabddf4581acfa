"""Each panel both ways: a state change updates the widget, a user action updates the state."""

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from core import render
from lsfa_gui._testing import scored_state, synthetic_result
from lsfa_gui.state import NG, OK, InspectionState, ModelInfo, SampleEntry, ThresholdSettings

LABELS = ["good"] * 4 + ["crack"] * 2 + [None]


@pytest.fixture
def state():
    return scored_state([synthetic_result(i, lab, size=64) for i, lab in enumerate(LABELS)])


# ---------------------------------------------------------------- sample browser
def test_browser_lists_sorts_filters_and_selects(qtbot, state):
    from lsfa_gui.widgets.sample_browser import COL_SCORE, COL_VERDICT, SampleBrowser

    w = SampleBrowser(state)
    qtbot.addWidget(w)
    assert w.proxy.rowCount() == len(LABELS)
    verdict = lambda row: w.proxy.index(row, COL_VERDICT).data()  # noqa: E731
    assert [verdict(r) for r in range(4)] == [OK] * 4 and verdict(4) == NG
    # state -> widget: threshold change flips verdicts in the table
    state.set_thresholds(image=0.0)
    assert all(verdict(r) == NG for r in range(len(LABELS)))
    state.set_thresholds(image=0.6)
    # sorting by score puts the defects first (descending)
    w.table.sortByColumn(COL_SCORE, Qt.SortOrder.DescendingOrder)
    assert {w.visible_rows()[0], w.visible_rows()[1]} == {4, 5}
    # filtering
    w.category_combo.setCurrentText("NG")
    assert sorted(w.visible_rows()) == [4, 5]
    w.category_combo.setCurrentText("All")
    qtbot.keyClicks(w.filter_edit, "crack")
    assert sorted(w.visible_rows()) == [4, 5]
    w.filter_edit.clear()
    # user selection -> state
    w.table.selectRow(w.proxy.mapFromSource(w.model.index(3, 0)).row())
    assert state.current == 3
    # state -> selection
    state.set_current(1)
    assert w.proxy.mapToSource(w.table.currentIndex()).row() == 1
    # keyboard next / previous follow the visible (sorted) order
    order = w.visible_rows()
    state.set_current(order[2])
    w.select_next()
    assert state.current == order[3]
    w.select_previous()
    w.select_previous()
    assert state.current == order[1]
    assert "7 samples" in w.summary.text() and "2 NG" in w.summary.text()


# ---------------------------------------------------------------- RGB view
def test_image_view_follows_state_and_writes_display(qtbot, state):
    from lsfa_gui.widgets.image_view import ImageView

    w = ImageView(state)
    qtbot.addWidget(w)
    state.set_current(4)  # a defect
    assert "crack_004" in w.header.text() and "NG" in w.header.text()
    assert w.base_item.image.shape == (64, 64, 3)
    pred = w.pred_item.image
    assert pred is not None and pred[..., 3].any()  # predicted outline drawn
    assert w.gt_item.image[..., 3].any()  # GT outline drawn
    # state -> widget: a higher pixel threshold shrinks the outline to nothing
    n_before = int(pred[..., 3].astype(bool).sum())
    state.set_thresholds(pixel=5.0)
    assert w.pred_item.image is None or not w.pred_item.image[..., 3].any()
    state.set_thresholds(pixel=0.5)
    assert int(w.pred_item.image[..., 3].astype(bool).sum()) == n_before
    state.set_display(opacity=0.25, show_ground_truth=False)
    assert w.opacity_slider.value() == 25 and not w.gt_check.isChecked()
    assert w.heat_item.opacity() == pytest.approx(0.25) and not w.gt_item.isVisible()
    # widget -> state
    w.opacity_slider.setValue(80)
    assert state.display.opacity == pytest.approx(0.8)
    w.pred_check.setChecked(False)
    assert state.display.show_prediction is False and not w.pred_item.isVisible()
    w.hide_check.setChecked(True)
    assert state.display.hide_below_threshold
    assert w.heat_item.image[0, 0, 3] == 0  # background score < pixel threshold: transparent
    # read-out under the cursor
    amap = state.entries[4].result.anomaly_map
    y, x = np.unravel_index(np.argmax(amap), amap.shape)
    w.set_hover(int(x), int(y))
    assert f"{amap[y, x]:.4g}" in w.readout_text() and "defect region" in w.readout_text()
    # a real mouse move over the scene maps to image pixels
    w.resize(400, 400)
    w.show()
    qtbot.waitExposed(w)
    w.view.autoRange(padding=0)
    scene_pos = w.view.mapViewToScene(QPointF(10.5, 20.5))
    w._on_mouse_moved(scene_pos)
    assert "x 10, y 20" in w.readout_text()


def test_image_view_without_rgb_shows_depth(qtbot):
    from lsfa_gui.widgets.image_view import ImageView

    st = InspectionState()
    r = synthetic_result(0, "good", size=32, with_rgb=False)
    st.set_entries([SampleEntry(r.name)])
    st.set_result(0, r)
    w = ImageView(st)
    qtbot.addWidget(w)
    st.set_current(0)
    img = w.base_item.image
    assert img.shape == (32, 32, 3) and img[16, 16, 0] > 0 and img[0, 0, 0] == 0


# ---------------------------------------------------------------- thresholds
def test_threshold_panel_both_ways(qtbot, state):
    from lsfa_gui.widgets.threshold_panel import ThresholdPanel

    w = ThresholdPanel(state)
    qtbot.addWidget(w)
    assert w.image_row.spin.value() == pytest.approx(0.6)
    assert w.pixel_row.spin.value() == pytest.approx(0.5)
    # state -> widget
    state.set_thresholds(image=0.7, pixel=0.3)
    assert w.image_row.spin.value() == pytest.approx(0.7)
    lo, hi = w.pixel_row.range
    assert w.pixel_row.slider.value() == round((0.3 - lo) / (hi - lo) * 1000)
    assert "normalised" in w.pixel_row.norm_label.text()
    # widget -> state: slider in raw units
    w.image_row.slider.setValue(0)
    assert state.thresholds.image == pytest.approx(w.image_row.range[0])
    w.pixel_row.spin.setValue(0.45)
    assert state.thresholds.pixel == pytest.approx(0.45)
    # auto: best F1 on the labelled samples separates the two crack samples
    with qtbot.waitSignal(w.message):
        w.image_row.auto_button.click()
    assert state.confusion() == {"tp": 2, "fp": 0, "fn": 0, "tn": 4}
    w.reset_button.click()
    assert (state.thresholds.image, state.thresholds.pixel) == (0.6, 0.5)
    with qtbot.waitSignal(w.save_requested):
        w.save_button.click()


def test_image_view_keeps_its_drawing_when_a_new_model_leaves_the_current_sample_as_it_was(qtbot, monkeypatch):
    """A new model clears results the current (loaded, unscored) sample did not have: the view
    is not drawn again and keeps the user's zoom; the sample's own result redraws it."""
    from lsfa_gui.widgets import image_view

    drawn = []
    layers = image_view.render.layers
    monkeypatch.setattr(image_view.render, "layers", lambda *a, **k: drawn.append(1) or layers(*a, **k))
    st = InspectionState()
    st.set_entries([SampleEntry("a", "test", "crack"), SampleEntry("b", "test", "good")])
    st.set_current(0)
    w = image_view.ImageView(st)
    qtbot.addWidget(w)
    loaded = synthetic_result(0, "crack", size=48)
    original = SimpleNamespace(rgb=loaded.rgb, xyz=loaded.xyz, mask=loaded.mask, shape=(48, 48))  # a loaded Sample
    st.set_original(st.entries[0], original)  # as lsfa_gui.originals does
    assert drawn == [1] and w.base_item.image.shape == (48, 48, 3)
    w.view.setRange(xRange=(10, 20), yRange=(10, 20), padding=0)  # the user zooms in
    zoom = w.view.viewRange()
    st.clear_results()  # what a newly loaded model does
    assert drawn == [1] and w.view.viewRange() == zoom
    st.set_result(0, synthetic_result(0, "crack", size=48))  # its own result: drawn with the map
    assert drawn == [1, 1] and w.heat_item.image is not None and "score" in w.header.text()


# ---------------------------------------------------------------- histogram
def test_histogram_groups_and_draggable_line(qtbot, state):
    from lsfa_gui.widgets.histogram_panel import HistogramPanel, score_histograms

    w = HistogramPanel(state)
    qtbot.addWidget(w)
    edges, counts = score_histograms(state)
    assert counts["good"].sum() == 4 and counts["defective"].sum() == 2 and counts["unlabelled"].sum() == 1
    assert w.line.isVisible() and w.line.value() == pytest.approx(0.6)
    state.set_thresholds(image=0.8)
    assert w.line.value() == pytest.approx(0.8)
    w.line.setValue(0.3)  # what a drag does
    assert state.thresholds.image == pytest.approx(0.3)
    assert state.verdict(state.entries[0]) == OK and state.verdict(state.entries[4]) == NG


def test_histogram_shows_where_the_seeded_thresholds_bootstrap_cuts_fell(qtbot):
    from lsfa_gui.widgets.histogram_panel import HistogramPanel

    st = scored_state([synthetic_result(i, lab, size=64) for i, lab in enumerate(LABELS)], threshold_spread=(0.5, 0.7))
    w = HistogramPanel(st)
    qtbot.addWidget(w)
    assert w.spread.isVisible() and w.spread.getRegion() == pytest.approx((0.5, 0.7))
    assert "0.5–0.7" in w.spread.toolTip()
    st.set_model(ModelInfo(path="q.lsfa", name="q", seeded=ThresholdSettings(0.6, 0.5)))  # quantile thresholds
    assert not w.spread.isVisible()


# ---------------------------------------------------------------- metrics
def test_metrics_panel_confusion_and_values(qtbot, state):
    from lsfa_gui.widgets.metrics_panel import MetricsPanel, compute_metrics, metrics_input

    w = MetricsPanel(state)
    qtbot.addWidget(w)
    assert w.cells["tp"].text() == "2" and w.cells["tn"].text() == "4"
    state.set_thresholds(image=0.0)
    assert w.cells["fp"].text() == "4" and "precision 0.333" in w.rates.text()
    values = compute_metrics(metrics_input(state))
    assert values["i_auroc"] == 1.0 and values["p_auroc"] > 0.95 and values["aupro"] > 0.8
    state.set_metrics(values, "note")
    assert w.metric_labels["i_auroc"].text() == "1.000" and w.metric_note.text() == "note"
    state.set_entries([])
    assert w.metric_labels["i_auroc"].text() == "–" and w.cells["tp"].text() == "–"


def test_metrics_panel_shows_the_self_check_estimate_labelled_as_one(qtbot, state):
    from lsfa_gui.widgets.metrics_panel import MetricsPanel

    w = MetricsPanel(state)
    qtbot.addWidget(w)
    assert w.estimate.text() == ""  # the fixture's model has no self-check
    state.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5),
                              estimate={"image_auroc": 0.934, "aupro_30": 0.912, "what": "x", "good_flagged": 7,
                                        "n_good": 10, "highest_good_score": 1.9}))
    assert "synthetic defects" in w.estimate.text() and "0.93" in w.estimate.text() and "0.91" in w.estimate.text()
    assert "held-out good parts flagged at the fitted threshold: 7 of 10" in w.estimate.text()
    assert "leave-one-out" not in w.estimate.text()  # the fit scored no training parts left out
    state.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5),
                              estimate={"image_auroc": 0.934, "aupro_30": 0.912, "what": "x", "good_flagged": 7,
                                        "n_good": 10, "highest_good_score": 1.9, "training_flagged": 2,
                                        "n_training": 20}))
    assert "training parts scored leave-one-out flagged: 2 of 20" in w.estimate.text()
    assert "interval" not in w.estimate.text()  # a model file written before the interval existed
    assert "⚠" not in w.estimate.text()
    state.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5),
                              estimate={"image_auroc": 0.934, "aupro_30": 0.912, "what": "x"},
                              self_check_note="self-check: the rgb branch told its own synthetic defects ..."))
    assert "\n⚠ Self-check: the rgb branch told" in w.estimate.text()
    state.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5),
                              estimate={"image_auroc": 0.934, "aupro_30": 0.912, "what": "x",
                                        "image_auroc_interval": [0.861, 0.987], "interval_level": 0.9}))
    assert "I-AUROC 0.93 (90 % bootstrap interval 0.86–0.99)" in w.estimate.text()


# ---------------------------------------------------------------- log + status bar
def test_log_and_status_bar(qtbot):
    from core.progress import ProgressEvent
    from lsfa_gui.widgets.log_panel import LogPanel
    from lsfa_gui.widgets.status_bar import JobStatusBar

    log = LogPanel()
    qtbot.addWidget(log)
    log.log("fine")
    log.log("broken <file>", "error", details="Traceback ...")
    assert log.entries[-1] == ("error", "broken <file>") and "broken &lt;file&gt;" in log.view.toHtml()
    assert log.details_button.isEnabled()
    bar = JobStatusBar()
    qtbot.addWidget(bar)
    bar.job_started("Fitting")
    assert bar.cancel_button.isEnabled()
    bar.job_progress(ProgressEvent("Extracting features", 3, 12, "", 3.0))
    assert bar.progress.value() == 250 and "3/12" in bar.stage_label.text() and "9 s left" in bar.progress.format()
    bar.job_ended("Done")
    assert not bar.cancel_button.isEnabled() and bar.stage_label.text() == "Done"


def test_pred_outline_matches_core_render(qtbot, state):
    """The view's outline is exactly the shared numpy outline (same as in exported PNGs)."""
    from lsfa_gui.widgets.image_view import ImageView

    w = ImageView(state)
    qtbot.addWidget(w)
    state.set_current(5)
    amap = state.entries[5].result.anomaly_map
    expected = render.outline(render.predicted_mask(amap, 0.5))
    assert np.array_equal(w.pred_item.image[..., 3] > 0, expected)


def test_a_model_whose_self_check_kept_a_modality_near_chance_says_so_in_the_metrics_panel(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from lsfa_gui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(w)
    candidate = {"variant": "frozen", "fusion": "tail_sum (equal weights)",
                 "modality_informativeness": {"rgb": 0.48, "xyz": 0.77}, "informativeness_upper": {"rgb": 0.64, "xyz": 0.91}}
    record = {"estimate": {"image_auroc": 0.77, "aupro_30": 0.74, "what": "x"}, "variant": "frozen",
              "fusion": "tail_sum (equal weights)", "candidates": [candidate]}
    thresholds = SimpleNamespace(image=0.6, pixel=0.5)
    w._set_model(SimpleNamespace(thresholds=thresholds, info={"self_check": record}), "/x/m.lsfa")
    text = w.metrics.estimate.text()
    assert "⚠ Self-check: the rgb branch" in text and "I-AUROC 0.48" in text and "--modalities xyz" in text
    dropped = dict(record, fusion="xyz only (rgb uninformative)")
    w._set_model(SimpleNamespace(thresholds=thresholds, info={"self_check": dropped}), "/x/m.lsfa")
    assert "⚠" not in w.metrics.estimate.text() and "I-AUROC 0.77" in w.metrics.estimate.text()
    w.close()
