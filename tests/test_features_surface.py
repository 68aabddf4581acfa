"""fpfh_surface: FPFH + surface-height block. Shallow dents and bumps on generated pinhole-camera
clouds stand out of the clean part's features, the block is invariant to the part's pose, dents
and bumps differ in sign, invalid points are ignored, and the extractor round-trips its params."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from core.errors import UserError
from core.features import create_extractor
from core.features.fpfh import DIM as FPFH_DIM
from core.features.pooling import valid_fraction
from core.features.registry import FeatureExtractor, available, modality_of
from core.features.surface import CHANNELS_PER_SCALE, SurfaceConfig

SIZE = 224
GRID = 28
NOISE_M = 3e-5  # depth noise along the viewing ray (a good structured-light sensor)
DEPTH_M = 3e-4  # dent / bump depth
DEFECT_SIGMA_MM = 1.5  # Gaussian profile: ~3 mm radius (e^-2 of the depth at 3 mm)
DEFECT_AT_MM = (8.0, -5.0)  # on the part, part coordinates
POSE_A = {"rot_deg": 0.0, "shift_mm": (0.0, 0.0)}
POSE_B = {"rot_deg": 30.0, "shift_mm": (3.3, -2.1)}  # rotated in-plane and shifted


# ---------------------------------------------------------------- pinhole-camera clouds
def _rotation(axis: str, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def make_cloud(shape="plane", rot_deg=0.0, shift_mm=(0.0, 0.0), tilt_deg=(8.0, 3.0),
               defect_m=0.0, noise_m=NOISE_M, seed=0, size=SIZE):
    """Organized S×S×3 float32 cloud (metres, invalid = 0) of a Ø60 mm part 0.4 m below a
    pinhole camera (f = 3.3·S px, ~0.54 mm/px at 224 px): a flat disc or a sphere cap (R 60 mm,
    8 mm high), tilted by ``tilt_deg``, rotated in its plane by ``rot_deg`` and shifted.
    ``defect_m`` < 0 adds a Gaussian dent at DEFECT_AT_MM, > 0 a bump; depth noise is along
    the viewing ray. Rays are intersected with the part's height field by Newton steps."""
    f, c = 3.3 * size, (size - 1) / 2
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    ray = np.stack([(u - c) / f, (v - c) / f, np.ones_like(u)], -1)
    # part frame: z towards the camera; camera frame: z along the optical axis
    rot = (_rotation("x", tilt_deg[0]) @ _rotation("y", tilt_deg[1]) @ _rotation("z", rot_deg)
           @ np.diag([1.0, -1.0, -1.0]))
    origin = np.array([shift_mm[0] * 1e-3, shift_mm[1] * 1e-3, 0.4])

    def height(x, y):
        z = np.zeros_like(x)
        if shape == "sphere":
            z = np.sqrt(0.06**2 - np.minimum(x * x + y * y, 0.99 * 0.06**2)) - 0.06
        cx, cy = DEFECT_AT_MM[0] * 1e-3, DEFECT_AT_MM[1] * 1e-3
        r2 = ((x - cx) ** 2 + (y - cy) ** 2) / (DEFECT_SIGMA_MM * 1e-3) ** 2
        return z + defect_m * np.exp(-r2 / 2)

    def gap(t):  # height of the ray point above the surface, and the point in part coordinates
        p = (t[..., None] * ray - origin) @ rot
        return p[..., 2] - height(p[..., 0], p[..., 1]), p

    t = (origin @ rot[:, 2]) / (ray @ rot[:, 2])  # the part's base plane
    for _ in range(6):
        g, _ = gap(t)
        t = t - g * 1e-7 / (gap(t + 1e-7)[0] - g)
    part = gap(t)[1]
    xyz = t[..., None] * ray
    if noise_m:
        noise = np.random.default_rng(seed).standard_normal(t.shape) * noise_m
        xyz = xyz * (1 + noise / xyz[..., 2])[..., None]
    xyz[part[..., 0] ** 2 + part[..., 1] ** 2 >= 0.03**2] = 0
    return xyz.astype(np.float32)


def defect_cells(shape, pose) -> np.ndarray:
    """(grid²,) bool: cells holding a pixel that the defect moves by more than half its depth."""
    clean = make_cloud(shape, noise_m=0, **pose).astype(np.float64)
    dented = make_cloud(shape, noise_m=0, defect_m=-DEPTH_M, **pose)
    moved = np.linalg.norm(clean - dented, axis=-1) > DEPTH_M / 2
    return valid_fraction(torch.from_numpy(moved), GRID).numpy().reshape(-1) > 0


def cells(xyz, extractor) -> tuple[np.ndarray, np.ndarray]:
    """(grid², dim) features and (grid²,) foreground flags of one cloud."""
    feats = extractor.extract([xyz], grid=GRID)[0].flatten(1).T.numpy().astype(np.float64)
    occupied = valid_fraction(torch.from_numpy(np.any(xyz != 0, -1)), GRID).numpy().reshape(-1)
    return feats, occupied > 0


def nn_distance(bank: np.ndarray, query: np.ndarray) -> np.ndarray:
    return torch.cdist(torch.from_numpy(query), torch.from_numpy(bank)).min(1).values.numpy()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One thread avoids OpenMP barrier stalls on a shared 2-core machine (20× faster here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def extractor():
    return create_extractor("fpfh_surface")


@pytest.fixture(scope="module", params=["plane", "sphere"])
def scene(request, extractor):
    """Features of one part shape: the clean reference (bank), another clean scan (normal
    cells), dented and bumped scans, and clean and dented scans in pose B."""
    shape = request.param
    out = {"shape": shape}
    for key, kwargs in {
        "reference": dict(seed=0, **POSE_A),
        "clean": dict(seed=1, **POSE_A),
        "dent": dict(seed=1, defect_m=-DEPTH_M, **POSE_A),
        "bump": dict(seed=1, defect_m=DEPTH_M, **POSE_A),
        "clean_b": dict(seed=2, **POSE_B),
        "dent_b": dict(seed=2, defect_m=-DEPTH_M, **POSE_B),
    }.items():
        out[key] = cells(make_cloud(shape, **kwargs), extractor)
    out["cells_a"] = defect_cells(shape, POSE_A)
    out["cells_b"] = defect_cells(shape, POSE_B)
    feats, fg = out["reference"]
    out["bank"] = feats[fg]
    return out


def _normal_p99(scene, key="clean", block=slice(None)) -> float:
    feats, fg = scene[key]
    return float(np.percentile(nn_distance(scene["bank"][:, block], feats[fg][:, block]), 99))


# ---------------------------------------------------------------- dents and bumps
@pytest.mark.parametrize("kind", ["dent", "bump"])
def test_defect_cells_are_far_from_every_clean_cell(scene, kind):
    """Every cell over a 0.3 mm dent/bump lies > 3× the normal cells' 99th-percentile distance
    from all cells of the clean part. FPFH alone does not get there for the dents."""
    assert 1 <= scene["cells_a"].sum() <= 6
    feats, _ = scene[kind]
    p99 = _normal_p99(scene)
    far = nn_distance(scene["bank"], feats[scene["cells_a"]])
    assert far.min() > 3 * p99, (scene["shape"], kind, far, p99)
    if kind == "dent":  # what the new block adds
        fpfh = slice(0, FPFH_DIM)
        fpfh_far = nn_distance(scene["bank"][:, fpfh], feats[scene["cells_a"]][:, fpfh])
        assert fpfh_far.min() < 3 * _normal_p99(scene, block=fpfh)


def test_dent_and_bump_differ_in_sign(scene, extractor):
    """The height block: a dent lowers the cell minimum, a bump raises the cell maximum, and
    the two give descriptors far apart."""
    block = slice(FPFH_DIM, None)
    sel = scene["cells_a"]
    clean = scene["clean"][0][sel][:, block]
    dent = scene["dent"][0][sel][:, block]
    bump = scene["bump"][0][sel][:, block]
    k = len(extractor.surface_config.sigmas_px)
    weight = extractor.surface_config.surface_weight
    maxima, minima = slice(1, None, CHANNELS_PER_SCALE), slice(2, None, CHANNELS_PER_SCALE)
    # heights are % of the window size (× weight): a 0.3 mm dent is 3-6 % at the 1-4 mm scales
    dent_drop = (dent[:, minima] - clean[:, minima]).min(0)  # per scale, most lowered cell
    bump_rise = (bump[:, maxima] - clean[:, maxima]).max(0)
    assert (dent_drop < -2 * weight).all() and dent_drop.min() < -4 * weight, dent_drop
    assert (bump_rise > 2 * weight).all() and bump_rise.max() > 4 * weight, bump_rise
    means = slice(0, None, CHANNELS_PER_SCALE)  # the cell mean moves down / up at every scale
    assert ((dent - clean)[:, means].sum(0) < 0).all()
    assert ((bump - clean)[:, means].sum(0) > 0).all()
    assert dent.shape[1] == CHANNELS_PER_SCALE * k
    apart = np.linalg.norm(dent - bump, axis=1)
    assert apart.max() > 3 * _normal_p99(scene), apart


def test_surface_block_is_pose_invariant(scene):
    """The clean part rotated in-plane by 30° and shifted: its surface-block cells lie as close
    to the reference as another scan in the same pose, and a dent in pose B still stands out."""
    block = slice(FPFH_DIM, None)
    same_pose = _normal_p99(scene, block=block)
    moved = _normal_p99(scene, "clean_b", block=block)
    assert moved < 1.5 * same_pose, (moved, same_pose)
    dent_b = nn_distance(scene["bank"][:, block], scene["dent_b"][0][scene["cells_b"]][:, block])
    assert dent_b.min() > 3 * moved, (dent_b, moved)
    # the full vector: the dent in pose B is still the most anomalous by far
    full = nn_distance(scene["bank"], scene["dent_b"][0][scene["cells_b"]])
    assert full.max() > 3 * _normal_p99(scene, "clean_b"), full


# ---------------------------------------------------------------- extractor contract
def test_output_shape_fpfh_block_and_weight():
    clouds = [make_cloud("sphere", seed=3, size=96), make_cloud("plane", seed=4, size=96)]
    ex = create_extractor("fpfh_surface")
    assert isinstance(ex, FeatureExtractor)
    assert (ex.name, ex.modality, ex.weights_id) == ("fpfh_surface", "xyz", "none")
    assert ex.dim == FPFH_DIM + 3 * 3 == 42
    for grid in (28, 12):
        out = ex.extract(clouds, grid=grid)
        assert out.shape == (2, ex.dim, grid, grid) and out.dtype == torch.float32
    out = ex.extract(clouds, grid=12)
    assert torch.equal(out[:, :FPFH_DIM], create_extractor("fpfh").extract(clouds, grid=12))
    blocks = create_extractor("fpfh_surface", fpfh_stride=2).extract(clouds, grid=12)
    assert torch.equal(blocks[:, FPFH_DIM:], out[:, FPFH_DIM:])  # the surface block stays full-res
    assert ex.surface_config.surface_weight == 20.0 and ex.params["surface_weight"] == 20.0
    heavier = create_extractor("fpfh_surface", surface_weight=40.0).extract(clouds, grid=12)
    assert torch.allclose(heavier[:, FPFH_DIM:], 2 * out[:, FPFH_DIM:])
    off = create_extractor("fpfh_surface", surface_weight=0.0).extract(clouds, grid=12)
    assert torch.count_nonzero(off[:, FPFH_DIM:]) == 0


def test_invalid_points_are_ignored_and_outputs_finite():
    """Zero points and NaN points are both 'no point': same features, all finite; cells
    without any valid point are exactly 0; an empty cloud gives zeros."""
    ex = create_extractor("fpfh_surface")
    xyz = make_cloud("sphere", seed=5, size=96)
    xyz[40:60, 30:45] = 0  # a hole in the part
    rng = np.random.default_rng(0)
    drop = rng.random(xyz.shape[:2]) < 0.05
    zeros, nans = xyz.copy(), xyz.copy()
    zeros[drop] = 0
    nans[drop] = np.nan
    nans[drop & (rng.random(xyz.shape[:2]) < 0.5), 1] = 0.01  # partly NaN points
    a, b = ex.extract([zeros], grid=12), ex.extract([nans], grid=12)
    assert torch.isfinite(a).all() and torch.equal(a, b)
    empty = valid_fraction(torch.from_numpy(np.any(zeros != 0, -1)), 12) == 0
    assert empty.any() and (a[0][:, empty] == 0).all()
    assert (a[0][FPFH_DIM:, ~empty] != 0).any()
    blank = ex.extract([np.zeros((32, 32, 3), np.float32)], grid=4)
    assert blank.shape == (1, 42, 4, 4) and torch.count_nonzero(blank) == 0


def test_params_round_trip_recreates_the_extractor():
    clouds = [make_cloud("sphere", seed=6, size=64)]
    for kwargs in ({}, {"sigmas_px": [1.5, 3, 6, 12], "fine_sigma_px": 0.8, "surface_weight": 2.5,
                        "fpfh_radius_px": 4.0}):
        ex = create_extractor("fpfh_surface", **kwargs)
        params = json.loads(json.dumps(ex.params))  # as a saved model stores them
        again = create_extractor(ex.name, **params)
        assert again.params == ex.params and again.dim == ex.dim
        assert torch.equal(again.extract(clouds, grid=8), ex.extract(clouds, grid=8))
    assert create_extractor("fpfh_surface", sigmas_px=[1.5, 3, 6, 12]).dim == FPFH_DIM + 12


def test_registry_and_validation():
    assert "fpfh_surface" in available("xyz") and "fpfh_surface" not in available("rgb")
    assert modality_of("fpfh_surface") == "xyz"
    assert SurfaceConfig().dim == 9
    for bad in ({"sigmas_px": []}, {"sigmas_px": [0.5]}, {"sigmas_px": "abc"},
                {"surface_weight": -1.0}, {"surface_weight": float("nan")},
                {"fine_sigma_px": 0.0}, {"fine_sigma_px": 3.0, "sigmas_px": [2.0]}):
        with pytest.raises(UserError):
            create_extractor("fpfh_surface", **bad)
    with pytest.raises(UserError):
        create_extractor("fpfh_surface", no_such_option=1)


def test_a_cancel_stops_token_extraction_between_samples_of_one_batch(monkeypatch):
    """core.tokens hands its progress to the extractor: a cancel during a batch stops at the
    next sample instead of after the whole batch."""
    from core.data.sample import Sample
    from core.features.surface import FPFHSurfaceFeatures
    from core.progress import Cancelled, Progress
    from core.tokens import extract_tokens

    progress = Progress()
    done = []
    original = FPFHSurfaceFeatures.blocks

    def one_cloud(self, xyz, grid):
        out = original(self, xyz, grid)
        done.append(1)
        progress.cancel()  # the user presses Esc while the first cloud is being described
        return out

    monkeypatch.setattr(FPFHSurfaceFeatures, "blocks", one_cloud)
    samples = [Sample(f"s{i}", None, make_cloud(seed=i, size=64)) for i in range(4)]
    extractor = create_extractor("fpfh_surface")
    with pytest.raises(Cancelled):
        extract_tokens({"xyz": extractor}, samples, grid=8, batch_size=8, progress=progress)
    assert len(done) == 1  # not the 4 of the batch


def test_fpfh_on_block_means_keeps_the_neighbourhoods_in_metres():
    """fpfh_stride 2: FPFH of the 2×2 block-mean cloud with the radii in pixels halved; its
    pooled cells stay close to FPFH on every pixel (the same surface, a quarter of the points)."""
    from core.features.fpfh import median_spacing, valid_mask
    from core.features.surface import block_mean_cloud

    xyz = make_cloud("sphere", seed=8, size=96)
    xyz[40:60, 30:45] = 0
    valid = valid_mask(xyz)
    small, small_valid = block_mean_cloud(xyz, valid, 2)
    assert small.shape == (48, 48, 3) and small_valid.shape == (48, 48)
    block = valid[:96, :96].reshape(48, 2, 48, 2).sum(axis=(1, 3))
    assert (small_valid == (block >= 3)).all() and not small[~small_valid].any()
    i, j = np.argwhere(block == 4)[0]
    assert np.allclose(small[i, j], xyz[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(4, 3).mean(0), atol=1e-7)
    assert abs(median_spacing(small, small_valid) - 2 * median_spacing(xyz, valid)) < 0.2 * median_spacing(xyz, valid)
    fine = create_extractor("fpfh_surface", fpfh_stride=1).extract([xyz], grid=12)[0, :FPFH_DIM]
    coarse = create_extractor("fpfh_surface", fpfh_stride=2).extract([xyz], grid=12)[0, :FPFH_DIM]
    occupied = fine.abs().sum(0) > 0
    corr = np.corrcoef(fine[:, occupied].flatten(), coarse[:, occupied].flatten())[0, 1]
    assert corr > 0.9, corr
    with pytest.raises(UserError, match="fpfh_stride"):
        create_extractor("fpfh_surface", fpfh_stride=0)

