"""Verbatim copies of implementations that were rewritten for speed (issue 11), kept only as
references for tests/test_fast_paths.py: the rewrites must give the same results (bit for bit
for masks, float tolerance for features). Taken from commit b815d02 (FPFH: from 23b0860)."""

from __future__ import annotations

import math

import numpy as np
import torch.nn.functional as F


def pool_pixel_features(features, valid, grid):
    """core.features.pooling.pool_pixel_features: 3×3 avg_pool2d, adaptive average, occupancy."""
    pooled = F.avg_pool2d(features[None], kernel_size=3, stride=1, padding=1, count_include_pad=True)
    if pooled.shape[-2:] != (grid, grid):
        pooled = F.adaptive_avg_pool2d(pooled, grid)
    v = valid.float().reshape(1, 1, *valid.shape[-2:])
    occupied = F.adaptive_avg_pool2d(v, grid)[0, 0] > 0
    return pooled[0] * occupied.to(pooled.dtype)


def pixel_angle(xyz: np.ndarray, valid: np.ndarray) -> float:
    """core.data.preprocess.pixel_angle."""
    ratios = []
    for a, b in (((slice(None), slice(0, -1)), (slice(None), slice(1, None))),
                 ((slice(0, -1), slice(None)), (slice(1, None), slice(None)))):
        both = valid[a] & valid[b]
        if both.any():
            pa, pb = xyz[a][both].astype(np.float64), xyz[b][both].astype(np.float64)
            rng = 0.5 * (np.linalg.norm(pa, axis=1) + np.linalg.norm(pb, axis=1))
            ratios.append(np.linalg.norm(pa - pb, axis=1) / np.maximum(rng, 1e-12))
    if not ratios:
        return 0.0
    return float(np.median(np.concatenate(ratios)))


def flying_in_box(xyz: np.ndarray, valid: np.ndarray, ratio: float, min_neighbours: int) -> np.ndarray:
    """core.data.preprocess._flying_in_box."""
    out = np.zeros_like(valid)
    angle = pixel_angle(xyz, valid)
    if angle <= 0:
        return out
    h, w = valid.shape
    p = xyz.astype(np.float32)
    limit = np.float32(ratio * angle) * np.linalg.norm(p, axis=-1)
    close = np.zeros((h, w), dtype=np.int16)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            src = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
            nb = (slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx)))
            d = np.linalg.norm(p[src] - p[nb], axis=-1)
            lim = limit[src] * (np.float32(math.sqrt(2)) if dy and dx else np.float32(1))
            close[src] += (valid[src] & valid[nb] & (d < lim)).astype(np.int16)
    return valid & (close < min_neighbours)


def largest_cluster(xyz: np.ndarray, keep: np.ndarray, eps_m: float, link_px: int = 2) -> np.ndarray:
    """core.data.preprocess.largest_cluster."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if not keep.any():
        return keep.copy()
    rows_any = np.flatnonzero(keep.any(axis=1))
    cols_any = np.flatnonzero(keep.any(axis=0))
    y0, y1, x0, x1 = rows_any[0], rows_any[-1] + 1, cols_any[0], cols_any[-1] + 1
    k = keep[y0:y1, x0:x1]
    h, w = k.shape
    node = np.full((h, w), -1, dtype=np.int64)
    n_nodes = int(k.sum())
    node[k] = np.arange(n_nodes)
    planes = [np.ascontiguousarray(xyz[y0:y1, x0:x1, c], dtype=np.float32) for c in range(3)]
    eps2 = np.float32(eps_m * eps_m)
    src, dst = [], []
    r = max(1, int(link_px))
    for dy in range(0, r + 1):
        for dx in range(-r, r + 1):
            if (dy == 0 and dx <= 0) or dy >= h or abs(dx) >= w:
                continue
            a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
            b = (slice(dy, h), slice(max(0, dx), w + min(0, dx)))
            both = k[a] & k[b]
            d2 = np.zeros(both.shape, dtype=np.float32)
            for p in planes:
                diff = p[a] - p[b]
                d2 += diff * diff
            linked = both & (d2 < eps2)
            src.append(node[a][linked])
            dst.append(node[b][linked])
    src_all = np.concatenate(src) if src else np.zeros(0, np.int64)
    dst_all = np.concatenate(dst) if dst else np.zeros(0, np.int64)
    graph = csr_matrix((np.ones(len(src_all), dtype=np.float64), (src_all, dst_all)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    best = int(np.argmax(np.bincount(labels)))
    out = np.zeros_like(keep)
    out[y0:y1, x0:x1][k] = labels == best
    return out


def point_spacing(xyz: np.ndarray, max_rows: int = 400) -> float:
    """core.data.units.point_spacing."""
    h = xyz.shape[0]
    rows = np.arange(h - 1) if h - 1 <= max_rows else np.linspace(0, h - 2, max_rows).astype(int)
    a = xyz[rows]
    below = xyz[rows + 1] if h > 1 else a[:0]
    valid_a = np.any(a != 0, axis=-1)
    d = [np.linalg.norm((a[:, 1:] - a[:, :-1]).astype(np.float64), axis=-1)[valid_a[:, 1:] & valid_a[:, :-1]]]
    if len(below):
        valid_b = np.any(below != 0, axis=-1)
        d.append(np.linalg.norm((below - a).astype(np.float64), axis=-1)[valid_a & valid_b])
    d = np.concatenate(d)
    d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0


def median_spacing(xyz: np.ndarray, valid: np.ndarray) -> float:
    """core.features.fpfh.median_spacing."""
    d = []
    for a, b, va, vb in (
        (xyz[:, 1:], xyz[:, :-1], valid[:, 1:], valid[:, :-1]),
        (xyz[1:], xyz[:-1], valid[1:], valid[:-1]),
    ):
        both = va & vb
        if both.any():
            d.append(np.linalg.norm((a[both] - b[both]).astype(np.float64), axis=-1))
    if not d:
        return 0.0
    d = np.concatenate(d)
    d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0


# ---------------------------------------------------------------- FPFH (torch, before numba)
# core.features.fpfh at commit 23b0860, replaced by the compiled per-point loops of
# core.features.fpfh_kernels: the vectorized torch version (pair angles over (K, N) tensors,
# bincount histograms, sparse-matrix SPFH weighting). Unchanged helpers come from the module
# (median_spacing: the copy above).
import scipy.sparse  # noqa: E402
import torch  # noqa: E402

from core.errors import DataError  # noqa: E402
from core.features.fpfh import BINS, DIM, FPFHConfig, disc_offsets, valid_mask  # noqa: E402

_CHUNK_PAIRS = 1 << 18
_BINCOUNT_BUFFER = 1 << 23


class _Grid:
    """Valid points of one organized cloud with pixel-offset neighbour lookup."""

    def __init__(self, valid: np.ndarray, pad: int):
        h, w = valid.shape
        self.pad, self.wp = pad, w + 2 * pad
        ys, xs = np.nonzero(valid)
        self.n = len(ys)
        self.flat = torch.from_numpy(ys * w + xs)  # pixel index in the H×W image
        index = np.full((h + 2 * pad, self.wp), self.n, dtype=np.int64)  # n = no point
        index[ys + pad, xs + pad] = np.arange(self.n)
        self.index = torch.from_numpy(index).view(-1)
        self.padded = torch.from_numpy((ys + pad) * self.wp + (xs + pad))

    def neighbours(self, offsets: np.ndarray) -> torch.Tensor:
        """(K, N) index of the point at each offset, or N where there is none."""
        shift = torch.from_numpy(offsets[:, 0] * self.wp + offsets[:, 1])
        where = (self.padded[None, :] + shift[:, None]).view(-1)
        return self.index.index_select(0, where).view(len(offsets), self.n)


def _smallest_eigenvector(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit eigenvector (N, 3) of the smallest eigenvalue of symmetric 3×3 matrices given as
    (N, 6) = xx, xy, xz, yy, yz, zz (float64), and an (N,) bool 'well defined' flag."""
    scale = cov.abs().amax(-1).clamp_min(1e-300)
    a00, a01, a02, a11, a12, a22 = (cov / scale[:, None]).unbind(-1)
    q = (a00 + a11 + a22) / 3
    b00, b11, b22 = a00 - q, a11 - q, a22 - q
    p = ((b00**2 + b11**2 + b22**2 + 2 * (a01**2 + a02**2 + a12**2)) / 6).sqrt()
    det = (b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02)
           + a02 * (a01 * a12 - b11 * a02))
    r = (det / (2 * p.clamp_min(1e-30) ** 3)).clamp(-1, 1)
    lam = q + 2 * p * torch.cos(torch.acos(r) / 3 + 2 * math.pi / 3)
    rows = torch.stack(
        [
            torch.stack([a00 - lam, a01, a02], -1),
            torch.stack([a01, a11 - lam, a12], -1),
            torch.stack([a02, a12, a22 - lam], -1),
        ],
        1,
    )  # (N, 3, 3)
    crosses = torch.stack(
        [
            torch.linalg.cross(rows[:, 0], rows[:, 1]),
            torch.linalg.cross(rows[:, 0], rows[:, 2]),
            torch.linalg.cross(rows[:, 1], rows[:, 2]),
        ],
        1,
    )  # (N, 3, 3): candidates ⟂ to two rows of (A - λI)
    norms = crosses.norm(dim=-1)
    best = norms.argmax(-1)
    vec = crosses[torch.arange(len(best)), best]
    length = norms.gather(1, best[:, None])[:, 0]
    ok = (p > 1e-12) & (length > 1e-12)
    return vec / length.clamp_min(1e-300)[:, None], ok


def pair_features(p1, n1, p2, n2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Open3D's ``ComputePairFeatures`` angles (theta, alpha, phi) and the squared distance for
    point pairs given component-first as (3, ...) tensors (unit normals). Zero-length pairs,
    and pairs whose offset is parallel to the source normal, get zero angles as in Open3D.

    Closed forms, with (n_s, n_t, d_s) the source normal, target normal and offset after
    Open3D's swap: |d × n_s|² = |d|² - (n_s·d_s)², phi = n_s·d_s / |d|,
    alpha = det(d, n1, n2) / |d × n_s| (the swap flips two signs), and
    theta = atan2((n_t·d_s - (n_s·d_s)(n1·n2)) / |d × n_s|, n1·n2).
    """
    dx, dy, dz = p2[0] - p1[0], p2[1] - p1[1], p2[2] - p1[2]
    e2 = dx * dx + dy * dy + dz * dz
    a1 = n1[0] * dx + n1[1] * dy + n1[2] * dz
    a2 = n2[0] * dx + n2[1] * dy + n2[2] * dz
    c = n1[0] * n2[0] + n1[1] * n2[1] + n1[2] * n2[2]
    t = (
        dx * (n1[1] * n2[2] - n1[2] * n2[1])
        + dy * (n1[2] * n2[0] - n1[0] * n2[2])
        + dz * (n1[0] * n2[1] - n1[1] * n2[0])
    )
    # Open3D swaps source and target when acos(|a1|) > acos(|a2|), i.e. |a1| < |a2|.
    # (torch.where is slow on CPU; float masks and lerp are not)
    swap = (a1.abs() < a2.abs()).to(a1.dtype)
    s1 = torch.lerp(a1, -a2, swap)  # source normal · offset
    s2 = torch.lerp(a2, -a1, swap)  # target normal · offset
    v2 = e2 - s1 * s1
    defined = (v2 > 0).to(a1.dtype)  # also false for zero-length pairs
    tiny = torch.finfo(a1.dtype).tiny ** 0.5
    inv_v = v2.clamp_(min=tiny).rsqrt_().mul_(defined)
    alpha = t.mul_(inv_v)
    theta = torch.atan2(s2.sub_(s1 * c).mul_(inv_v), c).mul_(defined)
    phi = s1.mul_(e2.clamp(min=tiny).rsqrt_()).mul_(defined)
    return theta, alpha, phi, e2


def bin_slots(theta, alpha, phi, out: torch.Tensor | None = None) -> torch.Tensor:
    """(3, ...) float histogram slots 0..32 (whole numbers) of the three angles, as Open3D:
    theta in 11 bins over [-pi, pi], alpha and phi in 11 bins over [-1, 1]."""
    slots = torch.empty((3, *theta.shape), dtype=theta.dtype) if out is None else out
    torch.add(theta, math.pi, out=slots[0]).mul_(BINS / (2 * math.pi))
    torch.add(alpha, 1.0, out=slots[1]).mul_(BINS / 2)
    torch.add(phi, 1.0, out=slots[2]).mul_(BINS / 2)
    slots.floor_().clamp_(0, BINS - 1)
    slots[1] += BINS
    slots[2] += 2 * BINS
    return slots


def fpfh_points(
    xyz: np.ndarray, config: FPFHConfig = FPFHConfig(), dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FPFH of every valid pixel of an H×W×3 organized cloud (metres, 0 = invalid).

    Returns ``(features (N, 33), pixel_index (N,) row-major into H×W, normals (N, 3))``.
    """
    xyz = np.asarray(xyz)
    valid = valid_mask(xyz)
    spacing = config.spacing_m if config.spacing_m is not None else median_spacing(xyz, valid)
    pad = int(math.floor(max(config.normal_radius_px, config.fpfh_radius_px)))
    grid = _Grid(valid, pad)
    n = grid.n
    if n == 0:
        empty = torch.zeros(0, dtype=dtype)
        return empty.reshape(0, DIM), grid.flat, empty.reshape(0, 3)
    raw = torch.from_numpy(xyz[valid].astype(np.float64))
    # component-first (3, N + 1) with a zero column for "no neighbour"; differences are taken
    # after centring, so float32 keeps sub-micrometre precision
    points = torch.zeros(3, n + 1, dtype=dtype)
    points[:, :n] = (raw - raw.mean(0)).T
    sensor = raw.T.to(dtype)  # original coordinates: the sensor sits at the origin

    nb = grid.neighbours(disc_offsets(config.normal_radius_px))
    max_n = (config.normal_radius_px * spacing * config.radius_scale) ** 2
    normals = torch.zeros(3, n + 1, dtype=dtype)
    normals[:, :n] = _normals(points, sensor, nb, max_n)

    offsets = disc_offsets(config.fpfh_radius_px)
    half = len(offsets) // 2
    nb = grid.neighbours(offsets[:half])  # (K/2, N); the other half are the reverse pairs
    max_f = (config.fpfh_radius_px * spacing * config.radius_scale) ** 2
    counts, weights = _pair_histograms(points, normals, nb, max_f)
    neighbours = counts[:, :BINS].sum(-1)  # pairs per point (each block counts every pair once)
    spfh = counts * (100.0 / neighbours.clamp_min(1))[:, None]

    # Weighted mean of the neighbours' SPFH over both directions of every pair: with U the
    # sparse (N, N+1) matrix of the half-offset pair weights, W = U + Uᵀ. A ones column
    # gives the weight totals.
    k = nb.shape[0]
    data = weights.T.contiguous().numpy().reshape(-1)
    columns = nb.to(torch.int32).T.contiguous().numpy().reshape(-1)
    starts = np.arange(0, n * k + 1, k, dtype=np.int32)
    upper = scipy.sparse.csr_matrix((data, columns, starts), shape=(n, n + 1))
    table = np.ones((n + 1, DIM + 1), dtype=spfh.numpy().dtype)
    table[:n, :DIM] = spfh.numpy()
    table[n] = 0
    summed = upper @ table + (upper.T @ table[:n])[:n]
    summed = torch.from_numpy(np.ascontiguousarray(summed))
    fpfh = spfh + summed[:, :DIM] / summed[:, DIM:].clamp(min=1e-30)
    fpfh *= (neighbours > 0).to(dtype)[:, None]
    return fpfh, grid.flat, normals[:, :n].T.contiguous()


def _pair_histograms(points, normals, nb, max_dist2) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point pair-angle counts (N, 33) over both directions of the half-offset pairs
    ``nb`` (K/2, N), and the pair weights 1/d² (K/2, N) (0 where there is no pair).

    Counts are taken with bincount over int32 indices row·34 + slot; slot 33 collects
    non-pairs and row N pairs whose neighbour is missing.
    """
    n = nb.shape[1]
    dtype = points.dtype
    row_len = DIM + 1
    if (n + 1) * row_len >= 2**31:
        raise DataError(None, f"point cloud too large for FPFH ({n} points)")
    counts = torch.zeros((n + 1) * row_len, dtype=torch.int64)
    weights = torch.empty(nb.shape, dtype=dtype)
    rows = (torch.arange(n, dtype=torch.int32) * row_len)[None]
    nb_rows = (nb * row_len).to(torch.int32)
    p1, n1 = points[:, None, :n], normals[:, None, :n]
    step = max(1, _CHUNK_PAIRS // n)
    size = min(6 * nb.numel(), max(_BINCOUNT_BUFFER, 6 * step * n))
    buffer = torch.empty(size, dtype=torch.int32)
    used = 0
    for k0 in range(0, nb.shape[0], step):
        j = nb[k0 : k0 + step]
        k = j.shape[0]
        flat_j = j.reshape(-1)
        p2 = points.index_select(1, flat_j).view(3, k, n)
        n2 = normals.index_select(1, flat_j).view(3, k, n)
        theta, alpha, phi, d2 = pair_features(p1, n1, p2, n2)
        pair = ((d2 <= max_dist2) & (j < n)).to(dtype)
        slots = bin_slots(theta, alpha, phi, out=p2)  # p2 is no longer needed
        slots = slots.sub_(DIM).mul_(pair).add_(DIM).to(torch.int32)  # non-pairs -> slot 33
        if used + 6 * k * n > len(buffer):
            counts += torch.bincount(buffer[:used], minlength=len(counts))
            used = 0
        idx = buffer[used : used + 6 * k * n].view(2, 3, k, n)
        torch.add(slots, rows, out=idx[0])
        torch.add(slots, nb_rows[k0 : k0 + k], out=idx[1])
        used += 6 * k * n
        weights[k0 : k0 + k] = pair.mul_((d2 > 0).to(dtype)).div_(d2.clamp_(min=1e-30))
    counts += torch.bincount(buffer[:used], minlength=len(counts))
    return counts.view(n + 1, row_len)[:n, :DIM].to(dtype), weights


def _normals(points: torch.Tensor, sensor: torch.Tensor, nb: torch.Tensor, max_dist2: float):
    """(3, N) unit normals from centred ``points`` (3, N+1) and neighbour table ``nb`` (K, N),
    oriented towards the origin using the original coordinates ``sensor`` (3, N)."""
    n = nb.shape[1]
    d = points.index_select(1, nb.view(-1)).view(3, *nb.shape) - points[:, None, :n]  # (3, K, N)
    m = ((d * d).sum(0) <= max_dist2) & (nb < n)
    d *= m.to(d.dtype)
    count = 1.0 + m.sum(0).to(torch.float64)  # the point itself (d = 0) is in its window
    sums = d.sum(1).to(torch.float64)  # (3, N)
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    second = torch.stack([(d[a] * d[b]).sum(0) for a, b in pairs], -1).to(torch.float64)
    mean = sums / count
    cov = second / count[:, None] - torch.stack([mean[a] * mean[b] for a, b in pairs], -1)
    vec, ok = _smallest_eigenvector(cov)
    vec = vec.T.to(points.dtype)  # (3, N)
    to_sensor = -sensor / sensor.norm(dim=0, keepdim=True).clamp_min(1e-12)
    vec = torch.where(ok & (count >= 3), vec, to_sensor)
    flip = (vec * sensor).sum(0) > 0
    return torch.where(flip, -vec, vec)


def fpfh_map(xyz: np.ndarray, config: FPFHConfig = FPFHConfig()) -> torch.Tensor:
    """(33, H, W) float32 per-pixel FPFH, zero at invalid pixels."""
    h, w = xyz.shape[:2]
    feats, flat, _ = fpfh_points(xyz, config)
    canvas = torch.zeros(DIM, h * w, dtype=torch.float32)
    canvas[:, flat] = feats.T.to(torch.float32)
    return canvas.view(DIM, h, w)
