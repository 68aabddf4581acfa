"""Pooling helpers shared by the feature extractors: dense maps -> patch grid.

All maps are (B, C, H, W) float tensors. The 3×3 local average uses stride 1 and zero padding 1
(counting the padding), so a map keeps its size and stays aligned with the pixel grid; the
result is then adaptively average-pooled to grid×grid cells (cell i covers rows
floor(i·S/g) .. ceil((i+1)·S/g)).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_MIN_FRACTION = 0.1  # share of a cell's pixels that must be valid for it to count


def local_average(maps: torch.Tensor) -> torch.Tensor:
    """3×3 average (stride 1, zero padding 1 counted), same size as the input.

    The numbers of ``F.avg_pool2d(maps, 3, 1, 1, count_include_pad=True)`` bit for bit (its CPU
    kernel adds the window's taps row by row, then divides by 9), computed as nine shifted
    whole-map additions in that order: ~4× faster on a CPU (the kernel takes ~50 ms for a
    33×224×224 map on one core)."""
    h, w = maps.shape[-2:]
    padded = F.pad(maps, (1, 1, 1, 1))
    out = padded[..., 0:h, 0:w].clone()
    for dy in range(3):
        for dx in range(3):
            if dy or dx:
                out.add_(padded[..., dy : dy + h, dx : dx + w])
    return out.div_(9)


def to_grid(maps: torch.Tensor, grid: int) -> torch.Tensor:
    """Adaptive average pool to grid×grid (identity when already that size)."""
    if maps.shape[-2:] == (grid, grid):
        return maps
    return F.adaptive_avg_pool2d(maps, grid)


def valid_fraction(valid: np.ndarray | torch.Tensor, grid: int) -> torch.Tensor:
    """(grid, grid) float32 share of valid pixels per cell for one S×S bool mask."""
    if torch.is_tensor(valid):
        v = valid.to(torch.float32)
    else:
        v = torch.from_numpy(np.asarray(valid, dtype=np.float32))
    v = v.reshape(1, 1, *v.shape[-2:])
    return F.adaptive_avg_pool2d(v, grid)[0, 0]


def foreground_cells(
    valid: np.ndarray | torch.Tensor, grid: int, min_fraction: float = DEFAULT_MIN_FRACTION
) -> np.ndarray:
    """grid×grid bool: cells where at least ``min_fraction`` of the pixels are valid.

    ``valid`` is the S×S bool mask of measured points (``Sample.valid``). A cell with no valid
    pixel is never foreground, whatever ``min_fraction`` is.
    """
    frac = valid_fraction(valid, grid)
    return ((frac >= min_fraction) & (frac > 0)).numpy()


def pool_pixel_features(
    features: torch.Tensor, valid: torch.Tensor, grid: int
) -> torch.Tensor:
    """Per-pixel features (C, H, W) (zero where invalid) -> (C, grid, grid) patch features.

    3×3 local average, adaptive average to the grid, then cells holding no valid pixel are set
    to exactly 0 (the 3×3 window would otherwise leak border values into them).
    """
    pooled = to_grid(local_average(features[None]), grid)[0]
    occupied = valid_fraction(valid, grid).to(pooled.device) > 0
    return pooled * occupied.to(pooled.dtype)


def _cell_weights(size: int, grid: int) -> torch.Tensor:
    """(grid, size) float64: weight of pixel row y in cell row i of :func:`pool_pixel_features`
    along one axis, #{r in cell i : |r - y| ≤ 1} / (3 · cell length) (the 3-tap average of the
    local average, then the cell mean)."""
    starts = [(i * size) // grid for i in range(grid)]
    ends = [-(-((i + 1) * size) // grid) for i in range(grid)]
    cells = torch.zeros(grid, size, dtype=torch.float64)
    for i, (a, b) in enumerate(zip(starts, ends)):
        cells[i, a:b] = 1.0 / (b - a)
    return cells.matmul(_taps(size)) / 3


def _taps(size: int) -> torch.Tensor:
    """(size, size) 0/1 matrix of |r - y| ≤ 1 (the 3-tap window with zero padding)."""
    r = torch.arange(size)
    return ((r[:, None] - r[None, :]).abs() <= 1).to(torch.float64)


def pool_point_features(
    features: torch.Tensor, pixels: torch.Tensor, valid: torch.Tensor, grid: int
) -> torch.Tensor:
    """:func:`pool_pixel_features` of the sparse map holding ``features`` (N, C) at the
    row-major ``pixels`` (N,) of the H×W mask ``valid`` (zero elsewhere), without building the
    (C, H, W) map: each point adds its weight to the few cells its 3×3 window reaches (a
    compiled loop, :func:`core.features.fpfh_kernels.pool_points`). Equal to the dense route up
    to float rounding (sums in another order), and bit for bit to the torch scatter-adds it
    replaced (tests/test_fast_paths.py). Returns (C, grid, grid)."""
    from core.features import fpfh_kernels

    h, w = valid.shape[-2:]
    c = features.shape[1]
    out = np.zeros((grid * grid, c), dtype=torch.empty(0, dtype=features.dtype).numpy().dtype)
    if len(pixels):
        feats = features.detach().contiguous().numpy()
        flat = pixels.numpy().astype(np.int64)
        row_first, row_weights = _reach_table(h, grid)
        col_first, col_weights = _reach_table(w, grid)
        fpfh_kernels.pool_points(feats, flat // w, flat % w, row_first, row_weights, col_first,
                                 col_weights, grid, out)
    pooled = torch.from_numpy(out).T.reshape(c, grid, grid)
    occupied = valid_fraction(valid, grid) > 0
    return pooled * occupied.to(pooled.dtype)


@functools.lru_cache(maxsize=16)
def _reach_table(size: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis of ``size`` pixels: the first cell each pixel reaches (size,) and its
    weights in that cell and the following ones (size, R), 0 past the last cell it reaches
    (see :func:`_cell_weights`; R is the most cells any pixel reaches)."""
    cells = _cell_weights(size, grid)
    nonzero = cells > 0
    first = nonzero.to(torch.int8).argmax(0)
    reach = int(nonzero.sum(0).max())
    weights = np.zeros((size, reach))
    pixel = torch.arange(size)
    for step in range(reach):
        cell = first + step
        inside = cell < grid
        column = torch.zeros(size, dtype=torch.float64)
        column[inside] = cells[cell[inside], pixel[inside]]
        weights[:, step] = column.numpy()
    first = first.numpy().astype(np.int64)
    first.flags.writeable = False
    weights.flags.writeable = False
    return first, weights
