"""The window as operators use it: a small screen, RGB-only data, keyboard navigation."""

from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from lsfa_gui._testing import synthetic_result
from lsfa_gui.state import SampleEntry
from lsfa_gui.widgets.sample_browser import COL_NAME

LABELS = ["good"] * 3 + ["crack"] * 2


def load_fake(window, labels=LABELS, with_xyz=True, modalities=("rgb", "xyz")):
    results = [synthetic_result(i, lab, size=48, with_xyz=with_xyz) for i, lab in enumerate(labels)]
    window.state.set_entries([SampleEntry(r.name, "test", r.label) for r in results])
    model = SimpleNamespace(thresholds=SimpleNamespace(image=0.6, pixel=0.5), display_range=(0.1, 1.1),
                            modalities=modalities)
    window._set_model(model, "/nonexistent/m.lsfa")
    for i, r in enumerate(results):
        window.state.set_result(i, r)
    window.state.set_current(0)
    return results


def show_active(qtbot, window):
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()  # shortcuts need the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)


def test_the_window_fits_a_1024_px_laptop_screen_with_the_sample_names_visible(qtbot, window):
    load_fake(window)
    assert window.minimumSizeHint().width() <= 1000
    window.resize(1024, 700)
    show_active(qtbot, window)
    qtbot.wait(50)  # the default dock sizes are applied after the first show
    assert window.width() <= 1024
    table = window.browser.table
    assert table.isVisible()
    name_left = table.columnViewportPosition(COL_NAME)
    visible = min(table.columnWidth(COL_NAME), table.viewport().width() - name_left)
    assert name_left >= 0 and visible >= 80  # the names are readable, not a sliver


def test_the_3d_view_folds_away_for_rgb_only_data_and_comes_back_for_3d_data(qtbot, window):
    show_active(qtbot, window)
    assert window.cloud_view.isVisible()  # nothing open yet: both views
    load_fake(window, with_xyz=False, modalities=("rgb",))
    assert not window.cloud_view.isVisible()
    splitter = window.views_splitter
    # the image view takes the centre (once the splitter has laid out again)
    qtbot.waitUntil(lambda: window.image_view.width() >= splitter.width() - 10, timeout=2000)
    load_fake(window, with_xyz=True)
    assert window.cloud_view.isVisible()
    # an RGB-only model on data with 3D points keeps the 3D view (the points are still there)
    load_fake(window, with_xyz=True, modalities=("rgb",))
    assert window.cloud_view.isVisible()


def test_arrow_keys_and_n_p_move_through_samples_from_anywhere_but_a_field(qtbot, window):
    load_fake(window)
    show_active(qtbot, window)
    st = window.state
    button = window.threshold_panel.findChild(type(window.status.cancel_button))
    elsewhere = window.image_view.heat_check  # a checkbox in the image view, not the table
    elsewhere.setFocus()
    qtbot.keyClick(elsewhere, Qt.Key.Key_Down)
    assert st.current == 1
    qtbot.keyClick(elsewhere, Qt.Key.Key_Right)
    qtbot.keyClick(elsewhere, Qt.Key.Key_N)
    assert st.current == 3
    qtbot.keyClick(elsewhere, Qt.Key.Key_Up)
    qtbot.keyClick(elsewhere, Qt.Key.Key_P)
    assert st.current == 1
    assert button is not None
    button.setFocus()
    qtbot.keyClick(button, Qt.Key.Key_Left)
    assert st.current == 0
    spin = window.threshold_panel.image_row.spin  # a field keeps its arrow keys
    spin.setFocus()
    before = spin.value()
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    assert st.current == 0
    assert spin.value() > before


# ---------------------------------------------------------------------- where models go, recent files
def test_a_fitted_model_goes_beside_the_dataset_without_overwriting(tmp_path, monkeypatch):
    from lsfa_gui import tasks

    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "tires"
    root.mkdir()
    first = tasks.fit_output_path(root, "winter")
    assert first == root / "winter.lsfa"
    first.write_bytes(b"a model the user keeps")
    assert tasks.fit_output_path(root, "winter") == root / "winter-2.lsfa"
    (root / "winter-2.lsfa").write_bytes(b"another")
    assert tasks.fit_output_path(root, "winter") == root / "winter-3.lsfa"
    assert tasks.saved_where(root / "winter-3.lsfa", root) == f"Model saved beside the dataset: {root / 'winter-3.lsfa'}"


def test_a_dataset_folder_that_cannot_be_written_sends_the_model_to_the_cache(tmp_path, monkeypatch):
    from lsfa_gui import tasks

    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tasks, "_writable", lambda folder: False)
    path = tasks.fit_output_path(tmp_path, "winter")
    assert path == tasks.fitted_model_path(tmp_path, "winter") and path.is_relative_to(tmp_path / "cache")
    assert tasks.saved_where(path, tmp_path).endswith(f"(the dataset folder {tmp_path} is not writable)")


def test_the_write_probe_detects_a_read_only_folder(tmp_path):
    import os

    from lsfa_gui import tasks

    if os.geteuid() == 0:
        pytest.skip("root can write into a read-only folder")
    assert tasks._writable(tmp_path) and list(tmp_path.iterdir()) == []  # the probe leaves nothing
    root = tmp_path / "readonly"
    root.mkdir()
    root.chmod(0o555)
    try:
        assert not tasks._writable(root)
    finally:
        root.chmod(0o755)


def test_recent_lists_keep_eight_newest_first(settings):
    from lsfa_gui.settings import RECENT_MAX, Settings

    s = Settings(settings)
    for i in range(10):
        s.add_recent("models", f"/m/{i}.lsfa")
    s.add_recent("models", "/m/5.lsfa")  # opened again: moves to the top, no duplicate
    assert RECENT_MAX == 8
    assert s.recent("models") == ["/m/5.lsfa", "/m/9.lsfa", "/m/8.lsfa", "/m/7.lsfa", "/m/6.lsfa", "/m/4.lsfa", "/m/3.lsfa", "/m/2.lsfa"]


def test_recent_models_menu_opens_and_prunes_missing_files(qtbot, window, tmp_path, monkeypatch):
    from lsfa_gui import tasks

    kept, gone = tmp_path / "kept.lsfa", tmp_path / "gone.lsfa"
    kept.write_bytes(b"x")
    gone.write_bytes(b"x")
    # models that were opened (or fitted) join the list
    for path in (gone, kept):
        window._on_partial(0, tasks.ModelReady(SimpleNamespace(thresholds=None), str(path), False))
    assert window.settings.recent("models") == [str(kept), str(gone)]
    gone.unlink()
    window._fill_recent_menu("models")  # what opening the menu does
    texts = [a.text() for a in window.recent_menus["models"].actions()]
    assert texts == [str(kept)]
    assert window.settings.recent("models") == [str(kept)]
    assert f"{gone} no longer exists" in window.log_panel.view.toPlainText()
    opened = []
    monkeypatch.setattr(window, "open_model", opened.append)
    window.recent_menus["models"].actions()[0].trigger()
    assert opened == [str(kept)]


def test_dialogs_start_in_the_last_folder_else_the_dataset_folder(window, tmp_path):
    from pathlib import Path

    assert window._dialog_dir("model") == str(Path.home())
    window.state.dataset_root = str(tmp_path)
    assert window._dialog_dir("model") == str(tmp_path)
    used = tmp_path / "models"
    used.mkdir()
    window.settings.set_last_dir("model", str(used))
    assert window._dialog_dir("model") == str(used)


def test_listed_samples_with_3d_files_keep_the_3d_view_before_scoring(tmp_path):
    from core.data.refs import SampleRef
    from lsfa_gui.state import InspectionState

    state = InspectionState()
    assert state.has_xyz() is None  # nothing open
    rgb_only = SampleRef("a", "cookie", "test", "good", rgb_path=tmp_path / "a.png")
    state.set_entries([SampleEntry("a", "test", "good", ref=rgb_only)])
    assert state.has_xyz() is False
    with_xyz = SampleRef("b", "cookie", "test", "good", rgb_path=tmp_path / "b.png", xyz_path=tmp_path / "b.tiff")
    state.add_entries([SampleEntry("b", "test", "good", ref=with_xyz)])
    assert state.has_xyz() is True
