"""Patch-score grids to full-resolution anomaly maps: bilinear upsampling + Gaussian blur.

Both steps are linear and separable, so they are folded into one (size x g) matrix per axis,
A = G @ U (U: bilinear upsampling with align_corners=False, i.e. torch's ``F.interpolate``;
G: ``scipy.ndimage.gaussian_filter1d`` with ``sigma`` px, truncate 4, edge mode "nearest"),
and a map is A_y @ patch_map @ A_x^T. The result equals upsample-then-blur in float (no 8-bit
quantisation, method.md section 8 #16) to float32 rounding, at a few microseconds per map.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter1d

from core.cpu import single_thread_blas


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of 1-D linear interpolation, align_corners=False (torch semantics)."""
    scale = n_in / n_out
    src = (np.arange(n_out) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    mat = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    np.add.at(mat, (rows, i0), 1.0 - frac)
    np.add.at(mat, (rows, i1), frac)
    return mat


@lru_cache(maxsize=32)
def _axis_operator(n_in: int, n_out: int, sigma: float) -> np.ndarray:
    mat = _bilinear_matrix(n_in, n_out)
    if sigma > 0:
        mat = gaussian_filter1d(mat, sigma, axis=0, mode="nearest", truncate=4.0)
    out = mat.astype(np.float32)
    out.flags.writeable = False
    return out


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def upsample_and_blur_batch(patch_maps: np.ndarray, size=224, sigma: float = 4.0) -> np.ndarray:
    """(B, gh, gw) patch maps -> (B, H, W) float32 maps; ``size`` is an int or (H, W); ``sigma``
    in output pixels (0 = no blur). Units are those of the input (raw kNN distance)."""
    m = np.asarray(patch_maps, dtype=np.float32)
    if m.ndim != 3 or m.shape[1] == 0 or m.shape[2] == 0:
        raise ValueError(f"patch maps must be (B, gh, gw), got shape {m.shape}")
    h, w = _size_pair(size)
    ay = _axis_operator(m.shape[1], h, float(sigma))
    ax = _axis_operator(m.shape[2], w, float(sigma))
    axt = ax.T
    out = np.empty((len(m), h, w), np.float32)
    with single_thread_blas():
        for i, one in enumerate(m):
            np.matmul(ay @ one, axt, out=out[i])
    return out


def upsample_and_blur(patch_map: np.ndarray, size=224, sigma: float = 4.0) -> np.ndarray:
    """(gh, gw) patch map -> (H, W) float32 map (see :func:`upsample_and_blur_batch`)."""
    m = np.asarray(patch_map, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"patch map must be (gh, gw), got shape {m.shape}")
    return upsample_and_blur_batch(m[None], size, sigma)[0]


__all__ = ["upsample_and_blur", "upsample_and_blur_batch"]
