"""3D view data built off the UI thread: thinning to a bounded number of drawn points (each one
carrying its grid block's highest score), the mesh built in a background thread, one render per
change. Rendering tests need Xvfb (see tests/test_gui_cloud.py); the data logic runs everywhere."""

import threading

import numpy as np
import pytest

from lsfa_gui._testing import scored_state, synthetic_result
from lsfa_gui.cloud_mesh import MeshBuilder, block_max, cloud_data, greyed, thinning_step
from tests.test_gui_cloud import grab_rgb, needs_display, shown_cloud_view


CRACK_ROWS, CRACK_COLUMN = slice(91, 131), 77


def thin_crack_result(size=224):
    """A full-frame part whose only defect is a crack one pixel wide, on an odd column (off a
    grid thinned to every other row and column)."""
    r = synthetic_result(0, "good", size=size, part_radius=0.72)
    r.anomaly_map = r.anomaly_map.copy()
    r.anomaly_map[CRACK_ROWS, CRACK_COLUMN] = 0.95  # every other score is below 0.26
    return r


def test_a_large_cloud_is_drawn_thinned_and_each_point_carries_its_blocks_highest_score():
    r = thin_crack_result()
    valid = np.any(r.xyz != 0, axis=-1)
    data = cloud_data(r.xyz, r.anomaly_map, surface=False, with_mesh=False, max_points=10_000)
    assert data.points.shape == (int(valid.sum()), 3) and data.scores.size == int(valid.sum())  # readout: all points
    k = data.step
    assert k == thinning_step(valid, 10_000) and k >= 2 and data.shown_points.shape[0] <= 10_000
    assert np.array_equal(data.shown_points, r.xyz[::k, ::k][valid[::k, ::k]])  # real points of the grid
    blocks = block_max(r.anomaly_map, valid, k)
    assert blocks.shape == valid[::k, ::k].shape
    assert np.allclose(blocks[CRACK_ROWS.start // k:(CRACK_ROWS.stop - 1) // k + 1, CRACK_COLUMN // k], 0.95)
    # the crack (no pixel of it on the thinned grid) is still drawn in colour: one block per
    # row block it crosses, and nothing else
    assert CRACK_COLUMN % k != 0
    shown = greyed(data.shown_scores, 0.5)
    crossed = (CRACK_ROWS.stop - 1) // k - CRACK_ROWS.start // k + 1
    assert int(np.sum(~np.isnan(shown))) == crossed
    # grey exactly where the block's highest score is below the threshold, at any threshold
    for thr in (0.21, 0.23, 0.25, 0.5, 2.0):
        assert np.array_equal(np.isnan(greyed(data.shown_scores, thr)), data.shown_scores < thr)


def test_a_small_cloud_is_drawn_whole():
    r = synthetic_result(0, "crack", size=64)
    data = cloud_data(r.xyz, r.anomaly_map, surface=True, with_mesh=False)
    assert data.step == 1 and np.array_equal(data.shown_points, data.points)
    assert np.array_equal(data.shown_scores, data.scores)


def test_the_cloud_is_built_off_the_ui_thread(qtbot, monkeypatch):
    """The view asks the builder thread; the UI thread gets the finished arrays."""
    from lsfa_gui import cloud_mesh
    from lsfa_gui.widgets.cloud_view import CloudView

    threads = []
    real = cloud_mesh.cloud_data

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(cloud_mesh, "cloud_data", recording)
    result = synthetic_result(0, "crack", size=48)
    st = scored_state([result])
    w = CloudView(st, enable_3d=False)
    qtbot.addWidget(w)
    st.set_current(0)
    qtbot.waitUntil(lambda: w.points is not None, timeout=5000)
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert w.scores.size == int(np.any(result.xyz != 0, axis=-1).sum())


def test_only_the_newest_build_is_delivered(qtbot, monkeypatch):
    from lsfa_gui import cloud_mesh

    release = threading.Event()
    real = cloud_mesh.cloud_data

    def slow_first(xyz, anomaly_map, **kwargs):
        if xyz.shape[0] == 32:  # the first request waits until the second one is queued
            release.wait(5)
        return real(xyz, anomaly_map, **kwargs)

    monkeypatch.setattr(cloud_mesh, "cloud_data", slow_first)
    builder = MeshBuilder()
    delivered = []
    builder.built.connect(lambda ticket, data: delivered.append((ticket, data.points.shape[0])))
    first, second = synthetic_result(0, size=32), synthetic_result(0, size=48)
    builder.request(xyz=first.xyz, anomaly_map=first.anomaly_map, with_mesh=False)
    newest = builder.request(xyz=second.xyz, anomaly_map=second.anomaly_map, with_mesh=False)
    release.set()
    qtbot.waitUntil(lambda: bool(delivered), timeout=5000)
    qtbot.wait(50)
    assert delivered == [(newest, int(np.any(second.xyz != 0, axis=-1).sum()))]
    builder.shutdown()


@pytest.mark.display
@needs_display
def test_a_thinned_cloud_renders_its_small_defect_once_per_change_and_says_so(qtbot):
    """Screenshot check: a one-pixel-wide crack of a thinned full-frame cloud is still drawn in
    colour; a threshold change costs one VTK render; a camera reset none of its own."""
    r = thin_crack_result()  # ~50k valid points: more than MAX_SHOWN_POINTS
    st = scored_state([r], thresholds=(0.6, 0.5), colour_range=(0.1, 1.1))
    with shown_cloud_view(qtbot, st) as w:
        w.style_combo.setCurrentText("Points")  # a one-vertex-wide line is drawn by points, not triangles
        st.set_current(0)
        qtbot.waitUntil(lambda: w.points is not None and not w.showing_notice, timeout=10_000)
        assert w._data.step >= 2 and "drawn:" in w.readout.text() and "highest score" in w.readout.text()
        assert w.scores.size == int(np.any(r.xyz != 0, axis=-1).sum())  # the readout counts every point
        renders = []
        w.plotter.render_window.AddObserver("StartEvent", lambda *_: renders.append(1))
        qtbot.wait(300)  # the build's render has happened
        renders.clear()
        w.reset_camera()
        assert renders == []  # no render inside the reset; one follows, coalesced
        qtbot.waitUntil(lambda: len(renders) >= 1, timeout=5000)
        qtbot.wait(200)
        assert len(renders) == 1
        rgb = grab_rgb(w.plotter).astype(int)
        saturated = (np.max(rgb, -1) - np.min(rgb, -1)) > 80
        saturated[:, int(0.8 * rgb.shape[1]):] = False  # not the colour bar
        assert saturated.sum() >= 20, "the one-pixel-wide crack should be drawn in colour"
        renders.clear()
        st.set_thresholds(pixel=2.0)  # every point grey
        qtbot.waitUntil(lambda: len(renders) >= 1, timeout=5000)
        qtbot.wait(200)
        assert len(renders) == 1  # one render per change (pyvistaqt's render() would render twice)
        rgb = grab_rgb(w.plotter).astype(int)
        saturated = (np.max(rgb, -1) - np.min(rgb, -1)) > 80
        saturated[:, int(0.8 * rgb.shape[1]):] = False
        assert saturated.sum() == 0
