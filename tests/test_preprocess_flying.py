"""Flying points (mixed pixels at depth discontinuities) leave the cloud, surfaces stay."""

from __future__ import annotations

import numpy as np

from core.data.preprocess import flying_points, pixel_angle, preprocess
from core.data.sample import Sample

ANGLE = 0.0008  # radians per pixel (0.48 mm at 0.6 m)


def _cloud(depth: np.ndarray) -> np.ndarray:
    """Organized cloud of a pinhole sensor: each pixel's ray scaled to ``depth`` (metres)."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(u - w / 2) * ANGLE, (v - h / 2) * ANGLE, np.ones((h, w))], axis=-1)
    return (rays * depth[..., None]).astype(np.float32)


def _step_scene(seed: int = 0):
    """Table at 0.6 m with a 15 mm high box, a 70° ramp (steep but real surface), 0.1 mm
    noise, and 40 % of the box's rim pixels replaced by points 20-80 % of the way down."""
    rng = np.random.default_rng(seed)
    h, w = 90, 120
    depth = np.full((h, w), 0.6) + rng.normal(0, 0.0001, (h, w))
    box = np.zeros((h, w), bool)
    box[30:60, 20:60] = True
    depth[box] -= 0.015
    ramp_cols = np.arange(80, 100)
    depth[20:70, 80:100] -= (ramp_cols - 80) * 0.6 * ANGLE * np.tan(np.radians(70))
    rim = box & ~np.pad(box[1:-1, 1:-1] & box[:-2, 1:-1] & box[2:, 1:-1] & box[1:-1, :-2] & box[1:-1, 2:], 1)
    fly = rim & (rng.random((h, w)) < 0.4)
    depth[fly] += 0.015 * rng.uniform(0.2, 0.8, int(fly.sum()))
    return _cloud(depth), fly, box


def test_flying_points_removes_mixed_pixels_and_keeps_surfaces():
    xyz, fly, box = _step_scene()
    valid = np.ones(fly.shape, bool)
    assert abs(pixel_angle(xyz, valid) - ANGLE) < 0.2 * ANGLE
    found = flying_points(xyz, valid)
    assert found[fly].mean() > 0.95  # nearly every mixed pixel goes
    assert found[~fly].sum() <= 3  # the table, the box top and the 70° ramp stay
    assert not found[20:70, 80:100].any()


def test_flying_points_off_and_on_empty_cloud():
    xyz, fly, _ = _step_scene()
    valid = np.ones(fly.shape, bool)
    assert not flying_points(xyz, valid, ratio=0).any()
    assert not flying_points(np.zeros_like(xyz), np.zeros(fly.shape, bool)).any()


def test_preprocess_drops_flying_points_from_xyz_but_keeps_their_colour():
    xyz, fly, box = _step_scene(seed=1)
    rgb = np.full(fly.shape + (3,), 200, np.uint8)
    out = preprocess(Sample(name="step", rgb=rgb, xyz=xyz, label="good"))
    pad = out.meta["preprocess"]["pad"]
    crop = (slice(pad["top"], pad["top"] + pad["height"]), slice(pad["left"], pad["left"] + pad["width"]))
    kept = np.abs(out.xyz[crop]).sum(-1) > 0
    info = out.meta["preprocess"]
    assert kept[fly].mean() < 0.05  # gone: as flying points, or the low ones as table points
    assert info["flying_removed"] >= 0.5 * fly.sum()
    assert kept[box & ~fly].mean() > 0.99  # the box itself stays
    # mixed pixels within the cluster distance (6 mm) of the box top are not background:
    # they leave the cloud as flying points, and their pixels keep the part's colour
    near_top = fly & (xyz[..., 2] < 0.585 + 0.005)
    assert near_top.sum() >= 5
    assert (out.rgb[crop][near_top] == 200).all()


def test_flying_points_only_look_inside_the_valid_box():
    """The search is restricted to the valid points' bounding box: a scene placed inside a
    larger empty frame gives exactly the same points as the scene alone."""
    xyz, fly, box = _step_scene(seed=1)
    valid = np.ones(fly.shape, bool)
    alone = flying_points(xyz, valid)
    big = np.zeros((150, 200, 3), np.float32)
    big[20:110, 50:170] = xyz
    big_valid = np.zeros((150, 200), bool)
    big_valid[20:110, 50:170] = True
    framed = flying_points(big, big_valid)
    assert framed[20:110, 50:170].tolist() == alone.tolist()
    assert not framed[~big_valid].any()
