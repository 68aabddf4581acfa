"""FPFH (Fast Point Feature Histograms, 33-d) on organized point clouds, weight-free.

Same definitions as Open3D's ``compute_fpfh_feature`` (used by BTF), but neighbourhoods come
from the pixel grid instead of a KD-tree; compiled per-point loops over each point's pixel disc
(:mod:`core.features.fpfh_kernels`, numba) do the work:

* Neighbours of a pixel: the valid pixels whose offset lies in a disc of ``radius_px`` pixels
  and whose 3D distance is at most ``radius_px · spacing · radius_scale`` metres (drops points
  across depth jumps). ``spacing`` is the median 3D distance between 4-adjacent valid pixels of
  the cloud (or given). The relation is symmetric.
* Normals: smallest-eigenvalue eigenvector of the covariance of the point and its neighbours
  (closed form for 3×3), oriented towards the sensor at the origin (n·p < 0). Points with fewer
  than 3 points in their window use the direction to the sensor.
* SPFH(p): for each neighbour the Darboux-frame angles (theta, alpha, phi) of Open3D's
  ``ComputePairFeatures``, binned into 3 × 11 bins; each block sums to 100. Each pair is
  evaluated once (half of the disc) and counted for both of its points.
* FPFH(p) = SPFH(p) + Σ_q w_pq SPFH(q) / Σ_q w_pq with w_pq = 1 / |p - q|² (Open3D and PCL
  weight by the *squared* distance); each block sums to 200. Points without neighbours get 0.

Defaults mimic BTF's effective neighbourhoods at 224 px (k=30 normals, k=100 FPFH): a 3 px disc
(28 neighbours) for normals and a 5.7 px disc (100 neighbours) for FPFH.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from core.cpu import in_parallel, thread_budget
from core.data.sample import finite_valid_points
from core.data.units import pixel_distances
from core.errors import DataError, UserError
from core.features import fpfh_kernels as kernels
from core.features import pooling
from core.features.registry import register

BINS = kernels.BINS
DIM = kernels.DIM


@dataclass(frozen=True)
class FPFHConfig:
    """Neighbourhood settings. Radii in pixels of the organized grid; spacing in metres."""

    normal_radius_px: float = 3.0
    fpfh_radius_px: float = 5.7
    radius_scale: float = 2.0  # metric radius = radius_px · spacing · radius_scale
    spacing_m: float | None = None  # None: per-cloud median spacing of adjacent valid pixels

    def __post_init__(self):
        if not (self.normal_radius_px >= 1 and self.fpfh_radius_px >= 1):
            raise UserError("FPFH radii must be at least 1 pixel")
        if not self.radius_scale > 0:
            raise UserError("FPFH radius_scale must be positive")
        if self.spacing_m is not None and not self.spacing_m > 0:
            raise UserError("FPFH spacing_m must be positive metres")


def disc_offsets(radius_px: float) -> np.ndarray:
    """(K, 2) int (dy, dx) pixel offsets with 0 < dy² + dx² ≤ radius², first the half with
    (dy, dx) > (0, 0) lexicographically, then their negations in the same order."""
    r = int(math.floor(radius_px))
    half = [
        (dy, dx)
        for dy in range(0, r + 1)
        for dx in range(-r, r + 1)
        if (dy > 0 or dx > 0) and dy * dy + dx * dx <= radius_px * radius_px
    ]
    half = np.array(half, dtype=np.int64).reshape(-1, 2)
    return np.concatenate([half, -half])


def valid_mask(xyz: np.ndarray) -> np.ndarray:
    """H×W bool: finite points that are not exactly (0, 0, 0)."""
    return finite_valid_points(xyz)


def median_spacing(xyz: np.ndarray, valid: np.ndarray) -> float:
    """Median 3D distance (metres) between horizontally/vertically adjacent valid pixels."""
    d = []
    for a, b, va, vb in (
        (xyz[:, 1:], xyz[:, :-1], valid[:, 1:], valid[:, :-1]),
        (xyz[1:], xyz[:-1], valid[1:], valid[:-1]),
    ):
        both = va & vb
        if both.any():
            d.append(pixel_distances(a, b, both))
    if not d:
        return 0.0
    d = np.concatenate(d)
    d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0


class _Grid:
    """Valid points of one organized cloud with pixel-offset neighbour lookup (the layout of
    :mod:`core.features.fpfh_kernels`)."""

    def __init__(self, valid: np.ndarray, pad: int):
        h, w = valid.shape
        self.wp = w + 2 * pad
        ys, xs = np.nonzero(valid)
        self.n = len(ys)
        self.flat = ys * w + xs  # pixel index in the H×W image
        index = np.full((h + 2 * pad, self.wp), self.n, dtype=np.int64)  # n = no point
        index[ys + pad, xs + pad] = np.arange(self.n)
        self.index = index.reshape(-1)
        self.padded = (ys + pad) * self.wp + (xs + pad)

    def shifts(self, offsets: np.ndarray) -> np.ndarray:
        """(K,) flat offsets in the padded grid of (K, 2) pixel offsets (dy, dx)."""
        return np.ascontiguousarray(offsets[:, 0] * self.wp + offsets[:, 1])


def pair_features(p1, n1, p2, n2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Open3D's ``ComputePairFeatures`` angles (theta, alpha, phi) and the squared distance for
    point pairs given component-first as broadcastable (3, ...) tensors (unit normals), in the
    inputs' dtype; see :func:`core.features.fpfh_kernels.pair_angles`."""
    tensors = torch.broadcast_tensors(p1, n1, p2, n2)
    shape = tensors[0].shape[1:]
    flat = [t.reshape(3, -1).T.to(torch.float64).contiguous().numpy() for t in tensors]
    out = np.empty((4, flat[0].shape[0]))
    kernels.pair_features_many(*flat, out)
    return tuple(torch.from_numpy(o).reshape(shape).to(p1.dtype) for o in out)


def fpfh_points(
    xyz: np.ndarray, config: FPFHConfig = FPFHConfig(), dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FPFH of every valid pixel of an H×W×3 organized cloud (metres, 0 = invalid).

    Returns ``(features (N, 33), pixel_index (N,) row-major into H×W, normals (N, 3))`` in
    ``dtype`` (the points are centred and stored in it; the loops compute in float64). The
    loops run on up to :func:`worker_count` threads, each on one range of points; the result
    does not depend on how many.
    """
    xyz = np.asarray(xyz)
    valid = valid_mask(xyz)
    spacing = config.spacing_m if config.spacing_m is not None else median_spacing(xyz, valid)
    pad = int(math.floor(max(config.normal_radius_px, config.fpfh_radius_px)))
    grid = _Grid(valid, pad)
    n = grid.n
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    feats = np.zeros((n, DIM), dtype=np_dtype)
    normals = np.zeros((n, 3), dtype=np_dtype)
    if n:
        raw = xyz[valid].astype(np.float64)
        # differences are taken after centring, so float32 keeps sub-micrometre precision
        points = (raw - raw.mean(0)).astype(np_dtype)
        sensor = raw.astype(np_dtype)  # original coordinates: the sensor sits at the origin
        max_n = (config.normal_radius_px * spacing * config.radius_scale) ** 2
        shifts = grid.shifts(disc_offsets(config.normal_radius_px))
        ranges = _point_ranges(n)
        _in_parallel(lambda k: kernels.normals(points, sensor, grid.index, grid.padded, shifts, max_n,
                                               normals, *ranges[k]), len(ranges))
        counts, weights, shifts = _pair_histograms(points, normals, grid, config, spacing, ranges)
        spfh = np.empty_like(feats)
        kernels.spfh(counts, spfh)
        _in_parallel(lambda k: kernels.weighted_fpfh(counts, spfh, weights, grid.index, grid.padded,
                                                     shifts, feats, *ranges[k]), len(ranges))
    return torch.from_numpy(feats), torch.from_numpy(grid.flat), torch.from_numpy(normals)


MAX_WORKERS = 4  # threads for one cloud's loops
_MIN_POINTS_PER_WORKER = 4096  # below this a second thread costs more than it saves


def worker_count() -> int:
    """Threads the FPFH loops of one cloud run on: the cores this process may use, at most
    :data:`MAX_WORKERS`, and at most ``$OMP_NUM_THREADS`` when that is set (Ray sets it to a
    task's CPUs, so a one-CPU worker stays on one thread). The loops release the GIL; on a busy
    machine the threads only share the cores (the result is the same)."""
    return min(MAX_WORKERS, thread_budget())


def _point_ranges(n: int) -> list[tuple[int, int]]:
    parts = max(1, min(worker_count(), n // _MIN_POINTS_PER_WORKER))
    bounds = np.linspace(0, n, parts + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _in_parallel(call, parts: int) -> None:
    """Run ``call(k)`` for k = 0 .. parts - 1: k = 0 in the calling thread, the others on the
    FPFH pool (core.cpu.in_parallel); returns when all are done (raising the first error)."""
    in_parallel([lambda k=k: call(k) for k in range(parts)], "lsfa-fpfh", MAX_WORKERS - 1)


def _pair_histograms(points: np.ndarray, normals: np.ndarray, grid: _Grid, config: FPFHConfig,
                     spacing: float, ranges: list[tuple[int, int]] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair-angle counts (N, 33) int32 of centred ``points`` (N, 3) with unit ``normals``, the
    pair weights 1/d² (N, K/2) (1/m², in the points' dtype) of the half-disc offsets and their
    flat ``shifts`` (K/2,). A range's pairs also count for points outside it, so each range
    beyond the first counts into its own array, added at the end (integers: the same sums)."""
    offsets = disc_offsets(config.fpfh_radius_px)
    shifts = grid.shifts(offsets[: len(offsets) // 2])  # the other half are the reverse pairs
    max_f = (config.fpfh_radius_px * spacing * config.radius_scale) ** 2
    ranges = ranges or [(0, len(points))]
    counts = [np.zeros((len(points), DIM), dtype=np.int32) for _ in ranges]
    weights = np.empty((len(points), len(shifts)), dtype=points.dtype)
    args = (points, normals, grid.index, grid.padded, shifts, max_f)

    _in_parallel(lambda k: kernels.pair_histograms(*args, counts[k], weights, *ranges[k]), len(ranges))
    for more in counts[1:]:
        counts[0] += more
    return counts[0], weights, shifts


class FPFHFeatures:
    """Weight-free 33-d FPFH patch features of organized clouds (see module docstring)."""

    name = "fpfh"
    modality = "xyz"
    dim = DIM
    weights_id = "none"

    def __init__(self, config: FPFHConfig = FPFHConfig()):
        self.config = config
        self.params = asdict(config)

    def extract(self, batch: list[np.ndarray], grid: int = 28, progress=None) -> torch.Tensor:
        """(B, 33, grid, grid) float32; cells without any valid point are exactly 0.
        ``progress`` is checked before each cloud (cancel)."""
        if grid < 1:
            raise UserError(f"grid must be positive, got {grid}")
        out = torch.zeros(len(batch), DIM, grid, grid)
        for b, xyz in enumerate(batch):
            if progress is not None:
                progress.check()
            _check_cloud(xyz)
            feats, pixels, _ = fpfh_points(xyz, self.config)
            out[b] = pooling.pool_point_features(feats, pixels, torch.from_numpy(valid_mask(xyz)), grid)
        return out


def _check_cloud(xyz: np.ndarray) -> None:
    if not isinstance(xyz, np.ndarray) or xyz.ndim != 3 or xyz.shape[2] != 3:
        raise DataError(None, f"FPFH needs H×W×3 organized clouds, got shape {np.shape(xyz)}")
    if not np.issubdtype(xyz.dtype, np.floating):
        raise DataError(None, f"FPFH needs float xyz (metres), got {xyz.dtype}")


@register("fpfh", "xyz")
def create_fpfh(
    normal_radius_px: float = 3.0,
    fpfh_radius_px: float = 5.7,
    radius_scale: float = 2.0,
    spacing_m: float | None = None,
):
    """FPFH with pixel-disc neighbourhoods (radii in pixels; see :class:`FPFHConfig`)."""
    return FPFHFeatures(FPFHConfig(normal_radius_px, fpfh_radius_px, radius_scale, spacing_m))
