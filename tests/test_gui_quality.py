"""Issue 16, the GUI as quality engineers use it: defect regions in the sample table and the
export, the minimum defect area in the verdicts."""

import csv
import json

import pytest

from lsfa_gui import export
from lsfa_gui._testing import synthetic_result
from lsfa_gui.state import NG, OK, InspectionState, ModelInfo, SampleEntry, Thresholds

LABELS = ["good"] * 3 + ["crack"] * 2


@pytest.fixture
def state():
    st = InspectionState()
    results = [synthetic_result(i, lab, size=64) for i, lab in enumerate(LABELS)]
    st.set_entries([SampleEntry(r.name, "test", r.label) for r in results])
    st.set_model(ModelInfo(path="m.lsfa", name="m", seeded=Thresholds(0.6, 0.5), colour_range=(0.1, 1.1)))
    for i, r in enumerate(results):
        st.set_result(i, r)
    return st


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

