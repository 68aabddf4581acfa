"""Verbatim copies of implementations that were rewritten for speed (issue 11), kept only as
references for tests/test_fast_paths.py: the rewrites must give the same results (bit for bit
for masks, float tolerance for features). Taken from commit b815d02."""

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
