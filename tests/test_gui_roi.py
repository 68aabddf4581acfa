"""Region of interest in the window (issue 16, item 2) on a real model: load a ROI PNG and the
samples are scored again with it (verdicts change), clear it (they change back), draw one in the
image view (a polygon carried to original pixels), save the model with it, and a mask of the
wrong size is refused with one line naming the file."""

import numpy as np
import pytest

from core.roi import write_roi_png
from lsfa_gui.state import NG, OK

SCORE_TIMEOUT = 120_000


@pytest.fixture
def scored_window(qtbot, window, tiny_xyz_model):
    """The window with the tiny dataset listed and scored by the tiny xyz model (real engine)."""
    root, model_path = tiny_xyz_model
    with qtbot.waitSignal(window.jobs.succeeded, timeout=SCORE_TIMEOUT):
        window.open_dataset(str(root), "cookie")
    with qtbot.waitSignal(window.scoring_finished, timeout=SCORE_TIMEOUT):
        window.open_model(str(model_path))
    window.state.set_current(0)
    return window, root


def _verdicts(window):
    return [window.state.verdict(e) for e in window.state.entries]


def _rescore(qtbot, window, action):
    with qtbot.waitSignal(window.scoring_finished, timeout=SCORE_TIMEOUT):
        action()


def test_load_and_clear_a_roi_png_rescores_and_changes_verdicts(qtbot, scored_window, tmp_path):
    window, _root = scored_window
    state = window.state
    window.state.set_thresholds(image=min(e.image_score for e in state.entries))  # every part NG
    assert set(_verdicts(window)) == {NG}
    before = [e.image_score for e in state.entries]
    shape = state.entries[0].ref.load().shape
    roi = np.zeros(shape, bool)
    roi[:8, :8] = True  # a background corner only: nothing of the part is inspected
    path = tmp_path / "corner.png"
    write_roi_png(path, roi)
    _rescore(qtbot, window, lambda: window.load_roi(str(path)))
    assert np.array_equal(window.model.roi, roi)
    after = [e.image_score for e in state.entries]
    assert all(a < b for a, b in zip(after, before)) and set(_verdicts(window)) == {OK}
    result = state.current_entry.result
    assert result.roi is not None and result.anomaly_map[~result.roi].max() == 0.0
    assert window.roi_editor.shade.image is not None  # the ignored area is shaded
    assert any("% of the image inspected" in text for _lvl, text in window.log_panel.entries)
    _rescore(qtbot, window, window.actions_by_name["roi_clear"].trigger)
    assert window.model.roi is None
    assert [e.image_score for e in state.entries] == pytest.approx(before)
    assert set(_verdicts(window)) == {NG}
    assert window.roi_editor.shade.image is None


def test_draw_a_roi_then_save_the_model_with_it(qtbot, scored_window, tmp_path):
    from core.model_io import load_model

    window, _root = scored_window
    state = window.state
    window.state.set_thresholds(image=min(e.image_score for e in state.entries))
    window.actions_by_name["roi_draw"].trigger()
    assert window.roi_editor.drawing
    window.roi_editor.set_corners([(0, 0), (20, 0), (20, 20), (0, 20)])  # a corner of the model grid
    _rescore(qtbot, window, window.actions_by_name["roi_apply"].trigger)
    assert not window.roi_editor.drawing
    roi = window.model.roi
    h, w = state.entries[0].ref.load().shape
    assert roi.shape == (h, w) and 0 < roi.sum() < 0.05 * roi.size
    assert roi[0, 0] and not roi[h // 2, w // 2]  # the drawn corner, in original pixels
    assert set(_verdicts(window)) == {OK}
    out = tmp_path / "with-roi.lsfa"
    with qtbot.waitSignal(window.aux.succeeded, timeout=60_000):
        window.save_model_as(str(out))
    assert np.array_equal(load_model(out).roi, roi)


def test_a_roi_of_the_wrong_size_is_refused_with_its_name(qtbot, scored_window, tmp_path):
    window, _root = scored_window
    path = tmp_path / "small.png"
    write_roi_png(path, np.ones((10, 12), bool))
    window.load_roi(str(path))
    level, text = window.log_panel.entries[-1]
    assert level == "error" and "small.png" in text and "12×10 px" in text
    assert window.model.roi is None and not window.jobs.busy


def test_a_fit_in_the_window_keeps_the_open_models_roi(qtbot, scored_window, monkeypatch):
    from core.config import FitConfig
    from lsfa_gui import tasks

    window, _root = scored_window
    shape = window.state.entries[0].ref.load().shape
    roi = np.ones(shape, bool)
    roi[:, : shape[1] // 2] = False
    window.model.set_roi(roi, "half.png")
    captured = {}

    def fake_fit_job(root, category, model_path, config=None, score_refs=None, roi=None, roi_source="",
                     xyz_units=None):
        captured.update(roi=roi, roi_source=roi_source, xyz_units=xyz_units)
        return lambda progress: None

    monkeypatch.setattr(tasks, "fit_job", fake_fit_job)
    with qtbot.waitSignal(window.jobs.succeeded, timeout=10_000):
        window.fit_current_dataset(FitConfig(), xyz_units="mm")
    assert np.array_equal(captured["roi"], roi) and captured["roi_source"] == "half.png"
    assert captured["xyz_units"] == "mm"  # the point unit chosen in the Fit dialog reaches the fit


def test_view_points_map_to_original_pixels_from_the_grid_or_as_they_are():
    from lsfa_gui.widgets.roi_editor import view_points_to_original

    pts = [[0.0, 0.0], [224.0, 224.0]]
    assert view_points_to_original(pts, (96, 96), (96, 96)).tolist() == pts  # the view shows the original
    # a 96×96 image is padded to 100×100 (2 px each side) and resized to 224: the grid's corners
    assert view_points_to_original(pts, (224, 224), (96, 96)).tolist() == [[-2.0, -2.0], [98.0, 98.0]]
