"""Resizing a sample to the model grid: RGB bicubic, xyz and mask nearest (zeros stay zeros)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from core.data.sample import Sample


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel for nearest resizing (pixel-centre aligned, as PIL)."""
    idx = np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64)
    return np.minimum(idx, n_in - 1)


def resize_nearest(arr: np.ndarray | None, size: int) -> np.ndarray | None:
    """H×W(×C) -> size×size(×C) by nearest neighbour; values are copied, never mixed."""
    if arr is None:
        return None
    rows = nearest_indices(arr.shape[0], size)
    cols = nearest_indices(arr.shape[1], size)
    return np.ascontiguousarray(arr[rows[:, None], cols[None, :]])


def resize_rgb(rgb: np.ndarray | None, size: int) -> np.ndarray | None:
    """H×W×3 uint8 -> size×size×3 uint8, bicubic (PIL)."""
    if rgb is None:
        return None
    if rgb.shape[:2] == (size, size):
        return rgb.copy()
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))


def resize_sample(sample: Sample, size: int = 224) -> Sample:
    """New Sample on a size×size grid: RGB bicubic, xyz, mask and roi nearest (invalid stays exactly 0).
    ``meta["resize"]`` records the original (height, width)."""
    h, w = sample.shape
    return replace(
        sample,
        rgb=resize_rgb(sample.rgb, size),
        xyz=resize_nearest(sample.xyz, size),
        mask=resize_nearest(sample.mask, size),
        roi=resize_nearest(sample.roi, size),
        meta={**sample.meta, "resize": {"height": h, "width": w, "size": size}},
    )
