"""Defect regions as objects: the connected regions (8-connectivity) of an anomaly map at or
above the pixel threshold, with their area, bounding box and peak score.

Areas are in pixels of the map (the model grid the result is scored on, ``image_size`` px
square) and, when the sample has an organized cloud (metres), in mm² of part surface: the sum of
the surface area of the region's pixels that hold a 3D point (:func:`pixel_areas_m2`).
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
    """One connected defect region of a map (pixel units of that map)."""

    area_px: int  # pixels at or above the pixel threshold
    bbox: tuple[int, int, int, int]  # (top, left, bottom, right) rows/columns, bottom/right exclusive
    peak_score: float  # highest raw map value inside the region
    peak_yx: tuple[int, int]  # (row, column) of that value
    area_mm2: float | None = None  # surface area of its pixels with a 3D point (mm²); None without xyz

    def to_dict(self) -> dict:
        return {"area_px": self.area_px, "area_mm2": self.area_mm2, "bbox": list(self.bbox),
                "peak_score": self.peak_score, "peak_yx": list(self.peak_yx)}


def pixel_areas_m2(xyz: np.ndarray, step: int = 2) -> np.ndarray:
    """H×W float64 surface area (m²) each pixel of an organized cloud (metres, 0 = no point)
    stands for: ``|∂P/∂col × ∂P/∂row|``, the derivatives taken as central differences over
    ±``step`` pixels (one-sided where a neighbour has no point), so clouds resized by nearest
    neighbour (repeated points) still get their area. 0 where no derivative can be taken."""
    xyz = np.asarray(xyz, np.float64)
    valid = valid_points(xyz)
    d_col = _derivative(xyz, valid, step, axis=1)
    d_row = _derivative(xyz, valid, step, axis=0)
    area = np.linalg.norm(np.cross(d_col, d_row), axis=-1)
    area[~valid] = 0.0
    return area


def _derivative(xyz: np.ndarray, valid: np.ndarray, step: int, axis: int) -> np.ndarray:
    """Per-pixel dP/d(pixel) along ``axis``: central over ±step where both ends are valid,
    else forward or backward over ``step``, else 0."""
    fwd, fwd_ok = _shifted(xyz, valid, step, axis)
    bwd, bwd_ok = _shifted(xyz, valid, -step, axis)
    out = np.zeros_like(xyz)
    both = fwd_ok & bwd_ok & valid
    out[both] = (fwd[both] - bwd[both]) / (2 * step)
    only_f = fwd_ok & valid & ~both
    out[only_f] = (fwd[only_f] - xyz[only_f]) / step
    only_b = bwd_ok & valid & ~both & ~only_f
    out[only_b] = (xyz[only_b] - bwd[only_b]) / step
    return out


def _shifted(xyz: np.ndarray, valid: np.ndarray, offset: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(the cloud read ``offset`` pixels further along ``axis``, whether that point exists)."""
    n = xyz.shape[axis]
    shifted = np.zeros_like(xyz)
    ok = np.zeros_like(valid)
    if abs(offset) < n:
        src = [slice(None)] * 2
        dst = [slice(None)] * 2
        src[axis] = slice(offset, None) if offset > 0 else slice(0, n + offset)
        dst[axis] = slice(0, n - offset) if offset > 0 else slice(-offset, None)
        shifted[tuple(dst)] = xyz[tuple(src)]
        ok[tuple(dst)] = valid[tuple(src)]
    return shifted, ok


def find_regions(amap: np.ndarray, pixel_threshold: float | None, xyz: np.ndarray | None = None) -> list[Region]:
    """The 8-connected regions of ``amap >= pixel_threshold``, largest area first (ties: higher
    peak first). ``xyz``: the organized cloud on the same grid (metres) for areas in mm².
    No threshold: no regions."""
    if pixel_threshold is None:
        return []
    amap = np.asarray(amap, np.float32)
    labels, n = ndimage.label(amap >= pixel_threshold, structure=EIGHT_CONNECTED)
    if n == 0:
        return []
    flat = labels.ravel()
    areas = np.bincount(flat, minlength=n + 1)
    mm2 = None
    if xyz is not None and np.shape(xyz)[:2] == amap.shape:
        mm2 = np.bincount(flat, weights=pixel_areas_m2(xyz).ravel(), minlength=n + 1) * _M2_TO_MM2
    peaks = ndimage.maximum_position(amap, labels, index=np.arange(1, n + 1))
    boxes = ndimage.find_objects(labels)
    regions = []
    for k in range(1, n + 1):
        rows, cols = boxes[k - 1]
        py, px = (int(v) for v in peaks[k - 1])
        regions.append(Region(
            area_px=int(areas[k]),
            bbox=(rows.start, cols.start, rows.stop, cols.stop),
            peak_score=float(amap[py, px]),
            peak_yx=(py, px),
            area_mm2=None if mm2 is None else float(mm2[k]),
        ))
    regions.sort(key=lambda r: (-r.area_px, -r.peak_score))
    return regions


def largest_area_px(amap: np.ndarray, pixel_threshold: float | None) -> int:
    """Pixel area of the largest 8-connected region at or above the threshold (0 if none)."""
    if pixel_threshold is None:
        return 0
    labels, n = ndimage.label(np.asarray(amap) >= pixel_threshold, structure=EIGHT_CONNECTED)
    return int(np.bincount(labels.ravel())[1:].max()) if n else 0
