"""The window as operators use it: a small screen, RGB-only data, keyboard navigation."""

from types import SimpleNamespace

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from lsfa_gui._testing import synthetic_result
from lsfa_gui.state import SampleEntry
from lsfa_gui.widgets.sample_browser import COL_NAME

LABELS = ["good"] * 3 + ["crack"] * 2


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    from lsfa_gui.main_window import MainWindow

    w = MainWindow(settings=settings, enable_3d=False)
    qtbot.addWidget(w)
    yield w
    w.close()


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
