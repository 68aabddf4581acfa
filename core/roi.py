"""Region of interest (ROI) of a model: which pixels of the part are inspected.

A ROI is an H×W bool array in ORIGINAL image pixels (the size of the dataset's images), True =
inspect, False = ignore; on disk a PNG of that size whose non-zero pixels are inspected. It
reaches the model grid exactly as a ground-truth mask does: it rides on the sample
(``Sample.roi``) through square padding and nearest resizing (:func:`core.prepare.prepare_sample`);
padding is ignored. On the grid, ignored pixels score 0 in the anomaly map, and image scores,
defect regions and verdicts are computed from the masked map (:meth:`core.model.Model.fuse`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import UserError

__all__ = ["read_roi", "check_roi", "attach_roi", "roi_stack", "apply_roi", "inspected_share", "roi_cells",
           "write_roi_png", "roi_from_polygon", "original_shape"]


def check_roi(roi, where: str) -> np.ndarray:
    """``roi`` as a 2-D bool array (non-zero = inspect); UserError naming ``where`` unless it is
    a 2-D numeric array with at least one inspected pixel."""
    arr = np.asarray(roi)
    if arr.ndim != 2 or arr.size == 0 or not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)):
        raise UserError(f"{where}: a region of interest must be a 2-D mask, got array {arr.shape} {arr.dtype}")
    out = arr != 0
    if not out.any():
        raise UserError(f"{where}: the region of interest ignores every pixel (no non-zero pixel to inspect)")
    return out


def read_roi(path: str | Path) -> np.ndarray:
    """H×W bool ROI from a PNG (any non-zero pixel is inspected); UserError naming the file."""
    from core.data.imageio import read_mask

    path = Path(path)
    return check_roi(read_mask(path), str(path))


def write_roi_png(path: str | Path, roi: np.ndarray) -> None:
    """Write a ROI as an 8-bit PNG (255 = inspect, 0 = ignore), atomically."""
    import io

    from PIL import Image

    from core.outputs import write_output

    buf = io.BytesIO()
    Image.fromarray(np.asarray(roi, bool).astype(np.uint8) * 255, "L").save(buf, format="PNG")
    write_output(path, buf.getvalue(), "ROI file")


def roi_from_polygon(points, height: int, width: int) -> np.ndarray:
    """H×W bool ROI of the pixels whose centre lies inside a polygon of (x, y) vertices in
    original image pixels (x = column, y = row; pixel (r, c) has its centre at (c + 0.5, r + 0.5))."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 3:
        raise UserError(f"a region of interest polygon needs at least 3 corners, got {len(pts)}")
    cx = np.arange(width, dtype=np.float64) + 0.5
    inside = np.zeros((height, width), bool)
    for r in range(height):  # even-odd rule along each row of pixel centres
        y = r + 0.5
        x0, y0 = pts[:, 0], pts[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        crosses = (y0 <= y) != (y1 <= y)
        if not crosses.any():
            continue
        xs = x0[crosses] + (y - y0[crosses]) * (x1[crosses] - x0[crosses]) / (y1[crosses] - y0[crosses])
        inside[r] = (np.sum(cx[:, None] > xs[None, :], axis=1) % 2) == 1
    return inside


def attach_roi(sample, roi: np.ndarray | None, source: str = "region of interest"):
    """The sample with ``roi`` (original pixels) riding on it to the model grid; UserError naming
    the sample's file and the ROI's ``source`` when their sizes differ. ``roi`` None: unchanged."""
    if roi is None:
        return sample
    h, w = sample.shape
    if roi.shape != (h, w):
        raise UserError(
            f"{sample.source()}: the image is {w}×{h} px but the region of interest ({source}) is "
            f"{roi.shape[1]}×{roi.shape[0]} px; a ROI must be the size of the dataset's images"
        )
    return sample.with_arrays(roi=roi)


def roi_stack(samples) -> np.ndarray | None:
    """(B, S, S) bool ROIs of prepared samples on the model grid, or None when none has one
    (a sample without one is inspected everywhere)."""
    if not any(getattr(s, "roi", None) is not None for s in samples):
        return None
    return np.stack([s.roi if s.roi is not None else np.ones(s.shape, bool) for s in samples])


def apply_roi(maps: np.ndarray, roi: np.ndarray | None) -> np.ndarray:
    """``maps`` ((B,)S,S) with ignored pixels set to 0 (a copy); unchanged without a ROI."""
    if roi is None:
        return maps
    return np.where(roi, maps, np.float32(0)).astype(maps.dtype, copy=False)


def roi_cells(roi: np.ndarray, grid: int) -> np.ndarray:
    """(grid*grid,) bool: the patch cells of an S×S grid ROI that hold at least one inspected pixel."""
    s = roi.shape[0]
    cell = s // grid
    return roi[: cell * grid, : cell * grid].reshape(grid, cell, grid, cell).any(axis=(1, 3)).reshape(-1)


def inspected_share(roi: np.ndarray | None) -> float:
    """Share (0-1) of the image's pixels that are inspected (1.0 without a ROI)."""
    return 1.0 if roi is None else float(np.count_nonzero(roi)) / float(roi.size)


def original_shape(ref) -> tuple[int, int]:
    """(height, width) in pixels of a SampleRef's original image: from the RGB file's header, else
    by loading the sample (UserError naming the file when it cannot be read)."""
    from core.data.imageio import image_size

    if getattr(ref, "rgb_path", None) is not None:
        return image_size(ref.rgb_path)
    return ref.load().shape
