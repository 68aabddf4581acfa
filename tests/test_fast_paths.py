"""The speed rewrites of issue 11 give the results of the implementations they replaced
(tests/_reference_speed.py) on generated demo clouds: masks and spacings bit for bit, pooled
features within float tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import _reference_speed as ref
from core.data.preprocess import PreprocessParams, foreground_mask, pixel_angle
from core.data.preprocess import _flying_in_box
from core.data.sample import Sample
from core.demo.sample import render_sample
from core.features.pooling import pool_pixel_features


@pytest.fixture(scope="module")
def clouds():
    """Three demo clouds (400 px; one with flying pixels, one with a hole) as scored: the
    foreground kept by preprocessing, everything else 0; and their foreground masks."""
    out = []
    for seed, category, folder, flying in ((5, "puck", "test/dent", 1.0), (6, "cookie", "test/hole", 0.0),
                                           (7, "puck", "train", 0.5)):
        xyz = render_sample(seed, category, folder, 0, size=400, flying_pixels=flying).xyz
        keep, _ = foreground_mask(xyz, PreprocessParams())
        out.append((np.where(keep[..., None], xyz, 0).astype(np.float32), keep))
    return out


def test_flying_points_and_pixel_angle_are_unchanged(clouds):
    flagged = 0
    for xyz, keep in clouds:
        assert pixel_angle(xyz, keep) == ref.pixel_angle(xyz, keep)
        for ratio, least in ((4.0, 2), (2.0, 3), (1.2, 5)):  # the default, then stricter tests
            got = _flying_in_box(xyz, keep, ratio, least)
            assert np.array_equal(got, ref.flying_in_box(xyz, keep, ratio, least))
            flagged += int(got.sum())
    assert flagged > 100  # the stricter tests flag many points: the comparison is not vacuous


def test_pooling_matches_avg_pool_then_adaptive_average():
    rng = np.random.default_rng(0)
    for c, h, w, grid in ((33, 224, 224, 28), (9, 37, 53, 8), (3, 20, 20, 28), (4, 28, 28, 28)):
        valid = torch.from_numpy(rng.random((h, w)) < 0.4)
        feats = torch.from_numpy(rng.random((c, h, w), dtype=np.float32) * 200) * valid
        got = pool_pixel_features(feats, valid, grid)
        want = ref.pool_pixel_features(feats, valid, grid)
        assert got.shape == want.shape == (c, grid, grid)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-4)
        assert torch.equal(got == 0, want == 0)  # empty cells stay exactly 0


def test_largest_cluster_is_unchanged():
    from core.data.preprocess import largest_cluster, plane_keep_mask
    from core.data.sample import valid_points

    for seed, category, folder in ((5, "puck", "test/dent"), (6, "cookie", "test/hole"), (8, "cookie", "train")):
        xyz = render_sample(seed, category, folder, 0, size=400).xyz
        keep, _ = plane_keep_mask(xyz, PreprocessParams(), valid_points(xyz))
        rng = np.random.default_rng(seed)
        keep = keep | (rng.random(keep.shape) < 0.01)  # stray specks: many small components
        for eps, link in ((0.006, 2), (0.002, 1), (0.0015, 3)):
            got = largest_cluster(xyz, keep, eps, link)
            want = ref.largest_cluster(xyz, keep, eps, link)
            assert np.array_equal(got, want)
            assert 0 < got.sum() < keep.sum()


def test_point_spacing_is_unchanged(clouds):
    from core.data.units import point_spacing

    raw = render_sample(9, "cookie", "test/good", 0, size=400).xyz  # with the table
    nan = raw.copy()
    nan[100:110, 50:300] = np.nan
    tall = np.concatenate([raw] * 3)  # more rows than max_rows: measured on spread rows
    for xyz in [raw, nan, tall, raw[:1], raw[:2], raw * 1000, raw.astype(np.float64)] + [c for c, _ in clouds]:
        assert point_spacing(xyz) == ref.point_spacing(xyz)
    assert point_spacing(np.zeros((5, 5, 3), np.float32)) == 0.0


def test_fpfh_median_spacing_is_unchanged(clouds):
    from core.features.fpfh import median_spacing, valid_mask
    from core.prepare import prepare_sample

    for xyz, keep in clouds:
        for cloud in (xyz, prepare_sample(Sample("c", None, xyz), 224, preprocess=False).xyz):
            valid = valid_mask(cloud)
            assert median_spacing(cloud, valid) == ref.median_spacing(cloud, valid) > 0
    empty = np.zeros((8, 8, 3), np.float32)
    assert median_spacing(empty, valid_mask(empty)) == 0.0
