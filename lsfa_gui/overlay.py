"""Numpy rendering shared by the 2D view, the 3D view and PNG export (Qt-free).

All functions take raw anomaly maps (raw score units) plus a colour range (low, high) and a
256×3 uint8 lookup table, so the screen and the exported PNGs use the very same colours.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.data.sample import valid_points

PREDICTION_RGB = (0, 229, 255)  # cyan: predicted defect outline
GROUND_TRUTH_RGB = (60, 220, 60)  # green: ground-truth outline
BELOW_THRESHOLD_RGB = (150, 150, 150)  # grey: 3D points under the pixel threshold


def lut_indices(amap: np.ndarray, rng: tuple[float, float], n: int = 256) -> np.ndarray:
    """Map raw scores to LUT indices 0..n-1 (clipped to the range), uint8/uint16."""
    lo, hi = rng
    scale = (n - 1) / (hi - lo) if hi > lo else 0.0
    idx = (np.asarray(amap, np.float32) - np.float32(lo)) * np.float32(scale)
    np.clip(idx, 0, n - 1, out=idx)
    return idx.astype(np.uint8 if n <= 256 else np.uint16)


def colorize(
    amap: np.ndarray,
    rng: tuple[float, float],
    lut: np.ndarray,
    below: float | None = None,
    fade: bool = False,
) -> np.ndarray:
    """H×W×4 uint8 RGBA heatmap; pixels with score < ``below`` are fully transparent.

    ``fade``: alpha grows with the score's position in the range (low end transparent), so
    normal areas keep showing the image and high scores stand out.
    """
    idx = lut_indices(amap, rng, len(lut))
    rgba = np.empty(amap.shape + (4,), np.uint8)
    rgba[..., :3] = lut[idx]
    if fade:
        rgba[..., 3] = (idx.astype(np.uint16) * 255 // (len(lut) - 1)).astype(np.uint8)
    else:
        rgba[..., 3] = 255
    if below is not None:
        rgba[..., 3][np.asarray(amap) < below] = 0
    return rgba


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean edge pixels of a mask (the mask minus its erosion), ``width`` pixels thick."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros_like(mask)
    inner = ndimage.binary_erosion(mask, iterations=width, border_value=0)
    return mask & ~inner


def predicted_mask(amap: np.ndarray, pixel_threshold: float | None) -> np.ndarray:
    """Pixels at or above the pixel threshold (all False if no threshold)."""
    if pixel_threshold is None:
        return np.zeros(np.shape(amap), bool)
    return np.asarray(amap) >= pixel_threshold


def outline_rgba(edge: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """H×W×4 uint8 image: ``rgb`` on edge pixels, transparent elsewhere."""
    out = np.zeros(edge.shape + (4,), np.uint8)
    out[edge] = (*rgb, 255)
    return out


def point_colors(
    scores: np.ndarray, rng: tuple[float, float], lut: np.ndarray, pixel_threshold: float | None
) -> np.ndarray:
    """N×3 uint8 colours for per-point scores; points under the threshold are grey."""
    colors = lut[lut_indices(scores, rng, len(lut))]
    if pixel_threshold is not None:
        colors[np.asarray(scores) < pixel_threshold] = BELOW_THRESHOLD_RGB
    return colors


def depth_image(xyz: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """H×W×3 uint8 grey rendering of z (near = bright) for samples without RGB."""
    z = np.asarray(xyz, np.float32)[..., 2]
    valid = valid_points(xyz) if valid is None else valid
    out = np.zeros(z.shape, np.uint8)
    if valid.any():
        zv = z[valid]
        lo, hi = float(zv.min()), float(zv.max())
        scale = 205.0 / (hi - lo) if hi > lo else 0.0
        out[valid] = (255 - (zv - lo) * scale).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=-1)


def compose_overlay(
    base_rgb: np.ndarray,
    amap: np.ndarray,
    rng: tuple[float, float],
    lut: np.ndarray,
    opacity: float,
    pixel_threshold: float | None = None,
    gt_mask: np.ndarray | None = None,
    hide_below_threshold: bool = False,
    fade: bool = False,
) -> np.ndarray:
    """H×W×3 uint8: base image + heatmap (alpha ``opacity``) + predicted and GT outlines."""
    base = np.asarray(base_rgb, np.float32)
    heat = colorize(amap, rng, lut, pixel_threshold if hide_below_threshold else None, fade)
    alpha = (heat[..., 3:4].astype(np.float32) / 255.0) * float(opacity)
    out = base * (1.0 - alpha) + heat[..., :3].astype(np.float32) * alpha
    out = out.astype(np.uint8)
    if pixel_threshold is not None:
        out[outline(predicted_mask(amap, pixel_threshold), 1)] = PREDICTION_RGB
    if gt_mask is not None:
        out[outline(gt_mask, 1)] = GROUND_TRUTH_RGB
    return out


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
