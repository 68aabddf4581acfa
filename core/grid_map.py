"""Where the model grid lies on a sample's original image, and maps/masks carried back to it.

:func:`core.prepare.prepare_sample` pads a sample of H×W pixels into a centred square of
``side`` pixels (``top``/``left`` pixels of padding above/left of the image) and resizes that
square to the model grid of ``size``×``size`` pixels. :class:`GridMap` records those numbers and
inverts the two steps: crop the padding and resize back to H×W, bilinear for scores (raw score
units, unchanged) and nearest for masks. All positions and sizes are in pixels; "original
pixels" are pixels of the image as read from disk, "model pixels" those of the size×size grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GridMap"]


@dataclass(frozen=True)
class GridMap:
    """The padding + resize of one sample (pixels). Original pixel (row r, column c) sits at
    padded pixel (r + top, c + left); a padded pixel is ``side / size`` original pixels wide."""

    height: int  # original image rows
    width: int  # original image columns
    side: int  # the padded square's side (original pixels)
    top: int  # padding rows above the image
    left: int  # padding columns left of the image
    size: int  # model grid side (model pixels)

    @classmethod
    def for_shape(cls, height: int, width: int, size: int, pad_multiple: int = 100) -> "GridMap":
        """The mapping :func:`core.prepare.prepare_sample` uses for an image of height×width."""
        from core.data.preprocess import square_padding

        side, top, left = square_padding(int(height), int(width), pad_multiple)
        return cls(int(height), int(width), side, top, left, int(size))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the original image."""
        return self.height, self.width

    @property
    def is_identity(self) -> bool:
        """No padding and no resize: model pixels are original pixels."""
        return self.height == self.width == self.side == self.size

    @property
    def original_px_per_model_px(self) -> float:
        """How many original pixels one model pixel spans along a row or a column."""
        return self.side / self.size

    # ------------------------------------------------------------------ model grid -> original
    def model_points_to_original(self, points) -> np.ndarray:
        """(N, 2) (x, y) positions on the model grid (model pixels, x = column) as positions on
        the original image (original pixels): scale by ``side / size``, then remove the padding."""
        pts = np.asarray(points, np.float64).reshape(-1, 2) * self.original_px_per_model_px
        return pts - np.array([self.left, self.top], np.float64)

    def _axis(self, start: int, stop: int, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bilinear source of original pixels start..stop-1 along one axis: (i0, i1, weight of i1)."""
        pos = (np.arange(start, stop) + offset + 0.5) * (self.size / self.side) - 0.5
        pos = np.clip(pos, 0.0, self.size - 1.0)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, self.size - 1)
        return i0, i1, (pos - i0).astype(np.float32)

    def nearest_model_index(self, start: int, stop: int, axis: int) -> np.ndarray:
        """Model pixel (row for axis 0, column for axis 1) nearest to each original pixel start..stop-1."""
        offset = self.top if axis == 0 else self.left
        idx = np.floor((np.arange(start, stop) + offset + 0.5) * (self.size / self.side)).astype(np.int64)
        return np.clip(idx, 0, self.size - 1)

    def full_window(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of the whole original image (original pixels, exclusive ends)."""
        return 0, 0, self.height, self.width

    def scores_to_original(self, amap: np.ndarray, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """A size×size map (raw score units) resampled bilinearly onto the original pixels:
        H×W float32, or only ``window`` = (top, left, bottom, right) of it (original pixels)."""
        amap = np.asarray(amap, np.float32)
        r0, c0, r1, c1 = window or self.full_window()
        i0, i1, ty = self._axis(r0, r1, self.top)
        j0, j1, tx = self._axis(c0, c1, self.left)
        rows = amap[i0] * (1.0 - ty)[:, None] + amap[i1] * ty[:, None]
        return rows[:, j0] * (1.0 - tx)[None, :] + rows[:, j1] * tx[None, :]

    def mask_to_original(self, mask: np.ndarray, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """A size×size(×C) array (a mask, a per-pixel value) carried to the original pixels by
        nearest neighbour: H×W(×C), or ``window`` of it; values are copied, never mixed."""
        r0, c0, r1, c1 = window or self.full_window()
        rows = self.nearest_model_index(r0, r1, 0)
        cols = self.nearest_model_index(c0, c1, 1)
        return np.asarray(mask)[rows[:, None], cols[None, :]]

    def window_of_model_box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) original pixels whose nearest model pixel lies in the model
        box (top, left, bottom, right; exclusive ends), widened by one original pixel, clipped."""
        a, b, c, d = box
        k = self.side / self.size
        r0 = int(np.floor(a * k - self.top - 0.5)) - 1
        r1 = int(np.ceil(c * k - self.top - 0.5)) + 1
        c0 = int(np.floor(b * k - self.left - 0.5)) - 1
        c1 = int(np.ceil(d * k - self.left - 0.5)) + 1
        return max(0, r0), max(0, c0), min(self.height, max(r1, 0)), min(self.width, max(c1, 0))

    # ------------------------------------------------------------------ original -> model grid
    def mask_to_model(self, mask: np.ndarray) -> np.ndarray:
        """An H×W(×C) original-pixel array (e.g. a mask) padded with zeros and resized to the model
        grid by nearest neighbour, exactly as :func:`core.prepare.prepare_sample` does it."""
        from core.data.preprocess import pad_to_square
        from core.data.resize import resize_nearest

        return resize_nearest(pad_to_square(np.asarray(mask), self.side, self.top, self.left), self.size)
