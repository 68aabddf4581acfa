"""The independent "parts" confirmation-data generator (core/data/parts/): layout, units,
determinism, exact masks on the part, geometry-only dents/bumps and safe writing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.data.dataset import open_dataset
from core.data.imageio import read_mask, read_xyz
from core.data.parts import (
    MARKER_NAME,
    PARTS_CATEGORIES,
    PARTS_DEFECT_TYPES,
    generate_parts_dataset,
    render_parts_sample,
)
from core.errors import UserError
from core.progress import Cancelled, Progress

SIZE = 128
COUNTS = dict(n_train=2, n_validation=1, n_test_good=1, n_test_per_defect=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parts") / "ds"
    events = []
    got = generate_parts_dataset(out, seed=3, size=SIZE, progress=Progress(events.append), **COUNTS)
    assert got == out.absolute()
    n = len(PARTS_CATEGORIES) * (2 + 1 + 1 + len(PARTS_DEFECT_TYPES))
    assert events[-1].done == events[-1].total == n
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != MARKER_NAME}


def _table_height(xyz: np.ndarray, border: int = 6) -> np.ndarray:
    """Height (m) of every point above the least-squares plane of the valid border points."""
    valid = np.any(xyz != 0, axis=2)
    frame = np.zeros(valid.shape, dtype=bool)
    frame[:border] = frame[-border:] = True
    frame[:, :border] = frame[:, -border:] = True
    pts = xyz[frame & valid].astype(np.float64)
    centre = pts.mean(axis=0)
    normal = np.linalg.svd(pts - centre, full_matrices=False)[2][-1]
    normal = normal if normal[2] < 0 else -normal  # towards the camera
    return (xyz.astype(np.float64) - centre) @ normal


def test_layout_and_counts(dataset):
    ds = open_dataset(dataset)
    assert ds.format == "mvtec3d"
    assert sorted(ds.categories) == sorted(PARTS_CATEGORIES)
    info = ds.info()
    for cat in PARTS_CATEGORIES:
        splits = info["categories"][cat]["splits"]
        assert splits["train"]["types"] == {"good": 2}
        assert splits["validation"]["types"] == {"good": 1}
        assert splits["test"]["types"] == {"good": 1, **{d: 1 for d in PARTS_DEFECT_TYPES}}
        assert splits["test"]["modalities"] == {"rgb": 6, "xyz": 6, "gt": 6}
        assert splits["train"]["modalities"]["xyz"] == 2
    marker = json.loads((dataset / MARKER_NAME).read_text())
    assert marker["seed"] == 3 and marker["size"] == SIZE and marker["categories"] == list(PARTS_CATEGORIES)
    assert not list(dataset.parent.glob(".ds.*")), "temporary folders left behind"


def test_load_units_and_spacing(dataset):
    ds = open_dataset(dataset)
    for cat in PARTS_CATEGORIES:
        ref = ds.samples(cat, "train")[0]
        sample = ref.load()
        assert sample.rgb.shape == (SIZE, SIZE, 3) and sample.rgb.dtype == np.uint8
        assert sample.xyz.shape == (SIZE, SIZE, 3) and sample.xyz.dtype == np.float32
        assert sample.mask is not None and not sample.mask.any()
        valid = sample.valid
        assert 0.7 < valid.mean() < 1.0  # some dropouts, mostly measured
        z = sample.xyz[..., 2][valid]
        assert 0.35 < z.min() and z.max() < 0.45  # metres, camera ~0.4 m above the table
        both = valid[:, 1:] & valid[:, :-1]
        step = np.linalg.norm(sample.xyz[:, 1:] - sample.xyz[:, :-1], axis=2)[both]
        assert 0.05e-3 < np.median(step) < 1e-3
        height = _table_height(sample.xyz)[valid]
        assert np.percentile(height, 99) > 0.006  # the part stands out of the table (> 6 mm)
        assert np.percentile(np.abs(height), 30) < 0.001  # ... and much of the frame is table


def test_masks_on_the_part(dataset):
    ds = open_dataset(dataset)
    for cat in PARTS_CATEGORIES:
        for ref in ds.samples(cat, "test"):
            mask = read_mask(ref.mask_path)
            if ref.label == "good":
                assert not mask.any()
                continue
            frac = mask.mean()
            assert 0.0005 < frac < 0.05, (ref.name, frac)
            index = int(ref.mask_path.stem)
            rendered = render_parts_sample(cat, 3, "test", ref.label, index, SIZE)
            assert np.array_equal(rendered.mask, mask)
            assert not (mask & ~rendered.part).any(), f"{cat}/{ref.name}: mask reaches the table"
            xyz = read_xyz(ref.xyz_path)
            height = _table_height(xyz)
            valid = np.any(xyz != 0, axis=2)
            on = mask & valid
            if ref.label != "hole":
                assert on.sum() > 0.5 * mask.sum()
            if on.any():
                assert np.median(height[on]) > 0.004, f"{cat}/{ref.name}: mask not on the part"


def test_dent_and_bump_change_geometry_only():
    for cat in PARTS_CATEGORIES:
        for label in ("dent", "bump"):
            s = render_parts_sample(cat, 1, "test", label, 0, SIZE, with_nodefect=True)
            assert s.mask.any()
            assert np.array_equal(s.rgb, s.rgb_nodefect)
            good_z = render_parts_sample(cat, 1, "test", label, 0, SIZE).xyz[..., 2]
            assert np.array_equal(good_z, s.xyz[..., 2])  # deterministic
        s = render_parts_sample(cat, 1, "test", "scratch", 0, SIZE, with_nodefect=True)
        diff = np.abs(s.rgb.astype(int) - s.rgb_nodefect.astype(int)).max(axis=2)
        assert diff[s.mask].mean() > 3 * max(diff[~s.mask].mean(), 0.5)  # colour defect shows in RGB


def test_deterministic_and_independent_of_counts(dataset, tmp_path):
    # same seed, fewer categories and other counts: the shared samples are byte-identical
    small = generate_parts_dataset(tmp_path / "a", seed=3, categories=["hose"], size=SIZE, n_train=1,
                                   n_validation=0, n_test_good=0, n_test_per_defect=1, defect_types=["hole", "dent"])
    got = _files(small)
    ref = _files(dataset)
    assert got and all(got[k] == ref[k] for k in got)
    other = generate_parts_dataset(tmp_path / "b", seed=4, categories=["hose"], size=SIZE, n_train=1,
                                   n_validation=0, n_test_good=0, n_test_per_defect=1, defect_types=["hole", "dent"])
    changed = _files(other)
    assert changed.keys() == got.keys()
    assert all(changed[k] != got[k] for k in got if "/gt/" not in k)


def test_existing_folders(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    kw = dict(categories=["tile"], size=64, n_train=1, n_validation=0, n_test_good=0, n_test_per_defect=1,
              defect_types=["dent"])
    with pytest.raises(UserError, match="not empty"):
        generate_parts_dataset(foreign, **kw)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    out = generate_parts_dataset(empty, **kw)
    marker = out / MARKER_NAME
    stamp = marker.stat().st_mtime_ns
    assert generate_parts_dataset(empty, **kw) == out and marker.stat().st_mtime_ns == stamp  # unchanged
    with pytest.raises(UserError, match="other parameters"):
        generate_parts_dataset(empty, seed=1, **kw)
    generate_parts_dataset(empty, seed=1, force=True, **kw)
    assert json.loads(marker.read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "foreign"]  # no temporary folders left
    with pytest.raises(UserError, match="unknown parts category"):
        generate_parts_dataset(tmp_path / "x", categories=["puck"])


def test_cancel_leaves_nothing(tmp_path):
    box: dict = {}

    def stop(ev):
        if ev.done == 2:
            box["progress"].cancel()

    box["progress"] = progress = Progress(stop)
    with pytest.raises(Cancelled):
        generate_parts_dataset(tmp_path / "c", categories=["gear"], size=64, n_train=4, n_validation=0,
                               n_test_good=0, n_test_per_defect=0, progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_camera_distance_shows_the_part_smaller(tmp_path):
    near = render_parts_sample("gear", 2, "test", "dent", 0, SIZE)
    far = render_parts_sample("gear", 2, "test", "dent", 0, SIZE, camera_distance=2.0)
    assert 0.15 < far.part.mean() / near.part.mean() < 0.4  # about a quarter of the area
    assert far.info["view"]["distance_mm"] == pytest.approx(2 * near.info["view"]["distance_mm"], abs=0.01)
    valid = np.any(far.xyz != 0, axis=2)
    assert np.median(far.xyz[valid][:, 2]) > 1.8 * np.median(near.xyz[np.any(near.xyz != 0, axis=2)][:, 2])
    with pytest.raises(UserError, match="camera_distance"):
        render_parts_sample("gear", 2, "test", "good", 0, SIZE, camera_distance=0.1)
    kw = dict(categories=["tile"], size=64, n_train=1, n_validation=0, n_test_good=0, n_test_per_defect=1,
              defect_types=["dent"])
    out = generate_parts_dataset(tmp_path / "far", camera_distance=2.0, **kw)
    assert json.loads((out / MARKER_NAME).read_text())["camera_distance"] == 2.0
    plain = generate_parts_dataset(tmp_path / "plain", **kw)
    assert "camera_distance" not in json.loads((plain / MARKER_NAME).read_text())  # older sets still match


def test_one_design_shares_the_design_and_keeps_each_parts_texture(tmp_path):
    from core.data.parts.common import _design_rng
    from core.data.parts.shapes import _BUILDERS

    for cat in PARTS_CATEGORIES:
        parts = [_BUILDERS[cat](_design_rng(5, cat), np.random.default_rng(i), 0.5) for i in (1, 2)]
        family = [_BUILDERS[cat](rng, rng, 0.5) for rng in (np.random.default_rng(1), np.random.default_rng(2))]
        assert parts[0].height.shape == parts[1].height.shape  # the same outline and size
        if cat != "tile":  # a tile keeps a bow of its own
            assert np.array_equal(parts[0].height, parts[1].height)
        assert not np.array_equal(parts[0].mat, parts[1].mat)  # each part's own texture
        assert family[0].height.shape != family[1].height.shape or not np.array_equal(family[0].height, family[1].height)
    gear = _BUILDERS["gear"](_design_rng(5, "gear"), np.random.default_rng(1), 0.5)
    other = _BUILDERS["gear"](_design_rng(6, "gear"), np.random.default_rng(1), 0.5)  # another dataset seed
    assert not (other.height.shape == gear.height.shape and np.array_equal(other.height, gear.height))

    a = render_parts_sample("gear", 5, "train", "good", 0, SIZE, one_design=True)
    b = render_parts_sample("gear", 5, "test", "good", 3, SIZE, one_design=True)
    assert a.info["one_design"] and "one_design" not in render_parts_sample("gear", 5, "train", "good", 0, SIZE).info
    assert not np.array_equal(a.xyz, b.xyz)  # pose, light and noise still differ
    kw = dict(categories=["hose"], size=64, n_train=1, n_validation=0, n_test_good=0, n_test_per_defect=1,
              defect_types=["dent"])
    out = generate_parts_dataset(tmp_path / "one", one_design=True, **kw)
    assert json.loads((out / MARKER_NAME).read_text())["one_design"] is True
    with pytest.raises(UserError, match="other parameters"):  # a family set is not taken for a one-design set
        generate_parts_dataset(out, **kw)
