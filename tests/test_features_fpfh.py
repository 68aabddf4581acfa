"""FPFH on organized clouds: agreement with a per-point reference, geometric properties,
pooling to the patch grid, and real sensor data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.errors import DataError, UserError
from core.features import create_extractor
from core.features.fpfh import (
    DIM,
    FPFHConfig,
    disc_offsets,
    fpfh_points,
    median_spacing,
    pair_features,
    valid_mask,
)
from core.features.pooling import foreground_cells, pool_pixel_features

SPACING = 0.001  # metres between pixels of the synthetic clouds


# ---------------------------------------------------------------- per-point reference (slow)
def _reference_pair(p1, n1, p2, n2):
    """Open3D's ComputePairFeatures, line by line (theta, alpha, phi)."""
    d = p2 - p1
    dist = math.sqrt(d @ d)
    if dist == 0:
        return 0.0, 0.0, 0.0
    a1, a2 = n1 @ d / dist, n2 @ d / dist
    if math.acos(min(1.0, abs(a1))) > math.acos(min(1.0, abs(a2))):
        n1, n2, d, phi = n2, n1, -d, -a2
    else:
        phi = a1
    v = np.cross(d, n1)
    v_norm = math.sqrt(v @ v)
    if v_norm == 0:
        return 0.0, 0.0, 0.0
    v = v / v_norm
    w = np.cross(n1, v)
    return math.atan2(w @ n2, n1 @ n2), v @ n2, phi


def _bin(value, low, high):
    return min(max(int(math.floor(11 * (value - low) / (high - low))), 0), 10)


def reference_fpfh(xyz, cfg: FPFHConfig):
    """Per-point loops (Open3D's SPFH/FPFH) over the same pixel-disc neighbourhoods."""
    h, w = xyz.shape[:2]
    pts = {(y, x): xyz[y, x].astype(np.float64) for y in range(h) for x in range(w)
           if np.any(xyz[y, x] != 0)}

    def neighbours(key, radius_px):
        limit = (radius_px * cfg.spacing_m * cfg.radius_scale) ** 2
        out = []
        for dy, dx in disc_offsets(radius_px):
            q = (key[0] + dy, key[1] + dx)
            if q in pts and ((pts[q] - pts[key]) ** 2).sum() <= limit:
                out.append(q)
        return out

    normals = {}
    for key, p in pts.items():
        nbs = neighbours(key, cfg.normal_radius_px)
        if len(nbs) + 1 < 3:
            n = -p / np.linalg.norm(p)
        else:
            window = np.array([p] + [pts[q] for q in nbs])
            n = np.linalg.eigh(np.cov(window.T, bias=True))[1][:, 0]
        normals[key] = -n if n @ p > 0 else n
    near = {key: neighbours(key, cfg.fpfh_radius_px) for key in pts}
    spfh = {}
    for key, p in pts.items():
        hist = np.zeros(DIM)
        for q in near[key]:
            theta, alpha, phi = _reference_pair(p, normals[key], pts[q], normals[q])
            step = 100.0 / len(near[key])
            hist[_bin(theta, -math.pi, math.pi)] += step
            hist[11 + _bin(alpha, -1, 1)] += step
            hist[22 + _bin(phi, -1, 1)] += step
        spfh[key] = hist
    feats = {}
    for key, p in pts.items():
        feats[key] = np.zeros(DIM)
        if near[key]:
            acc, total = np.zeros(DIM), 0.0
            for q in near[key]:
                d2 = ((pts[q] - p) ** 2).sum()
                if d2 > 0:
                    acc += spfh[q] / d2
                    total += 1 / d2
            feats[key] = spfh[key] + (acc / total if total > 0 else 0.0)
    keys = sorted(pts)
    return (np.array([feats[k] for k in keys]), np.array([normals[k] for k in keys]),
            np.array([y * w + x for y, x in keys]))


# ---------------------------------------------------------------- synthetic clouds
def bumpy_cloud(size=16, seed=0):
    """Wavy noisy surface seen in perspective, with a depth step and holes."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    z = 0.5 + 0.002 * np.sin(xs / 2.5) * np.cos(ys / 3.1) + 0.0003 * rng.standard_normal(xs.shape)
    z[:, 11:] += 0.01  # a 10 mm step: no neighbours across it
    scale = SPACING * z / 0.5
    xyz = np.stack([(xs - size / 2) * scale, (ys - size / 2) * scale, z], -1)
    xyz[rng.random(xs.shape) < 0.1] = 0
    xyz[2:4, 2:5] = 0
    return xyz


def grid_cloud(depth_fn, size=64, center=(0.0, 0.0), dtype=np.float32):
    """Orthographic organized cloud: pixel (v, u) -> (x, y, depth_fn(x, y)); NaN depth = invalid."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    x = (xs - size / 2) * SPACING
    y = (ys - size / 2) * SPACING
    z = depth_fn(x - center[0], y - center[1])
    xyz = np.stack([x, y, z], -1)
    xyz[~np.isfinite(z)] = 0
    return xyz.astype(dtype)


def sphere_depth(radius=0.02, z0=0.3):
    def depth(x, y):
        r2 = x * x + y * y
        return np.where(r2 < radius**2, z0 - np.sqrt(np.clip(radius**2 - r2, 0, None)), np.nan)

    return depth


def plane_depth(x, y):
    return 0.4 + 0.3 * x + 0.1 * y  # tilted plane


CFG = FPFHConfig(spacing_m=SPACING)


# ---------------------------------------------------------------- tests
def test_matches_per_point_reference_in_float64():
    xyz = bumpy_cloud()
    cfg = FPFHConfig(normal_radius_px=3.0, fpfh_radius_px=4.3, spacing_m=SPACING)
    ref, ref_normals, ref_pixels = reference_fpfh(xyz, cfg)
    feats, pixels, normals = fpfh_points(xyz, cfg, dtype=torch.float64)
    assert np.array_equal(pixels.numpy(), ref_pixels)
    np.testing.assert_allclose(normals.numpy(), ref_normals, atol=1e-9)
    np.testing.assert_allclose(feats.numpy(), ref, atol=1e-8)
    # the step splits the cloud: points on both sides exist and none has a zero histogram
    assert (ref.sum(1) > 0).all() and abs(ref[0].reshape(3, 11).sum(1) - 200).max() < 1e-9


def test_float32_path_close_to_reference():
    xyz = bumpy_cloud(seed=1)
    ref, _, _ = reference_fpfh(xyz, CFG)
    feats, _, _ = fpfh_points(xyz.astype(np.float32), CFG)
    err = np.abs(feats.numpy() - ref).max(1)
    assert np.mean(err < 1e-2) >= 0.98  # a rare pair may fall into the next bin


def test_pair_features_closed_form_matches_open3d_code():
    rng = np.random.default_rng(3)
    p1, p2 = rng.normal(size=(2, 200, 3))
    n1, n2 = rng.normal(size=(2, 200, 3))
    n1 /= np.linalg.norm(n1, axis=1, keepdims=True)
    n2 /= np.linalg.norm(n2, axis=1, keepdims=True)
    p2[0] = p1[0]  # a zero-length pair
    ref = np.array([_reference_pair(*args) for args in zip(p1, n1, p2, n2)])
    t = [torch.from_numpy(a.T.copy()) for a in (p1, n1, p2, n2)]
    theta, alpha, phi, d2 = pair_features(*t)
    np.testing.assert_allclose(np.stack([theta, alpha, phi], 1), ref, atol=1e-9)
    np.testing.assert_allclose(d2.numpy(), ((p2 - p1) ** 2).sum(1), rtol=1e-12)


def test_plane_gives_the_single_bin_histogram():
    xyz = grid_cloud(plane_depth, size=40)
    feats, pixels, normals = fpfh_points(xyz, CFG)
    expected = np.zeros(DIM)
    expected[[5, 16, 27]] = 200.0  # theta = alpha = phi = 0 for every pair on a plane
    np.testing.assert_allclose(feats.numpy(), np.broadcast_to(expected, feats.shape), atol=1e-3)
    true_normal = np.array([-0.3, -0.1, 1.0]) / np.linalg.norm([-0.3, -0.1, 1.0])
    np.testing.assert_allclose(normals.numpy(), np.broadcast_to(-true_normal, normals.shape),
                               atol=1e-4)


def test_sphere_and_plane_features_differ():
    ext = create_extractor("fpfh", spacing_m=SPACING)
    sphere = ext.extract([grid_cloud(sphere_depth(), size=64)], grid=8)[0]
    plane = ext.extract([grid_cloud(plane_depth, size=64)], grid=8)[0]
    inner = (slice(3, 5), slice(3, 5))  # cells well inside both surfaces
    diff = (sphere[:, inner[0], inner[1]] - plane[:, inner[0], inner[1]]).norm(dim=0)
    assert diff.min() > 50  # block sums are 200: a clearly different histogram


def test_invariant_to_translation_and_rotation_about_the_optical_axis():
    # float64 so that rounding cannot move a pair into the next bin
    base = grid_cloud(sphere_depth(), size=64, dtype=np.float64)
    feats, pixels, _ = fpfh_points(base, CFG, dtype=torch.float64)
    per_pixel = np.zeros((64 * 64, DIM))
    per_pixel[pixels.numpy()] = feats.numpy()
    per_pixel = per_pixel.reshape(64, 64, DIM)

    # sphere moved by 8 px (8 mm) sideways and 5 cm further away: same features, shifted
    moved = grid_cloud(lambda x, y: sphere_depth()(x, y) + 0.05, size=64, center=(0.008, 0.0),
                       dtype=np.float64)
    f2, p2, _ = fpfh_points(moved, CFG, dtype=torch.float64)
    moved_pp = np.zeros((64 * 64, DIM))
    moved_pp[p2.numpy()] = f2.numpy()
    moved_pp = moved_pp.reshape(64, 64, DIM)
    np.testing.assert_allclose(moved_pp[:, 8:], per_pixel[:, :-8], atol=1e-6)

    # rotated 90° about the optical axis: the pixel grid and the points rotate together
    rot = np.rot90(base, 1).copy()
    rot[..., :2] = np.stack([rot[..., 1], -rot[..., 0]], -1)  # (x, y) -> (y, -x) matches rot90
    rot[~valid_mask(np.rot90(base, 1))] = 0
    f3, p3, _ = fpfh_points(rot, CFG, dtype=torch.float64)
    rot_pp = np.zeros((64 * 64, DIM))
    rot_pp[p3.numpy()] = f3.numpy()
    np.testing.assert_allclose(rot_pp.reshape(64, 64, DIM), np.rot90(per_pixel, 1), atol=1e-6)


def test_no_neighbours_across_a_depth_jump():
    def steps(x, y):
        return np.where(x < 0, 0.40, 0.45)  # two parallel planes 50 mm apart

    feats, pixels, _ = fpfh_points(grid_cloud(steps, size=32), CFG)
    expected = np.zeros(DIM)
    expected[[5, 16, 27]] = 200.0  # each side is a plane; a shared neighbourhood would not be
    np.testing.assert_allclose(feats.numpy(), np.broadcast_to(expected, feats.shape), atol=1e-3)


def test_grid_pooling_zero_cells_nan_free_and_degenerate_inputs():
    ext = create_extractor("fpfh")
    sphere = grid_cloud(sphere_depth(radius=0.015), size=64)
    sphere[10, 30] = np.nan  # sensor NaN: treated as invalid
    lonely = np.zeros((64, 64, 3), np.float32)
    lonely[5, 5] = (0.01, 0.02, 0.5)  # a single point has no neighbours
    out = ext.extract([sphere, np.zeros((64, 64, 3), np.float32), lonely], grid=8)
    assert out.shape == (3, DIM, 8, 8) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    occupied = foreground_cells(valid_mask(sphere), 8, min_fraction=1e-9)
    assert (out[0].abs().sum(0)[torch.from_numpy(~occupied)] == 0).all()
    assert (out[0].abs().sum(0)[torch.from_numpy(occupied)] > 0).all()
    assert (out[1] == 0).all() and (out[2] == 0).all()


def test_foreground_cells_and_pooling_helpers():
    valid = np.zeros((32, 32), bool)
    valid[:8, :8] = True  # cell (0, 0) of a 4-grid full
    valid[8:9, 8:14] = True  # 6 of 64 pixels of cell (1, 1): below 10 %
    valid[16:20, 16:24] = True  # 32 of 64 pixels of cell (2, 2)
    cells = foreground_cells(valid, 4)
    assert cells.dtype == bool and cells.shape == (4, 4)
    assert set(zip(*np.nonzero(cells))) == {(0, 0), (2, 2)}
    assert foreground_cells(valid, 4, min_fraction=0.05)[1, 1]
    feats = torch.ones(2, 32, 32) * torch.from_numpy(valid).float()
    pooled = pool_pixel_features(feats, torch.from_numpy(valid), 4)
    assert pooled.shape == (2, 4, 4)
    occupied = torch.from_numpy(foreground_cells(valid, 4, min_fraction=1e-9))
    assert (pooled[:, ~occupied] == 0).all() and (pooled[:, occupied] > 0).all()
    # a constant map keeps its value away from the image border (3×3 mean, then cell mean)
    everywhere = torch.ones(32, 32, dtype=torch.bool)
    full = pool_pixel_features(torch.full((1, 32, 32), 7.0), everywhere, 4)
    assert torch.allclose(full[0, 1:3, 1:3], torch.tensor(7.0)) and (full[0, 0] < 7).all()


def test_real_stereo_cloud(shared_data):
    from core.data.pcd import read_pcd

    cloud = read_pcd(shared_data / "pcl_organized" / "table_scene_mug_stereo_textured.pcd").xyz
    h, w = cloud.shape[:2]
    square = cloud[:, (w - h) // 2 : (w - h) // 2 + h]
    pick = (np.arange(224) * h / 224).astype(int)  # nearest resize to 224
    xyz = np.ascontiguousarray(square[pick][:, pick])
    valid = valid_mask(xyz)
    assert 0.2 < median_spacing(xyz, valid) * 1000 < 10  # millimetres
    feats, pixels, normals = fpfh_points(xyz)
    assert len(pixels) == valid.sum() and torch.isfinite(feats).all()
    has = feats.sum(1) > 0
    assert has.float().mean() > 0.99
    np.testing.assert_allclose(feats[has].view(-1, 3, 11).sum(-1).numpy(), 200.0, atol=1e-2)
    facing = (normals * torch.from_numpy(xyz[valid])).sum(1) < 0
    assert facing.all()
    f64, _, _ = fpfh_points(xyz.astype(np.float64), dtype=torch.float64)
    close = ((feats.double() - f64).abs().max(1).values < 1.0).double().mean()
    assert close > 0.98  # float32 vs float64: only ill-conditioned pairs change bins
    grid = create_extractor("fpfh").extract([xyz])[0]
    assert grid.shape == (DIM, 28, 28) and torch.isfinite(grid).all()


def test_extractor_protocol_and_errors():
    ext = create_extractor("fpfh", fpfh_radius_px=4.0)
    assert (ext.name, ext.modality, ext.dim, ext.weights_id) == ("fpfh", "xyz", 33, "none")
    again = create_extractor("fpfh", **ext.params)
    assert again.config == ext.config
    with pytest.raises(UserError):
        create_extractor("fpfh", fpfh_radius_px=0.5)
    with pytest.raises(DataError):
        ext.extract([np.zeros((8, 8), np.float32)])
    with pytest.raises(DataError):
        ext.extract([np.zeros((8, 8, 3), np.uint8)])
    assert len(disc_offsets(5.7)) == 100 and len(disc_offsets(3.0)) == 28


def test_threads_do_not_change_the_features(shared_data, monkeypatch):
    """The FPFH loops split the points into ranges run on a few threads; the pair counts of
    each range are added after, so features and normals are the same bits for 1 to 4 threads
    (a real stereo cloud with holes and depth jumps, ~30 000 points)."""
    import core.features.fpfh as fpfh
    from core.data.pcd import read_pcd

    cloud = read_pcd(shared_data / "pcl_organized" / "table_scene_mug_stereo_textured.pcd").xyz
    h, w = cloud.shape[:2]
    pick = (np.arange(224) * h / 224).astype(int)
    xyz = np.ascontiguousarray(cloud[:, (w - h) // 2 : (w - h) // 2 + h][pick][:, pick])
    results = []
    for workers in (1, 2, 3, 4):
        monkeypatch.setattr(fpfh, "worker_count", lambda workers=workers: workers)
        assert len(fpfh._point_ranges(valid_mask(xyz).sum())) == workers
        results.append(fpfh_points(xyz))
    feats, pixels, normals = results[0]
    assert (feats.sum(1) > 0).float().mean() > 0.99
    for other in results[1:]:
        assert torch.equal(other[0], feats) and torch.equal(other[1], pixels) and torch.equal(other[2], normals)


def test_fpfh_threads_follow_the_cores_and_omp_num_threads(monkeypatch):
    import core.cpu
    import core.features.fpfh as fpfh

    monkeypatch.setattr(core.cpu, "usable_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert fpfh.worker_count() == fpfh.MAX_WORKERS == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray gives a one-CPU task
    assert fpfh.worker_count() == 1 and len(fpfh._point_ranges(50_000)) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert fpfh.worker_count() == 2 and len(fpfh._point_ranges(50_000)) == 2
    assert len(fpfh._point_ranges(3_000)) == 1  # too few points to share
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert fpfh.worker_count() == 4
    monkeypatch.setattr(core.cpu, "usable_cores", lambda: 1)
    assert fpfh.worker_count() == 1


def _fpfh_in_child(xyz, queue):
    import core.features.fpfh as fpfh

    fpfh.worker_count = lambda: 2
    queue.put(fpfh.fpfh_points(xyz)[0].numpy())


def test_fpfh_threads_work_in_a_forked_child():
    """A child forked after the parent ran the threaded loops (e.g. a data-loader worker) starts
    its own threads instead of waiting on the parent's pool, which the child does not have."""
    import multiprocessing

    import core.features.fpfh as fpfh

    yy, xx = np.mgrid[0:96, 0:96]
    xyz = np.stack([xx * 1e-3, yy * 1e-3, 0.4 + 1e-3 * np.sin(xx / 7.0)], -1).astype(np.float32)
    parent_workers = fpfh.worker_count
    try:
        fpfh.worker_count = lambda: 2
        want = fpfh.fpfh_points(xyz)[0].numpy()  # the parent's pool now exists
    finally:
        fpfh.worker_count = parent_workers
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fpfh_in_child, args=(xyz, queue), daemon=True)
    child.start()
    try:
        got = queue.get(timeout=120)
        child.join(timeout=60)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0 and np.array_equal(got, want)
