"""The crop around the part (core.object_frame): its size from the training parts, the crop in
prepare, the grid map back to the original image, the fit, the model file, old files."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.preprocess import pad_to_square
from core.data.sample import finite_valid_points
from core.object_frame import MARGIN, ObjectFrame, frame_for, part_extent


def disc_cloud(shape=(120, 160), centre=(50, 70), radius=20):
    """H×W×3 cloud: a disc of points (z = 0.5 m) on an empty (0, 0, 0) background."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    xyz = np.zeros(shape + (3,), np.float32)
    inside = np.hypot(yy - centre[0], xx - centre[1]) <= radius
    xyz[inside] = (0.01, 0.02, 0.5)
    return xyz, inside


def test_part_extent_is_the_centroid_and_largest_distance():
    xyz, _ = disc_cloud()
    cy, cx, r = part_extent(finite_valid_points(xyz))
    assert (cy, cx) == pytest.approx((50, 70), abs=0.01)
    assert r == pytest.approx(20, abs=0.01)
    xyz[5, 5] = np.nan  # NaN points are not foreground
    assert part_extent(finite_valid_points(xyz))[2] == pytest.approx(r, abs=0.01)
    assert part_extent(np.zeros((8, 8), bool)) is None


def test_box_extent_is_not_moved_by_holes_in_a_colour_mask():
    from core.object_frame import box_extent

    _, inside = disc_cloud()
    holed = inside.copy()
    holed[:, 72:88] = False  # a stretch of the part that its colour did not reveal
    holed[:, 88:] = inside[:, 88:]
    assert part_extent(holed)[1] < 68  # the centroid moves away from the hole
    cy, cx, r = box_extent(holed)
    assert (cy, cx) == pytest.approx((50, 70), abs=0.6) and r == pytest.approx(20, abs=0.6)
    assert box_extent(np.zeros((8, 8), bool)) is None


def test_frame_side_from_the_largest_part_at_least_the_grid():
    assert frame_for([10.0, 20.0, None], 32) == ObjectFrame(int(np.ceil(2 * 20 * MARGIN)))
    assert frame_for([10.0, 20.0], 64) == ObjectFrame(64)  # never smaller than the grid
    assert frame_for([None, None], 64) is None
    with pytest.raises(ValueError, match="object frame"):
        ObjectFrame(0)
    with pytest.raises(ValueError, match="side_px"):
        ObjectFrame.from_dict({})


def test_window_is_centred_on_the_part_and_absent_without_one():
    xyz, _ = disc_cloud()
    extent = part_extent(finite_valid_points(xyz))
    frame = ObjectFrame(50)
    assert frame.window(extent, 160) == (25, 45)  # centre (50, 70) minus half the side
    assert frame.window(None, 160) is None  # no foreground
    assert ObjectFrame(160).window(extent, 160) is None  # as large as the image: no crop
    assert not frame.cuts(extent) and ObjectFrame(36).cuts(extent)  # radius 20 > 36 / 2


def test_a_part_larger_than_the_square_is_named(tmp_path, caplog):
    from core.prepare import prepare_sample

    sample = demo_part()
    with caplog.at_level("WARNING", logger="core.prepare"):
        prepare_sample(sample, 32, True, tmp_path, ObjectFrame(40))  # far smaller than the puck
    assert "reaches beyond the model's 40 px square" in caplog.text and "crack_000" in caplog.text


def test_pad_to_square_crops_with_negative_offsets():
    arr = np.arange(30).reshape(5, 6)
    out = pad_to_square(arr, 4, -1, -2)  # the canvas starts at row 1, column 2 of the array
    assert out.tolist() == arr[1:5, 2:6].tolist()
    out = pad_to_square(arr, 4, -3, 4)  # rows 3-4 land on canvas rows 0-1, columns 0-1 on 4-5: cut
    assert out[:2, :].sum() == 0 and out[2:].sum() == 0
    out = pad_to_square(arr, 4, -3, 1)
    assert out[:2, 1:].tolist() == arr[3:5, 0:3].tolist() and out[:, 0].sum() == 0 and out[2:].sum() == 0


def demo_part(size=256):
    from core.data.sample import Sample
    from core.demo.sample import render_sample

    s = render_sample(5, "puck", "test/crack", 0, size=size)
    return Sample("crack_000", s.rgb, s.xyz, s.mask != 0, "crack")


def test_prepared_part_fills_the_grid_and_maps_back(tmp_path):
    from core.prepare import part_extent_px, prepare_sample

    sample = demo_part()
    radius, side = part_extent_px(sample, True, tmp_path)
    assert side == 300 and 0 < radius < 100  # 256 px padded to 300; a puck of ~1/3 of the frame
    frame = frame_for([radius], 64)
    whole = prepare_sample(sample, 64, True, tmp_path)
    cropped = prepare_sample(sample, 64, True, tmp_path, frame)
    share = [np.any(s.xyz != 0, axis=-1).mean() for s in (whole, cropped)]
    assert share[1] > 4 * share[0]  # the part fills the grid
    fg = np.any(cropped.xyz != 0, axis=-1)
    rows, cols = np.nonzero(fg)
    assert abs(rows.mean() - 32) < 3 and abs(cols.mean() - 32) < 3  # centred
    grid = cropped.meta["grid"]
    assert grid.side == frame.side_px and grid.top < 0 and grid.left < 0
    # the defect carried back lands on the original defect; scores outside the square are 0
    mask = sample.mask != 0
    back = grid.mask_to_original(cropped.mask)
    assert back.shape == mask.shape
    assert np.logical_and(back, mask).sum() / np.logical_or(back, mask).sum() > 0.6
    ones = grid.scores_to_original(np.ones((64, 64), np.float32))
    rows_in = (np.arange(256) + grid.top >= 0) & (np.arange(256) + grid.top < grid.side)
    cols_in = (np.arange(256) + grid.left >= 0) & (np.arange(256) + grid.left < grid.side)
    assert np.all(ones[np.ix_(rows_in, cols_in)] == 1)
    assert ones[~rows_in].sum() == 0 and ones[:, ~cols_in].sum() == 0
    assert np.array_equal(grid.mask_to_model(mask), cropped.mask != 0)


@pytest.fixture(scope="module")
def small_part_data(tmp_path_factory):
    """A demo puck dataset at 128 px (the puck about a third of the frame), fitted on a 32 px grid."""
    from core.demo import generate_demo_dataset

    tmp = tmp_path_factory.mktemp("frame")
    return generate_demo_dataset(tmp / "demo", seed=3, categories=["puck"], size=128, n_train=4,
                                 n_validation=3, n_test_good=1, n_test_per_defect=1, defect_types=["dent"])


def _fit(root, tmp_path, monkeypatch, **overrides):
    from core.config import FitConfig
    from core.pipeline import fit

    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path / "cache"))
    cfg = FitConfig(image_size=32, grid=4, adapt=False, self_check=False, **overrides)
    return fit(root, "puck", cfg)


def test_fit_crops_around_the_part_and_the_file_keeps_it(small_part_data, tmp_path, monkeypatch):
    from core.model_io import load_model, save_model

    model = _fit(small_part_data, tmp_path, monkeypatch)
    frame = model.object_frame
    assert frame is not None and 32 <= frame.side_px < 128
    from core.commands.info import model_summary

    assert model_summary(model)["object_frame_px"] == frame.side_px
    save_model(model, tmp_path / "m.lsfa")
    loaded = load_model(tmp_path / "m.lsfa")
    assert loaded.object_frame == frame
    ref = [r for r in _refs(small_part_data) if r.label == "dent"][0]
    result = loaded.score(ref.load())
    assert result.grid.side == frame.side_px and result.grid.top < 0
    assert result.anomaly_map.shape == (32, 32)
    assert result.original_map().shape == (128, 128)


def _refs(root):
    from core.data.dataset import open_dataset

    return open_dataset(root).samples("puck", "test")


def test_no_crop_when_switched_off_or_when_the_clouds_are_not_used(small_part_data, tmp_path, monkeypatch):
    assert _fit(small_part_data, tmp_path, monkeypatch, object_crop=False).object_frame is None
    assert _fit(small_part_data, tmp_path, monkeypatch, modalities="rgb").object_frame is None


def test_data_without_clouds_can_be_cropped_around_the_part_found_by_its_colour(small_part_data, tmp_path, monkeypatch):
    """The same pucks with their point clouds left out: not cropped by default; with
    rgb_object_crop the crop comes from the RGB images, may enlarge (side down to half the grid),
    and a scored part is centred in it."""
    import shutil

    from core.data.dataset import open_dataset

    rgb_only = tmp_path / "rgb_only"
    shutil.copytree(small_part_data, rgb_only, ignore=shutil.ignore_patterns("xyz"))
    assert _fit(rgb_only, tmp_path, monkeypatch, ensemble=[]).object_frame is None  # off by default
    model = _fit(rgb_only, tmp_path, monkeypatch, ensemble=[], rgb_object_crop=True)  # one 32 px model
    assert model.modalities == ("rgb",)
    assert model.trained_on_point_clouds is False  # a crop found by colour is no point cloud (ensemble: auto)
    frame = model.object_frame
    assert frame is not None and 16 <= frame.side_px < 100
    ref = [r for r in open_dataset(rgb_only).samples("puck", "test") if r.label == "good"][0]
    result = model.score(ref.load())
    assert result.grid.side == frame.side_px
    cloud_model = _fit(small_part_data, tmp_path, monkeypatch)
    assert cloud_model.trained_on_point_clouds
    same = [r for r in open_dataset(small_part_data).samples("puck", "test") if r.name == ref.name]
    assert len(same) == 1
    cloud_grid = cloud_model.score(same[0].load()).grid
    # the colour finds the part where its points are: the two crops' centres agree within a few pixels
    centre = lambda g: (g.side / 2 - g.top, g.side / 2 - g.left)  # noqa: E731
    assert np.allclose(centre(result.grid), centre(cloud_grid), atol=6)


def test_model_files_written_before_the_crop_do_not_crop():
    from core.config import FitConfig

    assert FitConfig().object_crop is True
    assert FitConfig.from_dict({"image_size": 224}).object_crop is False


def test_pixel_metrics_cover_the_whole_image_with_a_crop(tmp_path):
    from core.grid_map import GridMap
    from core.prepare import part_extent_px, prepare_sample

    sample = demo_part()
    radius, _ = part_extent_px(sample, True, tmp_path)
    cropped = prepare_sample(sample, 64, True, tmp_path, frame_for([radius], 64))
    whole = prepare_sample(sample, 64, True, tmp_path)
    grid = cropped.meta["grid"]
    assert grid.is_crop and not whole.meta["grid"].is_crop
    amap = (cropped.mask != 0).astype(np.float32)  # a perfect map of the defect on the crop
    on_whole, mask = grid.to_whole_frame(amap, cropped.mask)
    assert on_whole.shape == mask.shape == (64, 64)
    truth = whole.meta["grid"].mask_to_model(sample.mask)
    assert np.logical_and(mask != 0, truth).sum() / np.logical_or(mask != 0, truth).sum() > 0.5
    assert np.logical_and(on_whole > 0.5, truth).sum() / np.logical_or(on_whole > 0.5, truth).sum() > 0.5
    same = GridMap.for_shape(256, 256, 64)
    assert same.to_whole_frame(amap, cropped.mask)[0] is amap  # no crop: unchanged


def test_info_names_the_crop(small_part_data, tmp_path, monkeypatch):
    from core.commands.info import format_model, model_summary

    model = _fit(small_part_data, tmp_path, monkeypatch)
    text = format_model(model_summary(model))
    side = model.object_frame.side_px
    assert f"crop around the part: a {side}×{side} px square" in text
    model.object_frame = None
    assert "crop around the part: none" in format_model(model_summary(model))


def test_an_ensembles_members_share_one_crop(small_part_data, tmp_path, monkeypatch):
    from core.model_io import load_model, save_model

    import core.fitting as fitting

    measured = []
    measure = fitting.part_frame
    monkeypatch.setattr(fitting, "part_frame", lambda *a, **k: measured.append(1) or measure(*a, **k))
    # a 96 px member: larger than the square the 32 px member's parts alone would need (~90 px)
    model = _fit(small_part_data, tmp_path, monkeypatch, ensemble=[[96, 12, 1.0]])
    assert len(measured) == 1  # the parts are measured once, for the first member
    frames = {m.object_frame for m in model.members}
    assert len(frames) == 1 and None not in frames
    side = frames.pop().side_px
    assert side == 96  # the largest member's grid: no member enlarges the image
    save_model(model, tmp_path / "e.lsfa")
    ref = [r for r in _refs(small_part_data) if r.label == "dent"][0]
    result = load_model(tmp_path / "e.lsfa").score(ref.load())
    assert result.grid.side == side and result.anomaly_map.shape == (96, 96)


def test_cli_fit_takes_the_rgb_crop_switch():
    import argparse

    from core.commands.fit import config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    base = ["fit", "data", "-c", "x", "-o", "m.lsfa"]
    assert config_from_args(parser.parse_args(base)).rgb_object_crop is False
    assert config_from_args(parser.parse_args(base + ["--rgb-object-crop"])).rgb_object_crop is True
