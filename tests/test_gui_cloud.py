"""3D view: scored points coloured, grey below the pixel threshold, picking, "no 3D data" state.

Rendering tests need OpenGL through Qt: they run under Xvfb with QT_QPA_PLATFORM=xcb
(pytest-xvfb + tests/conftest.py) and skip elsewhere. The data logic runs everywhere.
"""

import os
from contextlib import contextmanager

import numpy as np
import pytest

from lsfa_gui._testing import scored_state, synthetic_result
from lsfa_gui.state import InspectionState, ModelInfo, SampleEntry, ThresholdSettings

needs_display = pytest.mark.skipif(
    not (os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") == "xcb"),
    reason="QtInteractor needs an X display with the xcb platform (Xvfb)",
)


@contextmanager
def shown_cloud_view(qtbot, state):
    """A 420×380 3D view over ``state``, shown and exposed; its plotter is closed afterwards."""
    from lsfa_gui.widgets.cloud_view import CloudView

    w = CloudView(state)
    qtbot.addWidget(w)
    try:
        w.resize(420, 380)
        w.show()
        qtbot.waitExposed(w)
        yield w
    finally:
        w.close_plotter()


def grab_rgb(plotter) -> np.ndarray:
    """H×W×3 uint8 RGB of what ``plotter``'s render window last drew (read back from VTK:
    Qt's ``QWidget.grab`` cannot read the native window VTK renders into)."""
    from lsfa_gui.widgets.native_interactor import rendered_rgb

    return rendered_rgb(plotter.render_window)


def screen_rgb(widget) -> np.ndarray:
    """H×W×3 uint8 RGB of ``widget``'s native window as the X server shows it (what the user sees)."""
    from PySide6.QtGui import QGuiApplication

    return qimage_rgb(QGuiApplication.primaryScreen().grabWindow(int(widget.winId())).toImage())


def qimage_rgb(img) -> np.ndarray:
    """H×W×3 uint8 RGB of a QImage."""
    from PySide6.QtGui import QImage

    img = img.convertToFormat(QImage.Format.Format_RGB32)
    h, w = img.height(), img.width()
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(h, img.bytesPerLine() // 4, 4)[:, :w]
    return arr[..., [2, 1, 0]].copy()  # BGRA -> RGB


def make_state(results) -> InspectionState:
    return scored_state(results)


def test_greying_and_no_3d_state_without_renderer(qtbot):
    from lsfa_gui.widgets.cloud_view import CloudView

    results = [synthetic_result(0, "crack", size=48), synthetic_result(1, "good", size=48, with_xyz=False)]
    st = make_state(results)
    w = CloudView(st, enable_3d=False)
    qtbot.addWidget(w)
    st.set_current(0)  # the view rebuilds at the next event-loop turn
    qtbot.waitUntil(lambda: w.points is not None, timeout=5000)
    valid = np.any(results[0].xyz != 0, axis=-1)
    assert w.points.shape == (int(valid.sum()), 3)
    below = results[0].anomaly_map[valid] < 0.5
    assert below.any() and (~below).any()
    assert np.array_equal(np.isnan(w.display_scalars), below)
    st.set_thresholds(pixel=0.0)  # nothing below: no grey point
    assert not np.isnan(w.display_scalars).any()
    w.pick_index(int(np.argmax(w.scores)))
    assert f"{w.scores.max():.4g}" in w.readout.text()
    st.set_current(1)
    qtbot.waitUntil(lambda: "No 3D data" in w.notice.text(), timeout=5000)
    assert w.showing_notice and w.points is None
    w.stretch_check.setChecked(True)  # user -> state
    assert st.display.per_sample_range
    st.set_display(per_sample_range=False)  # state -> user
    assert not w.stretch_check.isChecked()


def test_a_burst_of_selection_changes_builds_only_the_last_sample(qtbot, monkeypatch):
    """Holding N: the 3D view builds the newest current sample once, not every one on the way;
    a threshold change while a new sample waits is applied when it is built."""
    from lsfa_gui.widgets.cloud_view import CloudView

    built = []
    original = CloudView.refresh_sample

    def counting(self):
        built.append(self.state.current)
        original(self)

    monkeypatch.setattr(CloudView, "refresh_sample", counting)
    results = [synthetic_result(i, "crack", size=48) for i in range(5)]
    st = make_state(results)
    w = CloudView(st, enable_3d=False)
    qtbot.addWidget(w)
    built.clear()
    for i in range(5):
        st.set_current(i)
    st.set_thresholds(pixel=0.0)  # before the build: must not regrey the old sample's points
    qtbot.waitUntil(lambda: w.points is not None, timeout=5000)
    qtbot.wait(30)
    assert built == [4]
    assert w.scores.size == np.any(results[4].xyz != 0, axis=-1).sum() and not np.isnan(w.display_scalars).any()


@pytest.mark.display
@needs_display
def test_scored_points_are_coloured_and_low_scores_grey(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtOpenGLWidgets import QOpenGLWidget

    st = make_state([synthetic_result(0, "crack", size=96), synthetic_result(1, "good", size=96, with_xyz=False)])
    with shown_cloud_view(qtbot, st) as w:
        # VTK draws into its own native window: no QOpenGLWidget (which makes Qt compose the
        # whole window through OpenGL on every repaint)
        assert not isinstance(w.plotter, QOpenGLWidget) and w.plotter.testAttribute(Qt.WidgetAttribute.WA_NativeWindow)
        st.set_current(0)
        qtbot.waitUntil(lambda: w.points is not None and not w.showing_notice, timeout=5000)
        w.plotter.render()
        rgb = grab_rgb(w.plotter).astype(int)
        spread = np.max(rgb, -1) - np.min(rgb, -1)
        grey = (spread < 20) & (rgb.mean(-1) > 60)  # shaded grey surface, not the dark background
        saturated = spread > 80  # colormap colours
        assert grey.sum() > 500, "points below the pixel threshold should be grey"
        assert saturated.sum() > 100, "scored points above the threshold should be coloured"
        # with the pixel threshold above every score, the coloured blob (outside the colour bar) disappears
        bar_free = np.zeros_like(saturated)
        bar_free[:, : int(0.8 * rgb.shape[1])] = True
        coloured_before = int((saturated & bar_free).sum())
        st.set_thresholds(pixel=10.0)
        w.plotter.render()
        rgb2 = grab_rgb(w.plotter).astype(int)
        saturated2 = (np.max(rgb2, -1) - np.min(rgb2, -1)) > 80
        assert coloured_before > 100 and int((saturated2 & bar_free).sum()) < coloured_before // 20
        st.set_thresholds(pixel=0.5)
        w.plotter.render()
        # what the X server shows in the native window, and a window screenshot (Qt's grab
        # plus the scene painted over it), both have the coloured points
        shown = screen_rgb(w.plotter).astype(int)
        assert int(((np.max(shown, -1) - np.min(shown, -1)) > 80).sum()) > 100
        shot = w.grab()
        w.paint_scene_over(shot, w)
        painted = qimage_rgb(shot.toImage()).astype(int)
        assert int(((np.max(painted, -1) - np.min(painted, -1)) > 80).sum()) > 100
        # RGB-only sample: a clear notice instead of an empty scene
        st.set_current(1)
        qtbot.waitUntil(lambda: w.showing_notice, timeout=5000)
        assert "No 3D data" in w.notice.text() and not w._actor.GetVisibility()
        st.set_current(-1)  # nothing selected: a message inside the (kept) 3D scene
        qtbot.waitUntil(lambda: not w.showing_notice, timeout=5000)
        assert w._message_actor.GetVisibility() and not w._actor.GetVisibility()


@pytest.mark.display
@needs_display
def test_the_main_windows_3d_view_shows_the_scene_on_screen(qtbot, settings):
    """In the full window (the view reparented into the splitter after its native window was
    made) the X server shows what VTK rendered, coloured points included."""
    from lsfa_gui.main_window import MainWindow

    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    try:
        w.show()
        qtbot.waitExposed(w)
        st = w.state
        result = synthetic_result(0, "crack", size=96)
        st.set_entries([SampleEntry(result.name, "test", result.label)])
        st.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5), colour_range=(0.1, 1.1)))
        st.set_result(0, result)
        st.set_current(0)
        view = w.cloud_view
        qtbot.waitUntil(lambda: view.points is not None and view._ticket is None, timeout=5000)
        view.plotter.render()
        rendered, shown = grab_rgb(view.plotter).astype(int), screen_rgb(view.plotter).astype(int)
        assert int(((np.max(rendered, -1) - np.min(rendered, -1)) > 80).sum()) > 100
        assert shown.shape == rendered.shape and np.abs(shown - rendered).mean() < 2
    finally:
        w.close()


@pytest.mark.display
@needs_display
def test_dragging_rotates_the_camera_and_a_right_click_reads_a_point(qtbot):
    """Mouse events reach VTK through the (native) widget: the trackball turns, picking works."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    st = make_state([synthetic_result(0, "crack", size=96)])
    with shown_cloud_view(qtbot, st) as w:
        st.set_current(0)
        qtbot.waitUntil(lambda: w.points is not None and w._ticket is None, timeout=5000)
        w.plotter.render()
        eye = np.array(w.plotter.camera_position[0])
        centre = w.plotter.rect().center()
        QTest.mousePress(w.plotter, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
        for step in range(1, 9):
            QTest.mouseMove(w.plotter, centre + QPoint(10 * step, 5 * step))
            qtbot.wait(20)  # the trackball turns on the interactor's timer
        QTest.mouseRelease(w.plotter, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre + QPoint(80, 40))
        assert not np.allclose(np.array(w.plotter.camera_position[0]), eye)
        QTest.mouseClick(w.plotter, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, centre)
        qtbot.waitUntil(lambda: w.picked is not None, timeout=3000)
        assert "mm: score" in w.readout.text()


def test_a_new_model_that_leaves_the_current_cloud_as_it_was_does_not_rebuild_it(qtbot):
    """Loading a model clears results the current (unscored, loaded) sample did not have: the
    3D view keeps the cloud it shows instead of building it again; its own result rebuilds it."""
    from types import SimpleNamespace

    from lsfa_gui.widgets.cloud_view import CloudView

    result = synthetic_result(0, "crack", size=48)
    st = InspectionState()
    st.set_entries([SampleEntry("a", "test", "crack"), SampleEntry("b", "test", "good")])
    st.set_current(0)
    w = CloudView(st, enable_3d=False)
    qtbot.addWidget(w)
    requests = []
    request = w._builder.request
    w._builder.request = lambda **kw: requests.append(kw) or request(**kw)
    st.set_original(st.entries[0], SimpleNamespace(xyz=result.xyz))  # loaded, as lsfa_gui.originals does
    qtbot.waitUntil(lambda: w.points is not None, timeout=5000)
    assert len(requests) == 1 and w.scores is None
    shown = w.points
    st.clear_results()  # what a newly loaded model does (the current sample had no result)
    st.set_result(1, synthetic_result(1, "good", size=48))  # another sample's result
    qtbot.wait(50)  # past the view's 5 ms refresh timer
    assert len(requests) == 1 and w.points is shown
    st.set_result(0, result)  # the current sample's own result: built with its scores
    qtbot.waitUntil(lambda: w.scores is not None, timeout=5000)
    assert len(requests) == 2 and w.scores.size == w.points.shape[0]


@pytest.mark.display
@needs_display
def test_the_3d_view_renders_only_when_what_it_shows_changes(qtbot):
    """Display options of the 2D view and a colour range equal to the one shown do not render
    the scene again (software GL renders on the UI thread); a new colormap does, once."""
    st = make_state([synthetic_result(0, "crack", size=64)])
    with shown_cloud_view(qtbot, st) as w:
        st.set_current(0)
        qtbot.waitUntil(lambda: w.points is not None and not w.showing_notice, timeout=5000)
        qtbot.waitUntil(lambda: not w._render_pending, timeout=5000)
        renders = []
        w.plotter.render_window.AddObserver("EndEvent", lambda *_: renders.append(1))
        qtbot.wait(300)
        renders.clear()
        st.set_display(opacity=0.2, show_ground_truth=False)  # 2D view only
        st.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5), colour_range=(0.1, 1.1)))
        qtbot.wait(300)
        assert renders == []
        lut_before = w._actor.GetMapper().GetLookupTable()
        st.set_display(colormap="viridis")
        qtbot.waitUntil(lambda: len(renders) >= 1, timeout=5000)
        qtbot.wait(300)
        assert len(renders) == 1 and w._actor.GetMapper().GetLookupTable() is not lut_before
