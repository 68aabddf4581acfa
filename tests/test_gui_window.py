"""The main window with synthetic results: wiring between panels, export, settings, errors."""

import csv
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lsfa_gui._testing import synthetic_result
from lsfa_gui.state import NG, OK, SampleEntry

LABELS = ["good"] * 3 + ["crack"] * 2


def load_fake(window, labels=LABELS, size=48):
    results = [synthetic_result(i, lab, size=size) for i, lab in enumerate(labels)]
    window.state.set_entries([SampleEntry(r.name, "test", r.label) for r in results])
    model = SimpleNamespace(thresholds=SimpleNamespace(image=0.6, pixel=0.5), display_range=(0.1, 1.1))
    window._set_model(model, "/nonexistent/m.lsfa")
    for i, r in enumerate(results):
        window.state.set_result(i, r)
    window.state.set_current(0)
    return results


def test_threshold_drag_updates_every_panel(qtbot, window):
    load_fake(window)
    st = window.state
    assert window.threshold_panel.image_row.spin.value() == pytest.approx(0.6)
    window.histogram.line.setValue(0.0)  # drag the histogram line to 0: everything NG
    assert window.threshold_panel.image_row.spin.value() == pytest.approx(0.0)
    assert all(st.verdict(e) == NG for e in st.entries)
    assert window.metrics.cells["fp"].text() == "3"
    assert "NG" in window.image_view.header.text()
    window.threshold_panel.image_row.spin.setValue(0.6)
    assert window.histogram.line.value() == pytest.approx(0.6)
    assert [st.verdict(e) for e in st.entries] == [OK] * 3 + [NG] * 2
    assert "5 samples · 5 scored · 2 NG" in window.browser.summary.text()


def test_keyboard_next_previous(qtbot, window):
    load_fake(window)
    from PySide6.QtWidgets import QApplication

    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()  # shortcuts need the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    table = window.browser.table
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_N)
    assert window.state.current == 1
    qtbot.keyClick(table, Qt.Key.Key_N)
    qtbot.keyClick(table, Qt.Key.Key_P)
    assert window.state.current == 1
    qtbot.keyClick(table, Qt.Key.Key_Down)  # plain arrow keys move through the table too
    assert window.state.current == 2


def test_export_from_the_window(tmp_path, window):
    load_fake(window)
    out = window.export_results(str(tmp_path / "results.csv"))
    rows = list(csv.DictReader(out.open()))
    assert [r["verdict"] for r in rows] == [OK] * 3 + [NG] * 2
    window.state.set_current(4)
    png = window.export_current_png(str(tmp_path / "one.png"))
    assert png.is_file() and png.stat().st_size > 100


def test_export_all_pngs_runs_in_the_background(qtbot, tmp_path, window):
    load_fake(window)
    with qtbot.waitSignal(window.aux.succeeded, timeout=10000):
        window.export_all_pngs(str(tmp_path / "pngs"))
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 5


def test_job_error_is_a_notification_and_the_window_lives_on(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.jobs.failed, timeout=10000):
        window.open_dataset(str(tmp_path / "does-not-exist"))
    level, text = window.log_panel.entries[-1]
    assert level == "error" and "does-not-exist" in text and "not found" in text
    assert window.status.stage_label.text() == "Failed" and not window.status.cancel_button.isEnabled()
    load_fake(window)  # still usable
    assert window.state.current == 0


def test_preferences_persist_in_qsettings(qtbot, settings):
    from lsfa_gui.main_window import MainWindow

    w = MainWindow(settings=settings, enable_3d=False)
    qtbot.addWidget(w)
    w.state.set_display(colormap="viridis", opacity=0.3)
    w.settings.set_last_dir("dataset", "/data/mvtec")
    w.resize(1100, 850)
    w.docks["log"].hide()
    w.close()
    w2 = MainWindow(settings=settings, enable_3d=False)
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitExposed(w2)
    assert w2.state.display.colormap == "viridis" and w2.state.display.opacity == pytest.approx(0.3)
    assert w2.colormap_actions["viridis"].isChecked()
    assert w2.settings.last_dir("dataset") == "/data/mvtec"
    assert not w2.docks["log"].isVisible()  # dock layout restored
    if w2.screen().availableGeometry().width() >= 1100:  # restoreGeometry clamps to the screen
        assert w2.width() == 1100
    w2.close()


def test_colormap_menu_changes_heatmap(qtbot, window):
    load_fake(window)
    window.state.set_current(4)
    before = window.image_view.heat_item.image.copy()
    window.colormap_actions["viridis"].trigger()
    assert window.state.display.colormap == "viridis"
    assert not np.array_equal(before, window.image_view.heat_item.image)


def test_a_failed_fit_keeps_the_previous_model_and_results(qtbot, window, tmp_path):
    """Issue 16 item 7: starting a fit no longer clears the scored results; they go only when
    the new model is ready."""
    from core.config import FitConfig
    from lsfa_gui import tasks

    load_fake(window)
    old_model = window.model
    window.state.dataset_root, window.state.category = str(tmp_path / "no_dataset"), "cookie"
    with qtbot.waitSignal(window.jobs.finished, timeout=30000):
        window.fit_current_dataset(config=FitConfig(adapt=False, self_check=False))
    assert window.status.stage_label.text() == "Failed"
    assert window.model is old_model and len(window.state.scored) == len(LABELS)
    new_model = SimpleNamespace(thresholds=SimpleNamespace(image=0.7, pixel=0.5), display_range=(0.1, 1.1))
    window._on_partial(0, tasks.ModelReady(new_model, str(tmp_path / "new.lsfa"), True))
    assert window.model is new_model and window.state.scored == []


def test_escape_in_a_field_leaves_the_field_and_does_not_cancel_the_job(qtbot, window, monkeypatch):
    """Issue 16 item 9: Esc typed in a text field used to cancel the running job."""
    from PySide6.QtWidgets import QApplication

    load_fake(window)
    calls = []
    monkeypatch.setattr(window, "cancel_job", lambda: calls.append(1))
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    spin = window.threshold_panel.image_row.spin
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=2000)
    qtbot.keyClick(spin, Qt.Key.Key_Escape)
    assert calls == [] and not spin.hasFocus()
    table = window.browser.table
    table.setFocus()
    qtbot.waitUntil(table.hasFocus, timeout=2000)
    qtbot.keyClick(table, Qt.Key.Key_Escape)
    assert calls == [1]


def test_the_window_reads_the_model_from_the_state_and_auto_thresholds_move_the_sliders(qtbot, window):
    load_fake(window)
    assert window.model is window.state.model.model and window.model_path == "/nonexistent/m.lsfa"
    window.state.set_thresholds(image=50.0)  # far outside the slider's range: the range follows
    lo, hi = window.threshold_panel.image_row.range
    assert lo <= 50.0 <= hi and window.threshold_panel.image_row.spin.value() == pytest.approx(50.0)
    window.actions_by_name["auto_thresholds"].trigger()
    assert window.state.confusion() == {"tp": 2, "fp": 0, "fn": 0, "tn": 3}
    assert window.threshold_panel.image_row.spin.value() == pytest.approx(window.state.thresholds.image, abs=1e-4)
    level, text = window.log_panel.entries[-1]
    assert text.startswith("Pixel threshold")


def test_saving_thresholds_writes_a_copy_and_updates_the_model_on_the_ui_thread(qtbot, window, monkeypatch):
    """The save runs in a worker: it must not change the open model there (the watch and the
    views read it); the model takes the saved thresholds when the save has succeeded."""
    import threading

    import core.model_io

    load_fake(window)
    live = window.model
    live.info = {}
    seen = {}

    def fake_save(model, path):
        seen.update(same=model is live, live_image=live.thresholds.image, saved_image=model.thresholds.image,
                    thread=threading.get_ident())
        model.info["model_id"] = "abc"
        return "abc"

    monkeypatch.setattr(core.model_io, "save_model", fake_save)
    window.state.set_thresholds(image=0.9, pixel=0.4)
    with qtbot.waitSignal(window.aux.succeeded, timeout=10000):
        window.save_thresholds()
    assert not seen["same"] and seen["live_image"] == 0.6 and seen["saved_image"] == 0.9
    assert seen["thread"] != threading.get_ident()
    assert live.thresholds.image == 0.9 and live.thresholds.pixel == 0.4 and live.info == {"model_id": "abc"}
    assert (window.state.model.seeded.image, window.state.model.seeded.pixel) == (0.9, 0.4)
    with qtbot.waitSignal(window.aux.succeeded, timeout=10000):
        window.save_model_as("/elsewhere/copy.lsfa")
    assert window.model_path == "/elsewhere/copy.lsfa" and window.state.model.name == "copy.lsfa"
    assert window.status.model_label.text().endswith("copy.lsfa")


def test_a_loaded_model_replaces_the_old_results_through_the_one_model_ready_handler(qtbot, window, tmp_path):
    from lsfa_gui import tasks

    load_fake(window)
    other = SimpleNamespace(thresholds=SimpleNamespace(image=0.7, pixel=0.5), display_range=(0.1, 1.1))
    window._on_partial(0, tasks.ModelReady(other, str(tmp_path / "other.lsfa"), False))
    assert window.model is other and window.state.scored == [] and window.state.thresholds.image == 0.7


def test_a_short_metrics_dock_scrolls_instead_of_cutting_text_off(qtbot, window):
    """With the estimate and the threshold warnings shown, a metrics dock shorter than its content
    gets a vertical scroll bar that reaches the last line (before: the text was cut off)."""
    from PySide6.QtWidgets import QScrollArea

    load_fake(window)
    window.metrics.estimate.setText("Estimate from synthetic defects (not real ones): I-AUROC 0.92 · "
                                    "AUPRO@0.3 0.91 · held-out good parts flagged at the fitted threshold: 8 of 10")
    area = window.docks["metrics"].widget()
    assert isinstance(area, QScrollArea) and area.widget() is window.metrics
    window.show()
    window.docks["metrics"].setFloating(True)
    window.docks["metrics"].resize(420, 160)
    qtbot.waitUntil(lambda: area.verticalScrollBar().maximum() > 0)
    area.verticalScrollBar().setValue(area.verticalScrollBar().maximum())
    bottom = window.metrics.rates.mapTo(area.viewport(), window.metrics.rates.rect().bottomLeft()).y()
    assert bottom <= area.viewport().height()  # the last line is reachable
