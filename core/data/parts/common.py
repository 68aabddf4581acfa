"""Shared constants and small numeric helpers of the parts generator (units: mm)."""

from __future__ import annotations

import hashlib

import numpy as np
from scipy import ndimage


PARTS_CATEGORIES = ("bracket", "gear", "tile", "hose")
PARTS_DEFECT_TYPES = ("dent", "bump", "scratch", "contamination", "hole")
MARKER_NAME = ".lsfa_parts.json"
GENERATOR_NAME = "lsfa-parts"
GENERATOR_VERSION = 1

FOCAL_PER_PIXEL = 4.4  # focal length in pixels per pixel of image width (frame ≈ distance / 4.4)
MASK_DEPTH_MM = 0.05  # a defect pixel moved its 3D point by more than this ...
MASK_COLOUR = 0.03  # ... or changed a colour channel (0..1 display scale) by more than this
_MARCH_STEP_MM = 0.8
_BISECT_STEPS = 7

# material channels of the part raster
_ALB = slice(0, 3)
_SPEC, _SHINE, _ANISO, _TX, _TY, _DROP = 3, 4, 5, 6, 7, 8
_NCH = 9


def _smoothstep(e0: float, e1: float, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _upsample(small: np.ndarray, shape: tuple[int, int], factor: float) -> np.ndarray:
    """Bilinear upsampling of a coarse grid (cell ``factor`` fine cells) to ``shape``."""
    h, w = shape
    ys = np.arange(h, dtype=np.float32) / factor
    xs = np.arange(w, dtype=np.float32) / factor
    y0 = np.minimum(ys.astype(np.intp), small.shape[0] - 2)
    x0 = np.minimum(xs.astype(np.intp), small.shape[1] - 2)
    wy = (ys - y0)[:, None]
    wx = (xs - x0)[None, :]
    rows = small[y0] * (1 - wy) + small[y0 + 1] * wy
    return (rows[:, x0] * (1 - wx) + rows[:, x0 + 1] * wx).astype(np.float32)


def _noise2d(rng: np.random.Generator, shape: tuple[int, int], corr: float) -> np.ndarray:
    """Smooth random field with correlation length ``corr`` cells, roughly unit variance."""
    corr = max(float(corr), 1.0)
    sh = (int(np.ceil(shape[0] / corr)) + 3, int(np.ceil(shape[1] / corr)) + 3)
    small = ndimage.gaussian_filter(rng.standard_normal(sh), 0.7, mode="wrap")
    small /= small.std() + 1e-9
    return _upsample(small, shape, corr)


def _noise1d(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    x = ndimage.gaussian_filter1d(rng.standard_normal(n + 8), max(corr, 0.5), mode="wrap")[4:-4]
    return (x / (x.std() + 1e-9)).astype(np.float32)


def _interp1d(values: np.ndarray, x, x0: float, step: float):
    """Linear lookup of a 1-D array sampled at x0 + k·step (clamped at the ends)."""
    f = np.clip((x - x0) / step, 0, len(values) - 1.001)
    i = f.astype(np.intp)
    w = f - i
    return values[i] * (1 - w) + values[i + 1] * w


def _sdf_box(p, q, hx: float, hy: float, r: float):
    """Signed distance to a rounded rectangle (negative inside)."""
    dx = np.abs(p) - (hx - r)
    dy = np.abs(q) - (hy - r)
    outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
    return outside + np.minimum(np.maximum(dx, dy), 0) - r


def _edge_drop(e, r: float):
    """Height lost by a quarter-round edge of radius r at inner distance e from the edge."""
    t = r - np.minimum(np.maximum(e, 0), r)
    return r - np.sqrt(np.maximum(r * r - t * t, 0))


def _kelvin(k: float) -> np.ndarray:
    """RGB tint of a light of colour temperature k (camera white-balanced near 5500 K)."""
    ks = [3200.0, 4300.0, 5500.0, 6500.0]
    return np.array(
        [
            np.interp(k, ks, [1.22, 1.10, 1.0, 0.94]),
            1.0,
            np.interp(k, ks, [0.70, 0.86, 1.0, 1.08]),
        ]
    )


def _design_rng(seed: int, category: str) -> np.random.Generator:
    """A fresh generator of the one design that every part of ``category`` shares in a
    one-design dataset of ``seed`` (the same draws for every sample)."""
    key = f"{GENERATOR_NAME}/v{GENERATOR_VERSION}/{int(seed)}/{category}/design"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _sample_rng(seed: int, category: str, split: str, label: str, index: int) -> np.random.SeedSequence:
    key = f"{GENERATOR_NAME}/v{GENERATOR_VERSION}/{int(seed)}/{category}/{split}/{label}/{int(index)}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return np.random.SeedSequence(int.from_bytes(digest[:16], "little"))


