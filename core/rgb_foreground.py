"""Where the part is in an RGB image without a point cloud: the pixels whose colour stands out of
the image's border (the background the part lies on).

Used for the object-centred crop (core.object_frame) of data without point clouds. The image is
reduced to at most :data:`WORK_SIDE` pixels (box average); the border band's median colour is the
background and the band's robust spread (1.4826 × median absolute deviation, per channel, as one
length; at least :data:`MIN_SPREAD` grey levels) its unit; a pixel is foreground when its colour
lies more than :data:`THRESHOLD` units from the background's. The largest connected component
(after a 5×5 closing, which joins a textured part's pixels, and a 3×3 opening), holes filled, is
the part. No part is found (None; the image is not cropped)
when more than :data:`MAX_BORDER_OUTLIERS` of the border band itself stands out (no uniform
background: a texture that fills the frame, a part touching the border) or when the part covers
less than :data:`MIN_SHARE` or more than :data:`MAX_SHARE` of the image. Constants fixed before any
measurement.
"""

from __future__ import annotations

import numpy as np

WORK_SIDE = 128  # pixels of the reduced image's longer side
BAND = 0.04  # border band width, share of the reduced image's shorter side (at least 2 pixels)
THRESHOLD = 4.0  # colour distance from the background, in units of the band's spread
MIN_SPREAD = 3.0  # grey levels: the unit is never smaller (a flat synthetic background)
MAX_BORDER_OUTLIERS = 0.1  # share of the band that may stand out
MIN_SHARE, MAX_SHARE = 0.005, 0.6  # share of the image the part may cover


def _reduced(rgb: np.ndarray) -> np.ndarray:
    """The image box-averaged to at most WORK_SIDE pixels on its longer side, float32."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = max(h, w) / WORK_SIDE
    if scale <= 1:
        return rgb.astype(np.float32)
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BOX), dtype=np.float32)


def rgb_foreground(rgb: np.ndarray) -> np.ndarray | None:
    """H×W bool mask of the part in an H×W×3 uint8 image, or None when no part is found (see the
    module docstring)."""
    from scipy import ndimage

    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 8:
        return None
    small = _reduced(np.ascontiguousarray(rgb, dtype=np.uint8))
    sh, sw = small.shape[:2]
    b = max(2, round(BAND * min(sh, sw)))
    band = np.zeros((sh, sw), bool)
    band[:b], band[-b:], band[:, :b], band[:, -b:] = True, True, True, True
    border = small[band]
    background = np.median(border, axis=0)
    spread = 1.4826 * np.median(np.abs(border - background), axis=0)
    unit = max(float(np.linalg.norm(spread)), MIN_SPREAD)
    distance = np.linalg.norm(small - background, axis=-1) / unit
    standing_out = distance > THRESHOLD
    if standing_out[band].mean() > MAX_BORDER_OUTLIERS:
        return None
    # a textured part (a tyre's tread) has pixels that alternate between standing out and not:
    # a closing joins them, then an opening drops isolated noise
    part = ndimage.binary_closing(standing_out, np.ones((5, 5), bool))
    part = ndimage.binary_opening(part, np.ones((3, 3), bool))
    labels, n = ndimage.label(part)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    part = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    if not MIN_SHARE <= part.mean() <= MAX_SHARE:
        return None
    h, w = rgb.shape[:2]
    rows = np.minimum((np.arange(h) * sh) // h, sh - 1)
    cols = np.minimum((np.arange(w) * sw) // w, sw - 1)
    return part[rows[:, None], cols[None, :]]


__all__ = ["rgb_foreground"]
