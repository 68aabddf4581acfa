"""3D-view helpers (Qt-free): per-point colours and the triangle mesh of an organized cloud.

The 2D overlay (heatmap, outlines, depth image) is drawn by :mod:`core.render`, the one
renderer shared with the CLI; point colours use its LUT indexing, so 2D and 3D agree.
"""

from __future__ import annotations

import numpy as np

from core.render import lut_indices

BELOW_THRESHOLD_RGB = (150, 150, 150)  # grey: 3D points under the pixel threshold


def point_colors(
    scores: np.ndarray, rng: tuple[float, float], lut: np.ndarray, pixel_threshold: float | None
) -> np.ndarray:
    """N×3 uint8 colours for per-point scores; points under the threshold are grey."""
    colors = lut[lut_indices(scores, rng, len(lut))]
    if pixel_threshold is not None:
        colors[np.asarray(scores) < pixel_threshold] = BELOW_THRESHOLD_RGB
    return colors


def grid_triangles(xyz: np.ndarray, valid: np.ndarray, jump_factor: float = 4.0) -> np.ndarray:
    """(M, 3) int64 triangles over an organized cloud, indexing its valid points in row-major order.

    Each 2×2 block of valid pixels gives two triangles, unless the block spans a depth jump
    (any edge longer than ``jump_factor`` × the median neighbour spacing): occlusion edges stay open.
    """
    valid = np.asarray(valid, bool)
    h, w = valid.shape
    if h < 2 or w < 2 or valid.sum() < 3:
        return np.zeros((0, 3), np.int64)
    idx = np.full((h, w), -1, np.int64)
    idx[valid] = np.arange(int(valid.sum()))
    pts = np.asarray(xyz, np.float32)
    both = valid[:, :-1] & valid[:, 1:]
    if not both.any():
        return np.zeros((0, 3), np.int64)
    spacing = float(np.median(np.linalg.norm(pts[:, 1:][both] - pts[:, :-1][both], axis=-1)))
    limit = jump_factor * max(spacing, 1e-9)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    pa, pb, pc, pd = pts[:-1, :-1], pts[:-1, 1:], pts[1:, :-1], pts[1:, 1:]

    def short(p, q):
        return np.linalg.norm(p - q, axis=-1) <= limit

    ab, ac, bc, bd, cd = short(pa, pb), short(pa, pc), short(pb, pc), short(pb, pd), short(pc, pd)
    t1 = (a >= 0) & (b >= 0) & (c >= 0) & ab & ac & bc
    t2 = (b >= 0) & (d >= 0) & (c >= 0) & bd & cd & bc
    return np.concatenate([np.stack([a[t1], b[t1], c[t1]], 1), np.stack([b[t2], d[t2], c[t2]], 1)])
