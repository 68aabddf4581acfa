"""The GUI at original resolution (issue 16 item 3): a listed sample's RGB image and point cloud
show before any fit or scoring; after scoring the heatmap and outlines are drawn on the original
image (the map carried back from the model grid), thresholds keep working, and the exported
overlay, CSV defect pixels and regions are in original pixels."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PIL import Image

from core import render
from core.grid_map import GridMap
from core.results import SampleResult
from lsfa_gui import export
from lsfa_gui.colormaps import lut
from lsfa_gui.jobs import entries_from_refs
from lsfa_gui.state import ModelInfo, ThresholdSettings


def write_generated_samples(folder, height=200, width=150):
    """Two generated demo samples cropped to height×width, as a plain folder (NAME.png +
    NAME.npy cloud in metres); returns their GT masks (the crack's is not empty)."""
    from core.demo.sample import render_sample

    folder.mkdir()
    masks = {}
    for name, kind in (("a_crack", "test/crack"), ("b_good", "test/good")):
        s = render_sample(5, "puck", kind, 0, size=256)
        top, left = (256 - height) // 2, (256 - width) // 2
        crop = (slice(top, top + height), slice(left, left + width))
        Image.fromarray(s.rgb[crop]).save(folder / f"{name}.png")
        np.save(folder / f"{name}.npy", np.ascontiguousarray(s.xyz[crop]))
        masks[name] = np.asarray(s.mask[crop]) > 0
    return masks


def refs_of(folder):
    from core.data.dataset import load_inputs

    return load_inputs([folder])


def model_grid_result(name, mask, size=224):
    """A scored result whose map is the GT mask carried to the model grid (1 inside, 0.1 outside)."""
    grid = GridMap.for_shape(*mask.shape, size)
    amap = np.where(grid.mask_to_model(mask), 1.0, 0.1).astype(np.float32)
    return SampleResult(name=name, label=None, image_score=float(amap.max()), anomaly_map=amap, grid=grid)


def select_and_wait(qtbot, window, index, shape):
    window.state.set_current(index)
    qtbot.waitUntil(lambda: window.image_view.base_item.image is not None
                    and window.image_view.base_item.image.shape[:2] == shape, timeout=20_000)


def test_a_listed_sample_shows_its_original_image_and_cloud_before_scoring(qtbot, window, tmp_path):
    write_generated_samples(tmp_path / "samples")
    window.state.set_entries(entries_from_refs(refs_of(tmp_path / "samples")))
    assert window.state.scored == []
    select_and_wait(qtbot, window, 0, (200, 150))
    loaded = window.state.original(window.state.entries[0])
    assert np.array_equal(window.image_view.base_item.image, loaded.rgb)  # the RGB as read, not padded
    assert "not scored yet" in window.image_view.header.text()
    assert window.image_view.heat_item.image is None or not window.image_view.heat_item.isVisible() \
        or window.image_view._amap is None
    qtbot.waitUntil(lambda: window.cloud_view.points is not None, timeout=5000)  # the cloud as loaded
    assert window.cloud_view.points.shape[0] == int(loaded.valid.sum())
    assert "not scored yet" in window.cloud_view.readout.text()
    select_and_wait(qtbot, window, 1, (200, 150))  # the next one loads too


def test_the_real_tire_shows_at_original_resolution_before_scoring(qtbot, window, shared_data):
    folder = shared_data / "mvtec3d_tire_fullres_samples" / "tire" / "test" / "cut" / "rgb"
    if not folder.is_dir():
        pytest.skip("full-resolution tire samples not present")
    window.state.set_entries(entries_from_refs(refs_of(folder)))
    select_and_wait(qtbot, window, 0, (800, 600))


def scored_crack_state(window, tmp_path):
    """Generated samples listed in ``window`` with sample 0 (a crack) scored on the model grid:
    (masks by name at original resolution, the window's state)."""
    masks = write_generated_samples(tmp_path / "samples")
    st = window.state
    st.set_entries(entries_from_refs(refs_of(tmp_path / "samples")))
    st.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5), colour_range=(0.1, 1.1)))
    st.set_result(0, model_grid_result("a_crack", masks["a_crack"]))
    return masks, st


def test_after_scoring_the_map_and_outlines_are_drawn_on_the_original_image(qtbot, window, tmp_path):
    masks, st = scored_crack_state(window, tmp_path)
    select_and_wait(qtbot, window, 0, (200, 150))
    view = window.image_view
    qtbot.waitUntil(lambda: view._amap is not None and view._amap.shape == (200, 150), timeout=5000)
    assert view.heat_item.image.shape[:2] == (200, 150)
    predicted = view._amap >= st.thresholds.pixel
    iou = (predicted & masks["a_crack"]).sum() / (predicted | masks["a_crack"]).sum()
    assert iou > 0.9  # the map carried back lies on the defect of the original image
    outline = np.all(view.pred_item.image[..., :3] == render.PREDICTION_RGB, axis=-1) & (view.pred_item.image[..., 3] > 0)
    assert np.array_equal(outline, render.outline(predicted, 1))
    # thresholds keep working at original resolution: a higher pixel threshold shrinks the outline
    st.set_thresholds(pixel=0.9)
    smaller = view._amap >= 0.9
    assert smaller.sum() < predicted.sum()
    outline = np.all(view.pred_item.image[..., :3] == render.PREDICTION_RGB, axis=-1) & (view.pred_item.image[..., 3] > 0)
    assert np.array_equal(outline, render.outline(smaller, 1))
    # the table's regions and the CSV's defect pixels are original pixels of the same map
    regions = st.regions(st.entries[0])
    assert sum(r.area_px for r in regions) == int(smaller.sum())
    rows = list(csv.DictReader(export.export_csv(st, tmp_path / "r.csv").open()))
    assert int(rows[0]["defect_pixels"]) == int(smaller.sum())
    top, left, bottom, right = regions[0].bbox
    assert bottom <= 200 and right <= 150


def test_exported_overlays_are_at_original_resolution(qtbot, window, tmp_path):
    _, st = scored_crack_state(window, tmp_path)
    png = export.export_overlay_png(st, 0, tmp_path / "o.png", lut("turbo"))  # loaded from its files
    assert Image.open(png).size == (150, 200)
    paths = export.export_all_overlays(st, tmp_path / "all", lut("turbo"), annotated=True)
    assert len(paths) == 1 and Image.open(paths[0]).size[0] >= 150


def test_real_tire_mask_round_trip_through_the_model_grid(shared_data):
    folder = shared_data / "mvtec3d_tire_rgb" / "tire" / "test"
    masks = [np.asarray(Image.open(p)) > 0 for p in sorted(folder.glob("*/gt/*.png"))]
    masks = [m for m in masks if m.sum() >= 200]
    if not masks:
        pytest.skip("real tire masks not present")
    for mask in masks:
        grid = GridMap.for_shape(*mask.shape, 224)
        back = grid.mask_to_original(grid.mask_to_model(mask))
        assert back.shape == mask.shape
        assert (back & mask).sum() / (back | mask).sum() > 0.6  # small defects: ~1.8 original px per model px


@pytest.mark.display
@pytest.mark.skipif(not (os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") == "xcb"),
                    reason="QtInteractor needs an X display with the xcb platform (Xvfb)")
def test_the_3d_view_renders_a_listed_cloud_before_scoring(qtbot, tmp_path):
    """Screenshot check under Xvfb: the unscored cloud as loaded is drawn (grey shaded points)."""
    from lsfa_gui.state import InspectionState
    from tests.test_gui_cloud import grab_rgb, shown_cloud_view

    write_generated_samples(tmp_path / "samples")
    st = InspectionState()
    st.set_entries(entries_from_refs(refs_of(tmp_path / "samples")))
    with shown_cloud_view(qtbot, st) as w:
        st.set_current(0)
        st.set_original(st.entries[0], st.entries[0].ref.load())  # as lsfa_gui.originals does
        qtbot.waitUntil(lambda: w.points is not None and not w.showing_notice, timeout=5000)
        assert w._actor.GetVisibility() and "not scored yet" in w.readout.text()
        w.plotter.render()
        rgb = grab_rgb(w.plotter).astype(int)
        grey = (np.max(rgb, -1) - np.min(rgb, -1) < 20) & (rgb.mean(-1) > 60)
        assert grey.sum() > 500  # the cloud is drawn (grey: no scores yet), not an empty scene


def test_opening_a_folder_shows_its_first_sample_at_once_without_a_model(qtbot, window, tiny_xyz_model):
    root, _model = tiny_xyz_model
    with qtbot.waitSignal(window.jobs.finished, timeout=60_000):
        window.open_dataset(str(root), "cookie")
    assert window.model is None and window.state.scored == [] and window.state.current == 0
    qtbot.waitUntil(lambda: window.image_view.base_item.image is not None
                    and window.image_view.base_item.image.shape[:2] == (96, 96), timeout=20_000)
    assert window.state.original(window.state.entries[0]).shape == (96, 96)


def test_a_large_unscored_cloud_is_thinned_on_its_grid():
    from lsfa_gui.widgets.cloud_view import MAX_UNSCORED_GRID, thinned_grid

    xyz = np.random.default_rng(0).random((800, 800, 3)).astype(np.float32)
    thin = thinned_grid(xyz)
    assert thin.shape == (200, 200, 3) and thin.shape[0] * thin.shape[1] <= MAX_UNSCORED_GRID
    assert np.array_equal(thin[1, 2], xyz[4, 8])  # every 4th row and column, still organized
    small = xyz[:150, :200]
    assert thinned_grid(small) is small or np.array_equal(thinned_grid(small), small)
