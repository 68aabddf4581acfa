"""Issue 16, the GUI as quality engineers use it: defect regions in the sample table and the
export, the minimum defect area in the verdicts."""

import csv
import json

import pytest

from lsfa_gui import export
from lsfa_gui._testing import scored_state, synthetic_result
from lsfa_gui.state import NG, OK, InspectionState, ModelInfo, SampleEntry, ThresholdSettings

LABELS = ["good"] * 3 + ["crack"] * 2


@pytest.fixture
def state():
    return scored_state([synthetic_result(i, lab, size=64) for i, lab in enumerate(LABELS)])


def test_regions_follow_the_pixel_threshold_and_min_area_decides_verdicts(state):
    crack = state.entries[3]
    regions = state.regions(crack)
    assert len(regions) == 1 and regions[0].area_px > 20 and regions[0].area_mm2 > 0
    assert state.regions(state.entries[0]) == []  # good: nothing above 0.5
    assert state.verdict(crack) == NG
    state.thresholds.min_defect_area = regions[0].area_px + 1
    assert state.verdict(crack) == OK
    state.set_thresholds(pixel=0.3)  # a larger region at a lower pixel threshold
    assert state.regions(crack)[0].area_px > regions[0].area_px and state.verdict(crack) == NG


def test_sample_table_shows_region_count_and_largest_area(qtbot, state):
    from lsfa_gui.widgets.sample_browser import COL_LARGEST, COL_REGIONS, SampleBrowser

    w = SampleBrowser(state)
    qtbot.addWidget(w)
    cell = lambda row, col: w.model.index(row, col).data()  # noqa: E731
    assert cell(0, COL_REGIONS) == "0" and cell(0, COL_LARGEST) == "–"
    largest = state.regions(state.entries[3])[0]
    assert cell(3, COL_REGIONS) == "1" and cell(3, COL_LARGEST) == f"{largest.area_mm2:.3g} mm²"
    changed = []
    w.model.dataChanged.connect(lambda a, b: changed.append((a.column(), b.column())))
    state.set_thresholds(pixel=10.0)
    assert cell(3, COL_REGIONS) == "0" and changed and changed[-1][1] >= COL_LARGEST


def test_csv_and_json_exports_carry_the_regions(tmp_path, state):
    rows = list(csv.DictReader(export.export_csv(state, tmp_path / "r.csv").open()))
    assert [int(r["regions"]) for r in rows] == [0, 0, 0, 1, 1]
    doc = json.loads(export.export_json(state, tmp_path / "r.json").read_text())
    region = doc["samples"][3]["region_list"][0]
    assert region["area_px"] == int(rows[3]["largest_region_px"]) and len(region["bbox"]) == 4
    assert doc["samples"][0]["region_list"] == []


# ---------------------------------------------------------------- model/data check (item 4)
def test_data_banner_shows_findings_and_offers_a_fit(qtbot):
    from lsfa_gui.widgets.data_banner import DataBanner

    banner = DataBanner()
    qtbot.addWidget(banner)
    assert banner.isHidden()
    banner.show_findings(["point spacing is 10× the training clouds'"])
    banner.show_findings(["point spacing is 10× the training clouds'"])  # the same finding once
    assert not banner.isHidden() and banner.label.text().count("•") == 1
    with qtbot.waitSignal(banner.fit_requested, timeout=1000):
        banner.fit_button.click()
    banner.clear()
    assert banner.isHidden() and banner.messages == []


def test_xyz_model_on_rgb_only_samples_shows_one_banner(qtbot, tiny_xyz_model, tmp_path):
    import shutil

    from PySide6.QtCore import QSettings

    from lsfa_gui.main_window import MainWindow

    root, model = tiny_xyz_model
    pngs = []
    for png in sorted((root / "cookie" / "test").glob("*/rgb/*.png")):
        pngs.append(tmp_path / f"{png.parent.parent.name}_{png.name}")
        shutil.copy(png, pngs[-1])
    w = MainWindow(settings=QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(w.jobs.finished, timeout=120_000):
            w.open_model(str(model))
        w.open_samples([str(p) for p in pngs])  # opened, then scored with the xyz model
        qtbot.waitUntil(lambda: not w.data_banner.isHidden(), timeout=120_000)
        assert len(w.data_banner.messages) == 1 and "no point cloud (xyz)" in w.data_banner.messages[0]
        qtbot.waitUntil(lambda: not w.jobs.busy and not w._queued, timeout=120_000)
        log = w.log_panel.view.toPlainText()
        assert log.count("Model/data check") == 1 and "needs a point cloud" not in log  # no error per sample
        assert w.state.scored == []
    finally:
        w.close()


# ---------------------------------------------------------------- report-grade export (item 5)
def test_csv_export_is_dated_traceable_and_rounded(tmp_path, state):
    import re

    state.model.model_id = "0123456789ab"
    rows = list(csv.DictReader(export.export_csv(state, tmp_path / "r.csv").open()))
    assert list(rows[0])[0] == "date" and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["date"]) for r in rows)
    assert {r["model_id"] for r in rows} == {"0123456789ab"}
    for r in rows:
        for key in ("image_score", "image_score_normalised", "max_pixel_score", "seconds"):
            digits = re.sub(r"e[-+]\d+$", "", r[key].lstrip("-")).replace(".", "").lstrip("0")
            assert len(digits) <= 4, (key, r[key])


def test_report_export_from_the_window(qtbot, tmp_path):
    import re

    from PySide6.QtCore import QSettings

    from lsfa_gui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(w)
    try:
        results = [synthetic_result(i, lab, size=64) for i, lab in enumerate(LABELS)]
        w.state.set_entries([SampleEntry(r.name, "test", r.label) for r in results] + [SampleEntry("later", "test")])
        w.state.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5), colour_range=(0.1, 1.1)))
        for i, r in enumerate(results):
            w.state.set_result(i, r)
        assert "export_report" in w.actions_by_name and "export_annotated" in w.actions_by_name
        target = tmp_path / "report.html"
        with qtbot.waitSignal(w.aux.succeeded, timeout=60_000):
            w.export_report(str(target))
        doc = target.read_text()
        assert doc.count('<tr class="sample">') == len(LABELS) + 1
        assert re.search(r'id="count-NG">(\d+)<', doc).group(1) == "2"  # the two cracks at 0.6
        assert re.search(r'id="count-SKIPPED">(\d+)<', doc).group(1) == "1"  # not scored
        assert re.search(r'id="confusion-defective-NG">(\d+)<', doc).group(1) == "2"
        assert doc.count("data:image/png;base64,") == len(LABELS)
    finally:
        w.close()


def test_annotated_pngs_of_all_samples(tmp_path, state):
    from PIL import Image

    from core import render
    from lsfa_gui.colormaps import lut

    paths = export.export_all_overlays(state, tmp_path / "pngs", lut("turbo"), annotated=True)
    assert len(paths) == len(LABELS)
    assert all(Image.open(p).size[0] >= render.ANNOTATED_MIN_WIDTH for p in paths)


# ---------------------------------------------------------------- honest thresholds (item 1)
def test_metrics_panel_warns_about_a_threshold_that_passes_defects_or_flags_good_parts(qtbot, state):
    from core.thresholds import threshold_warnings
    from lsfa_gui.widgets.metrics_panel import MetricsPanel

    assert threshold_warnings({"tp": 1, "fn": 3, "fp": 0, "tn": 4})[0].startswith("the image threshold passes 3 of 4")
    assert threshold_warnings({"tp": 2, "fn": 0, "fp": 3, "tn": 2}) == ["the image threshold flags 3 of 5 good samples as NG"]
    assert threshold_warnings({"tp": 2, "fn": 2, "fp": 0, "tn": 5}) == []  # recall 0.5 exactly: no warning
    w = MetricsPanel(state)
    qtbot.addWidget(w)
    assert w.threshold_note.text() == ""  # 0.6 separates the synthetic cracks from the good parts
    state.set_thresholds(image=5.0)  # passes every crack
    assert "passes 2 of 2 defective samples" in w.threshold_note.text()
    state.set_thresholds(image=0.0)  # flags every good part
    assert "flags 3 of 3 good samples" in w.threshold_note.text()


def test_auto_threshold_on_the_labelled_samples_shown_is_labelled_optimistic(qtbot, state):
    from lsfa_gui.state import TUNED_ON_SHOWN
    from lsfa_gui.widgets.metrics_panel import MetricsPanel
    from lsfa_gui.widgets.threshold_panel import ThresholdPanel

    metrics, panel = MetricsPanel(state), ThresholdPanel(state)
    qtbot.addWidget(metrics)
    qtbot.addWidget(panel)
    state.set_thresholds(image=0.3)
    panel.auto_image()
    assert state.thresholds.image_origin == TUNED_ON_SHOWN and TUNED_ON_SHOWN in metrics.threshold_note.text()
    assert TUNED_ON_SHOWN in panel.info.text()
    panel.image_row.spin.setValue(state.thresholds.image + 0.01)  # moved by hand: no longer Auto's
    assert state.thresholds.image_origin == "" and TUNED_ON_SHOWN not in metrics.threshold_note.text()
    unlabelled = InspectionState()
    unlabelled.set_entries([SampleEntry("u", "test", None)])
    unlabelled.set_result(0, synthetic_result(0, None, size=32))
    other = ThresholdPanel(unlabelled)
    qtbot.addWidget(other)
    other.auto_image()  # a quantile of unlabelled scores: nothing it is judged on
    assert unlabelled.thresholds.image_origin == ""


def test_min_defect_area_box_drives_the_verdicts_and_resets_to_the_model(qtbot, state):
    from lsfa_gui.widgets.threshold_panel import ThresholdPanel

    panel = ThresholdPanel(state)
    qtbot.addWidget(panel)
    crack = state.entries[3]
    area = state.regions(crack)[0].area_px
    assert panel.min_area.value() == 0 and state.verdict(crack) == NG
    panel.min_area.setValue(area + 1)
    assert state.thresholds.min_defect_area == area + 1 and state.verdict(crack) == OK
    state.model.seeded = ThresholdSettings(0.6, 0.5, min_defect_area=7)
    panel.reset_to_model()
    assert panel.min_area.value() == 7 and state.thresholds.min_defect_area == 7 and state.verdict(crack) == NG


def test_saving_thresholds_stores_the_min_defect_area_in_the_model_file(qtbot, tiny_xyz_model, tmp_path):
    import shutil

    from PySide6.QtCore import QSettings

    from core.model_io import load_model
    from lsfa_gui.main_window import MainWindow

    model = tmp_path / "m.lsfa"
    shutil.copy(tiny_xyz_model[1], model)  # the session's model file stays as it is
    w = MainWindow(settings=QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(w.jobs.finished, timeout=120_000):
            w.open_model(str(model))
        w.threshold_panel.min_area.setValue(12)
        with qtbot.waitSignal(w.aux.succeeded, timeout=60_000):
            w.save_thresholds()
        assert load_model(model).thresholds.min_defect_area == 12
        w.threshold_panel.min_area.setValue(3)
        w.threshold_panel.reset_to_model()  # the saved value is now the model's
        assert w.state.thresholds.min_defect_area == 12
    finally:
        w.close()


def test_opening_samples_with_a_model_queued_does_not_warn_no_model(qtbot, tiny_xyz_model, window):
    """`main.py PATH --model M` opens the samples, then loads the model: no stale "No model yet"
    warning in the log or the status bar; opening samples with no model and nothing queued warns."""
    root, model = tiny_xyz_model
    files = [str(p) for p in sorted((root / "cookie" / "test").glob("*/rgb/*.png"))[:2]]
    window.open_samples(files)
    window.queue_after_job(lambda: window.open_model(str(model)))
    qtbot.waitUntil(lambda: window.model is not None and not window.jobs.busy and not window._queued,
                    timeout=120_000)
    assert "No model yet" not in window.log_panel.view.toPlainText()
    assert "No model yet" not in window.status.currentMessage()


def test_opening_samples_without_a_model_says_so(qtbot, tiny_xyz_model, window):
    root, _ = tiny_xyz_model
    window.open_samples([str(sorted((root / "cookie" / "test").glob("*/rgb/*.png"))[0])])
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=60_000)
    assert "No model yet" in window.log_panel.view.toPlainText()
