"""Defect regions as objects: the connected regions (8-connectivity) of an anomaly map at or
above the pixel threshold, with their area, bounding box and peak score.

Maps are scored on the model grid (``image_size`` px square). Given the sample's
:class:`core.grid_map.GridMap`, regions are found on the map carried back to the original image
(bilinear), so areas and bounding boxes are in original pixels; without it, in pixels of the map.
When the sample has an organized cloud (metres), areas are also given in mm² of part surface: the
sum of the surface area of the region's pixels that hold a 3D point (:func:`pixel_areas_m2`, on
the model grid; an original pixel stands for its nearest model pixel's area × (size / side)²).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.data.sample import valid_points

__all__ = ["Region", "find_regions", "largest_area_px", "pixel_areas_m2", "EIGHT_CONNECTED"]

EIGHT_CONNECTED = np.ones((3, 3), bool)
_M2_TO_MM2 = 1e6


@dataclass(frozen=True)
class Region:
    """One connected defect region (original pixels when found with a GridMap, else pixels of the map)."""

    area_px: int  # pixels at or above the pixel threshold
    bbox: tuple[int, int, int, int]  # (top, left, bottom, right) rows/columns, bottom/right exclusive
    peak_score: float  # highest raw map value inside the region
    peak_yx: tuple[int, int]  # (row, column) of that value
    area_mm2: float | None = None  # surface area of its pixels with a 3D point (mm²); None without xyz

    def to_dict(self) -> dict:
        return {"area_px": self.area_px, "area_mm2": self.area_mm2, "bbox": list(self.bbox),
                "peak_score": self.peak_score, "peak_yx": list(self.peak_yx)}


def pixel_areas_m2(xyz: np.ndarray, step: int = 2) -> np.ndarray:
    """H×W float32 surface area (m²) each pixel of an organized cloud (metres, 0 = no point)
    stands for: ``|∂P/∂col × ∂P/∂row|``, the derivatives taken as central differences over
    ±``step`` pixels (one-sided where a neighbour has no point), so clouds resized by nearest
    neighbour (repeated points) still get their area. 0 where no derivative can be taken."""
    xyz = np.asarray(xyz, np.float32)
    valid = valid_points(xyz)
    d_col = _derivative(xyz, valid, step, axis=1)
    d_row = _derivative(xyz, valid, step, axis=0)
    cx = d_col[..., 1] * d_row[..., 2] - d_col[..., 2] * d_row[..., 1]
    cy = d_col[..., 2] * d_row[..., 0] - d_col[..., 0] * d_row[..., 2]
    cz = d_col[..., 0] * d_row[..., 1] - d_col[..., 1] * d_row[..., 0]
    area = np.sqrt(cx * cx + cy * cy + cz * cz)
    area[~valid] = 0.0
    return area


def _derivative(xyz: np.ndarray, valid: np.ndarray, step: int, axis: int) -> np.ndarray:
    """Per-pixel dP/d(pixel) along ``axis``: central over ±step where both ends are valid,
    else forward or backward over ``step``, else 0."""
    n = xyz.shape[axis]
    out = np.zeros_like(xyz)
    if n <= step:
        return out

    def cut(a, lo, hi):  # a[lo:hi] along axis
        return a[:, lo:hi] if axis == 1 else a[lo:hi]

    diff = (cut(xyz, step, n) - cut(xyz, 0, n - step)) / np.float32(step)  # pixel i -> i + step
    ok = cut(valid, step, n) & cut(valid, 0, n - step)
    fwd, fwd_ok = np.zeros_like(xyz), np.zeros_like(valid)  # forward difference of each pixel
    cut(fwd, 0, n - step)[...] = diff
    cut(fwd_ok, 0, n - step)[...] = ok
    bwd, bwd_ok = np.zeros_like(xyz), np.zeros_like(valid)  # backward difference of each pixel
    cut(bwd, step, n)[...] = diff
    cut(bwd_ok, step, n)[...] = ok
    both = (fwd_ok & bwd_ok)[..., None]
    out = np.where(both, (fwd + bwd) * np.float32(0.5), np.where(fwd_ok[..., None], fwd, bwd))
    return out


def find_regions(amap: np.ndarray, pixel_threshold: float | None, xyz: np.ndarray | None = None,
                 grid=None) -> list[Region]:
    """The 8-connected regions of ``amap >= pixel_threshold``, largest area first (ties: higher
    peak first). ``xyz``: the organized cloud on the same grid (metres) for areas in mm².
    ``grid``: a :class:`core.grid_map.GridMap` of ``amap`` (the model grid): the regions of the
    map carried back to the original image, in original pixels. No threshold: no regions."""
    if pixel_threshold is None:
        return []
    if grid is not None and not grid.is_identity:
        return _regions_on_original(np.asarray(amap, np.float32), float(pixel_threshold), xyz, grid)
    amap = np.asarray(amap, np.float32)
    labels, n = ndimage.label(amap >= pixel_threshold, structure=EIGHT_CONNECTED)
    if n == 0:
        return []
    flat = labels.ravel()
    areas = np.bincount(flat, minlength=n + 1)
    boxes = ndimage.find_objects(labels)
    mm2 = None
    if xyz is not None and np.shape(xyz)[:2] == amap.shape:
        mm2 = _region_areas_mm2(labels, n, boxes, np.asarray(xyz))
    regions = []
    for k in range(1, n + 1):
        rows, cols = boxes[k - 1]
        inside = np.where(labels[rows, cols] == k, amap[rows, cols], -np.inf)
        py, px = np.unravel_index(int(np.argmax(inside)), inside.shape)
        py, px = int(py) + rows.start, int(px) + cols.start
        regions.append(Region(
            area_px=int(areas[k]),
            bbox=(rows.start, cols.start, rows.stop, cols.stop),
            peak_score=float(amap[py, px]),
            peak_yx=(py, px),
            area_mm2=None if mm2 is None else float(mm2[k]),
        ))
    regions.sort(key=lambda r: (-r.area_px, -r.peak_score))
    return regions


def _region_areas_mm2(labels: np.ndarray, n: int, boxes, xyz: np.ndarray, step: int = 2) -> np.ndarray:
    """(n+1,) surface area (mm²) per label, from :func:`pixel_areas_m2` on the crop around all
    regions (padded by ``step``, so every region pixel sees the same neighbours as on the full grid)."""
    top = max(0, min(b[0].start for b in boxes) - step)
    left = max(0, min(b[1].start for b in boxes) - step)
    bottom = min(labels.shape[0], max(b[0].stop for b in boxes) + step)
    right = min(labels.shape[1], max(b[1].stop for b in boxes) + step)
    areas = pixel_areas_m2(xyz[top:bottom, left:right], step)
    return np.bincount(labels[top:bottom, left:right].ravel(), weights=areas.ravel(), minlength=n + 1) * _M2_TO_MM2


def _regions_on_original(amap: np.ndarray, thr: float, xyz: np.ndarray | None, grid) -> list[Region]:
    """:func:`find_regions` of the model-grid ``amap`` bilinearly carried back to the original
    image. Only the window that can hold such pixels is resampled: a bilinear value >= thr needs
    a model neighbour >= thr, so its nearest model pixel lies in the 8-dilation of the hot mask."""
    hot = amap >= thr
    if not hot.any():
        return []
    near = ndimage.binary_dilation(hot, structure=EIGHT_CONNECTED)
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    r0, c0, r1, c1 = grid.window_of_model_box((rows[0], cols[0], rows[-1] + 1, cols[-1] + 1))
    if r1 <= r0 or c1 <= c0:
        return []  # the hot pixels lie in the padding only
    sub = grid.scores_to_original(amap, (r0, c0, r1, c1))
    labels, n = ndimage.label(sub >= thr, structure=EIGHT_CONNECTED)
    if n == 0:
        return []
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    mm2 = None
    if xyz is not None and np.shape(xyz)[:2] == amap.shape:
        step = 2
        m0, m1 = max(0, rows[0] - step - 1), min(amap.shape[0], rows[-1] + step + 2)
        n0, n1 = max(0, cols[0] - step - 1), min(amap.shape[1], cols[-1] + step + 2)
        model_m2 = pixel_areas_m2(np.asarray(xyz)[m0:m1, n0:n1], step)
        ri = np.clip(grid.nearest_model_index(r0, r1, 0) - m0, 0, m1 - m0 - 1)
        ci = np.clip(grid.nearest_model_index(c0, c1, 1) - n0, 0, n1 - n0 - 1)
        per_px = model_m2[ri[:, None], ci[None, :]] / grid.original_px_per_model_px ** 2
        mm2 = np.bincount(labels.ravel(), weights=per_px.ravel(), minlength=n + 1) * _M2_TO_MM2
    regions = []
    for k, (rs, cs) in enumerate(ndimage.find_objects(labels), 1):
        inside = np.where(labels[rs, cs] == k, sub[rs, cs], -np.inf)
        py, px = np.unravel_index(int(np.argmax(inside)), inside.shape)
        py, px = int(py) + rs.start, int(px) + cs.start
        regions.append(Region(
            area_px=int(areas[k]),
            bbox=(rs.start + r0, cs.start + c0, rs.stop + r0, cs.stop + c0),
            peak_score=float(sub[py, px]),
            peak_yx=(py + r0, px + c0),
            area_mm2=None if mm2 is None else float(mm2[k]),
        ))
    regions.sort(key=lambda r: (-r.area_px, -r.peak_score))
    return regions


def largest_area_px(amap: np.ndarray, pixel_threshold: float | None, grid=None) -> int:
    """Pixel area of the largest 8-connected region at or above the threshold (0 if none);
    with a ``grid`` (:class:`core.grid_map.GridMap`), in original pixels."""
    if pixel_threshold is None:
        return 0
    if grid is not None and not grid.is_identity:
        regions = find_regions(amap, pixel_threshold, grid=grid)
        return regions[0].area_px if regions else 0
    labels, n = ndimage.label(np.asarray(amap) >= pixel_threshold, structure=EIGHT_CONNECTED)
    return int(np.bincount(labels.ravel())[1:].max()) if n else 0
