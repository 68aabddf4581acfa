"""Preprocessing (plane removal, largest cluster, square padding, cache) and resizing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.data.dataset import open_dataset
from core.data.preprocess import (
    PreprocessParams,
    fit_plane_ransac,
    largest_cluster,
    preprocess,
    square_padding,
)
from core.data.resize import resize_sample
from core.data.sample import Sample
from core.errors import DataError, UserError

PITCH = 0.0005  # metres per pixel


def scene(h: int = 120, w: int = 160, seed: int = 0) -> tuple[Sample, dict]:
    """Tilted table at ~0.6 m, a 1.5 cm box on it, a floating speck, 2 % dropouts."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = (u - w / 2) * PITCH, (v - h / 2) * PITCH
    z = 0.6 + 0.1 * x + 0.05 * y + rng.normal(0, 0.0003, (h, w))
    box = (abs(u - w / 2) < 25) & (abs(v - h / 2) < 20)
    z[box] -= 0.015
    speck = np.zeros((h, w), bool)
    speck[15:19, 130:134] = True
    z[speck] -= 0.03
    xyz = np.stack([x, y, z], axis=-1).astype(np.float32)
    dropout = rng.random((h, w)) < 0.02
    xyz[dropout] = 0
    rgb = np.full((h, w, 3), 200, np.uint8)
    mask = np.zeros((h, w), bool)
    mask[50:55, 70:80] = True
    s = Sample(name="s", rgb=rgb, xyz=xyz, mask=mask, label="dent")
    return s, {"box": box & ~dropout, "speck": speck & ~dropout, "dropout": dropout}


def test_plane_removed_object_kept_and_padded():
    s, parts = scene()
    out = preprocess(s)
    side, top, left = square_padding(120, 160)
    assert (side, top, left) == (200, 40, 20)
    assert out.xyz.shape == (200, 200, 3) and out.rgb.shape == (200, 200, 3) and out.mask.shape == (200, 200)
    crop = (slice(top, top + 120), slice(left, left + 160))
    valid = out.valid[crop]
    np.testing.assert_array_equal(valid, parts["box"])  # table and speck gone, whole box kept
    np.testing.assert_array_equal(out.xyz[crop][valid], s.xyz[valid])  # kept points unchanged
    assert not out.valid[:top].any() and not out.valid[:, :left].any()
    removed = s.valid & ~parts["box"]
    assert np.all(out.rgb[crop][removed] == 0) and np.all(out.rgb[crop][parts["box"]] == 200)
    assert np.all(out.rgb[crop][parts["dropout"]] == 200)  # already-invalid pixels keep their colour
    np.testing.assert_array_equal(out.mask[crop], s.mask)
    meta = out.meta["preprocess"]
    assert meta["pad"] == {"side": 200, "top": 40, "left": 20, "height": 120, "width": 160}
    assert meta["cluster_removed"] == parts["speck"].sum()
    assert abs(meta["plane"][2]) > 0.99  # normal close to the camera axis
    assert s.xyz.shape == (120, 160, 3) and s.rgb[0, 0, 0] == 200  # input untouched


def test_thresholds_are_parameters():
    s, parts = scene()
    # a plane tolerance above the box height (1.5 cm) removes the box too; the speck is left
    out = preprocess(s, params=PreprocessParams(plane_remove_m=0.02))
    assert out.valid.sum() == parts["speck"].sum()
    with pytest.raises(DataError, match="nothing left after removing the background plane"):
        preprocess(s, params=PreprocessParams(plane_remove_m=0.05))


def test_idempotent_on_preprocessed_data():
    s, _ = scene()
    once = preprocess(s)
    twice = preprocess(once)
    assert twice.meta["preprocess"]["plane"] is None  # empty border: no plane fit
    np.testing.assert_array_equal(twice.xyz, once.xyz)
    np.testing.assert_array_equal(twice.rgb, once.rgb)


def test_square_padding_rule():
    assert square_padding(800, 600) == (800, 0, 100)
    assert square_padding(400, 300) == (400, 0, 50)
    assert square_padding(480, 640) == (700, 110, 30)
    assert square_padding(251, 300) == (300, 24, 0)  # odd pixel goes to the bottom
    assert square_padding(251, 300, multiple=0) == (300, 24, 0)
    assert square_padding(90, 120, multiple=0) == (120, 15, 0)


def test_ransac_recovers_plane_with_outliers():
    rng = np.random.default_rng(3)
    xy = rng.uniform(-0.1, 0.1, (3000, 2))
    z = 0.5 + 0.2 * xy[:, 0] - 0.1 * xy[:, 1] + rng.normal(0, 0.0005, 3000)
    pts = np.column_stack([xy, z])
    pts[:1000, 2] += rng.uniform(0.02, 0.2, 1000)  # a third are outliers
    plane, inliers = fit_plane_ransac(pts, 0.004)
    expected = np.array([0.2, -0.1, -1.0]) / np.linalg.norm([0.2, -0.1, -1.0])
    assert abs(abs(plane[:3] @ expected) - 1) < 1e-3
    assert 1950 <= inliers <= 2050
    assert fit_plane_ransac(pts[:2], 0.004) is None


def test_largest_cluster_uses_3d_distance():
    h, w = 20, 30
    xyz = np.zeros((h, w, 3), np.float32)
    v, u = np.mgrid[0:h, 0:w]
    xyz[..., 0], xyz[..., 1], xyz[..., 2] = u * 0.001, v * 0.001, 0.5
    xyz[:, 20:, 2] = 0.52  # a 2 cm step: grid neighbours but far apart in 3D
    keep = np.ones((h, w), bool)
    out = largest_cluster(xyz, keep, eps_m=0.006, link_px=2)
    assert out[:, :20].all() and not out[:, 20:].any()
    xyz[:, 20:, 2] = 0.503  # a 3 mm step stays connected
    assert largest_cluster(xyz, keep, eps_m=0.006).all()
    gap = keep.copy()
    gap[:, 10:13] = False  # a 3-px gap of invalid pixels splits the grid at link_px=2 ...
    out = largest_cluster(xyz, gap, eps_m=0.006, link_px=2)
    assert out[:, 13:].all() and not out[:, :10].any()
    assert largest_cluster(xyz, gap, eps_m=0.006, link_px=4)[gap].all()  # ... but not at 4


def test_all_zero_cloud_names_the_file():
    s, _ = scene()
    bad = s.with_arrays(xyz=np.zeros_like(s.xyz), xyz_path=Path("/data/x/007.tiff"))
    with pytest.raises(DataError, match=r"^/data/x/007\.tiff: point cloud has no valid points"):
        preprocess(bad)
    nan = s.with_arrays(xyz=np.full_like(s.xyz, 0), rgb_path=Path("/data/x/rgb/007.png"))
    with pytest.raises(DataError, match=r"007\.png: point cloud has no valid points"):
        preprocess(nan)


def test_rgb_only_sample_is_only_padded(shared_data):
    ds = open_dataset(shared_data / "mvtec3d_tire_rgb")
    ref = next(r for r in ds.samples("tire", "test") if r.label == "cut")
    s = ref.load()
    out = preprocess(s)
    assert out.xyz is None and out.rgb.shape == (400, 400, 3) and out.mask.shape == (400, 400)
    np.testing.assert_array_equal(out.rgb[:, 50:350], s.rgb)
    assert not out.rgb[:, :50].any() and not out.rgb[:, 350:].any()
    assert out.mask.sum() == s.mask.sum()


def _mvtec_sample_on_disk(root: Path) -> Path:
    s, _ = scene()
    leaf = root / "widget" / "train" / "good"
    (leaf / "rgb").mkdir(parents=True)
    (leaf / "xyz").mkdir(parents=True)
    Image.fromarray(s.rgb).save(leaf / "rgb" / "000.png")
    tifffile.imwrite(leaf / "xyz" / "000.tiff", s.xyz, photometric="rgb")
    return leaf


def test_cache_hit_and_user_files_untouched(tmp_path):
    leaf = _mvtec_sample_on_disk(tmp_path / "data")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in leaf.rglob("*") if p.is_file()}
    ref = open_dataset(tmp_path / "data").samples("widget", "train")[0]
    cache = tmp_path / "cache"
    first = preprocess(ref.load(), cache_dir=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and not first.meta["preprocess"]["cached"]
    second = preprocess(ref.load(), cache_dir=cache)
    assert second.meta["preprocess"]["cached"]
    np.testing.assert_array_equal(second.xyz, first.xyz)
    np.testing.assert_array_equal(second.rgb, first.rgb)
    # different thresholds -> a different cache entry
    preprocess(ref.load(), cache_dir=cache, params=PreprocessParams(plane_remove_m=0.006))
    assert len(list(cache.iterdir())) == 2
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in leaf.rglob("*") if p.is_file()}
    assert after == before
    # a corrupt cache entry is recomputed, not trusted
    files[0].write_bytes(b"not an npz")
    third = preprocess(ref.load(), cache_dir=cache)
    assert not third.meta["preprocess"]["cached"]
    np.testing.assert_array_equal(third.xyz, first.xyz)
    with pytest.raises(UserError, match="is a data folder"):
        preprocess(ref.load(), cache_dir=leaf / "xyz")
    assert not any(p.suffix == ".npz" for p in leaf.rglob("*"))
    assert all(not name.endswith(".tmp") for name in os.listdir(cache))


def test_real_pcd_with_invalid_margins(shared_data):
    from core.data.dataset import load_inputs

    (ref,) = load_inputs([shared_data / "pcl_organized" / "milk_cartoon_all_small_clorox.pcd"])
    s = ref.load()
    plain = preprocess(s)  # sensor margins are invalid: the image frame has no points -> no plane
    assert plain.meta["preprocess"]["plane"] is None and plain.xyz.shape == (700, 700, 3)
    bbox = preprocess(s, params=PreprocessParams(border_from="valid_bbox"))
    meta = bbox.meta["preprocess"]
    assert meta["plane"] is not None and meta["plane_removed"] > 0.3 * s.valid.sum()
    assert 0 < bbox.valid.sum() < plain.valid.sum()


def test_resize_sample_nearest_keeps_exact_values():
    s, _ = scene()
    out = resize_sample(preprocess(s), 56)
    assert out.rgb.shape == (56, 56, 3) and out.rgb.dtype == np.uint8
    assert out.xyz.shape == (56, 56, 3) and out.xyz.dtype == np.float32
    assert out.mask.shape == (56, 56) and out.mask.dtype == bool
    src = {tuple(p) for p in preprocess(s).xyz.reshape(-1, 3).tolist()}
    assert all(tuple(p) in src for p in out.xyz.reshape(-1, 3).tolist())  # no mixed points
    assert (out.xyz == 0).all(axis=2).sum() > 0 and out.valid.sum() > 0
    raw = resize_sample(s, 224)  # non-square input, upsampled
    assert raw.xyz.shape == (224, 224, 3) and raw.meta["resize"] == {"height": 120, "width": 160, "size": 224}
    assert raw.mask.sum() > 0
    rgb_only = resize_sample(s.with_arrays(xyz=None, mask=None), 224)
    assert rgb_only.xyz is None and rgb_only.mask is None and rgb_only.rgb.shape == (224, 224, 3)


def test_ransac_adaptive_stop_keeps_searching_when_inliers_are_rare():
    """With 80 % outliers one batch of 250 hypotheses is not enough at 99.999 % confidence;
    the search goes on and still finds the plane. With 5 % outliers it stops early."""
    from core.data.preprocess import _ransac_needed

    assert _ransac_needed(0.95, 1000) < 250
    assert _ransac_needed(0.2, 1000) == 1000
    rng = np.random.default_rng(5)
    xy = rng.uniform(-0.1, 0.1, (3000, 2))
    z = 0.5 + 0.1 * xy[:, 0] + rng.normal(0, 0.0005, 3000)
    pts = np.column_stack([xy, z])
    pts[:2400] = rng.uniform([-0.1, -0.1, 0.3], [0.1, 0.1, 0.7], (2400, 3))  # 80 % outliers
    plane, inliers = fit_plane_ransac(pts, 0.004)
    expected = np.array([0.1, 0.0, -1.0]) / np.linalg.norm([0.1, 0.0, -1.0])
    assert abs(abs(plane[:3] @ expected) - 1) < 2e-3
    assert 600 <= inliers <= 700  # 600 on the plane + ~2 % of the outliers within 4 mm
