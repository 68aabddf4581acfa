"""The speed rewrites of issue 11 give the results of the implementations they replaced
(tests/_reference_speed.py) on generated demo clouds: masks, spacings and pooled features
bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import _reference_speed as ref
from core.data.preprocess import PreprocessParams, foreground_mask, pixel_angle
from core.data.preprocess import _flying_in_box
from core.data.sample import Sample
from core.demo.sample import render_sample
from core.features.pooling import local_average, pool_pixel_features


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


def test_pooling_matches_avg_pool_bit_for_bit():
    rng = np.random.default_rng(0)
    for c, h, w, grid in ((33, 224, 224, 28), (9, 37, 53, 8), (3, 20, 20, 28), (4, 28, 28, 28), (2, 1, 1, 1)):
        valid = torch.from_numpy(rng.random((h, w)) < 0.4)
        feats = torch.from_numpy(rng.random((c, h, w), dtype=np.float32) * 200) * valid
        got = pool_pixel_features(feats, valid, grid)
        assert got.shape == (c, grid, grid)
        assert torch.equal(got, ref.pool_pixel_features(feats, valid, grid))
    for shape in ((2, 24, 56, 56), (1, 3, 2, 5)):  # batches, channels-last, negative values
        maps = torch.from_numpy(rng.normal(0, 50, shape).astype(np.float32))
        want = F.avg_pool2d(maps, 3, stride=1, padding=1, count_include_pad=True)
        assert torch.equal(local_average(maps), want)
        last = maps.contiguous(memory_format=torch.channels_last)
        assert torch.equal(local_average(last), want)


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


def test_3d_features_and_preprocessing_are_unchanged(monkeypatch):
    """End to end on demo samples: preprocessing + resizing and the default 3D patch features
    with every rewritten function, against the same with the old ones patched back in."""
    import core.data.preprocess as pre
    import core.data.units as units
    import core.features.fpfh as fpfh
    import core.features.pooling as pooling
    import core.features.surface as surface
    from core.prepare import prepare_sample

    samples = [render_sample(seed, category, folder, 0, size=400, flying_pixels=0.5)
               for seed, category, folder in ((5, "puck", "test/dent"), (6, "cookie", "test/crack"))]
    extractor = surface.FPFHSurfaceFeatures()

    def run():
        out = []
        for s in samples:
            prepared = prepare_sample(Sample("s", s.rgb, s.xyz), 224, True, None)
            out.append((units.point_spacing(s.xyz), prepared.xyz, prepared.rgb,
                        extractor.extract([prepared.xyz], grid=28)))
        return out

    new = run()
    old_local = lambda maps: F.avg_pool2d(maps, 3, stride=1, padding=1, count_include_pad=True)  # noqa: E731
    for module, name, old in ((pre, "_flying_in_box", ref.flying_in_box), (pre, "pixel_angle", ref.pixel_angle),
                              (pre, "largest_cluster", ref.largest_cluster), (units, "point_spacing", ref.point_spacing),
                              (fpfh, "median_spacing", ref.median_spacing), (surface, "median_spacing", ref.median_spacing),
                              (pooling, "local_average", old_local)):
        monkeypatch.setattr(module, name, old)
    for (s0, x0, c0, f0), (s1, x1, c1, f1) in zip(new, run()):
        assert s0 == s1 and np.array_equal(x0, x1) and np.array_equal(c0, c1)
        assert torch.equal(f0, f1) and f0.abs().sum() > 0


def _dense_pool(features, pixels, valid, grid):
    """The route pool_point_features replaced: scatter onto a (C, H, W) map, then pool it."""
    h, w = valid.shape
    dense = torch.zeros(features.shape[1], h * w, dtype=features.dtype)
    dense[:, pixels] = features.T
    return pool_pixel_features(dense.view(-1, h, w), valid, grid)


def test_fpfh_matches_the_torch_version_it_replaced(clouds):
    """The compiled FPFH loops (core.features.fpfh_kernels) against the vectorized torch version
    (tests/_reference_speed.py) on demo clouds at 224 px: normals to float32 rounding; with the
    same normals, the same bins for all but < 0.1 % of pair angles (a pair at an exact bin edge
    may land next door: float64 here, float32 there) and the same weights; features within
    float rounding (1e-3 of bins summing to 200) on all but 5 % of the points (those within
    reach of a pair that moved bins), and within one moved pair (≤ 10) on those."""
    import core.features.fpfh as fpfh
    from core.prepare import prepare_sample

    config = fpfh.FPFHConfig()
    pairs = 0
    for xyz, _ in clouds:
        cloud = prepare_sample(Sample("c", None, xyz), 224, preprocess=False).xyz
        new, old = fpfh.fpfh_points(cloud), ref.fpfh_points(cloud)
        assert torch.equal(new[1], old[1])
        np.testing.assert_allclose(new[2].numpy(), old[2].numpy(), atol=2e-5)
        diff = (new[0] - old[0]).abs().amax(1)
        assert (diff > 1e-3).float().mean() < 0.05 and diff.max() < 10

        # the pair kernel alone, fed the reference's inputs
        valid = fpfh.valid_mask(cloud)
        spacing = fpfh.median_spacing(cloud, valid)
        grid = fpfh._Grid(valid, 5)
        n = grid.n
        raw = cloud[valid].astype(np.float64)
        points = (raw - raw.mean(0)).astype(np.float32)
        normals = old[2].numpy()
        counts, weights, _ = fpfh._pair_histograms(points, normals, grid, config, spacing)
        table = [torch.zeros(3, n + 1) for _ in range(2)]
        table[0][:, :n] = torch.from_numpy(points.T)
        table[1][:, :n] = torch.from_numpy(normals.T)
        offsets = fpfh.disc_offsets(config.fpfh_radius_px)
        nb = ref._Grid(valid, 5).neighbours(offsets[: len(offsets) // 2])
        max_f = (config.fpfh_radius_px * spacing * config.radius_scale) ** 2
        old_counts, old_weights = ref._pair_histograms(*table, nb, max_f)
        moved = np.abs(counts - old_counts.numpy()).sum() / 4  # a moved pair: 2 bins × 2 points
        assert counts.sum() == old_counts.sum() and moved < 1e-3 * counts.sum() / 6
        np.testing.assert_allclose(weights, old_weights.T.numpy(), rtol=1e-5)
        pairs += counts.sum() // 6
    assert pairs > 500_000  # three clouds of ~10 000 points, ~50 pairs each


def _index_add_pool(features, pixels, valid, grid):
    """The torch route the compiled point pooling replaced: one ``index_add_`` per pair of
    reached cells (row step, column step), each over all points."""
    from core.features.pooling import _cell_weights, valid_fraction

    h, w = valid.shape
    out = torch.zeros(grid * grid, features.shape[1], dtype=features.dtype)

    def reach(cells, coords):
        nonzero = cells > 0
        first, count = nonzero.to(torch.int8).argmax(0), nonzero.sum(0)
        for step in range(int(count.max())):
            cell = (first + step).clamp_(max=grid - 1)[coords]
            yield cells[cell, coords] * (step < count[coords]), cell

    for wy, cy in reach(_cell_weights(h, grid), pixels // w):
        for wx, cx in reach(_cell_weights(w, grid), pixels % w):
            out.index_add_(0, cy * grid + cx, features * (wy * wx).to(features.dtype)[:, None])
    out = out.T.reshape(-1, grid, grid)
    return out * (valid_fraction(valid, grid) > 0).to(out.dtype)


def test_point_pooling_matches_the_dense_route():
    """Against the dense route within float rounding, and the same bits as the torch
    scatter-adds it replaced (so features, and every figure measured with them, are unchanged)."""
    from core.features.pooling import pool_point_features

    rng = np.random.default_rng(1)
    for c, h, w, grid in ((33, 224, 224, 28), (9, 37, 53, 8), (3, 20, 20, 28), (4, 28, 28, 28), (5, 30, 30, 7)):
        valid = torch.from_numpy(rng.random((h, w)) < 0.3)
        pixels = valid.view(-1).nonzero()[:, 0]
        feats = torch.from_numpy(rng.random((len(pixels), c), dtype=np.float32) * 200)
        want = _dense_pool(feats, pixels, valid, grid)
        got = pool_point_features(feats, pixels, valid, grid)
        assert got.shape == want.shape == (c, grid, grid) and want.abs().max() > 10
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4 * 200)
        assert torch.equal(got == 0, want == 0)  # the same empty cells, exactly 0
        assert torch.equal(got, _index_add_pool(feats, pixels, valid, grid))
        assert torch.equal(pool_point_features(feats.double(), pixels, valid, grid),
                           _index_add_pool(feats.double(), pixels, valid, grid))
    empty = torch.zeros(0, 3)
    assert pool_point_features(empty, torch.zeros(0, dtype=torch.long), torch.zeros(8, 8, dtype=torch.bool), 4).abs().sum() == 0


def test_3d_patch_features_match_the_torch_fpfh(monkeypatch):
    """Default 3D patch features (fpfh_surface) end to end on demo samples with the compiled
    FPFH and point pooling against the torch FPFH and dense pooling patched back in."""
    import core.features.pooling as pooling
    import core.features.surface as surface
    from core.prepare import prepare_sample

    clouds = []
    for seed, category, folder in ((5, "puck", "test/dent"), (6, "cookie", "test/crack")):
        s = render_sample(seed, category, folder, 0, size=400)
        clouds.append(prepare_sample(Sample("s", s.rgb, s.xyz), 224, True, None).xyz)
    extractor = surface.FPFHSurfaceFeatures()
    new = extractor.extract(clouds, grid=28)
    monkeypatch.setattr(surface, "fpfh_points", ref.fpfh_points)
    monkeypatch.setattr(pooling, "pool_point_features", _dense_pool)
    old = extractor.extract(clouds, grid=28)
    assert new[:, :33].abs().max() > 100
    np.testing.assert_allclose(new.numpy(), old.numpy(), atol=0.05)
