"""Where the model grid lies on a sample's original image, and maps/masks carried back to it.

:func:`core.prepare.prepare_sample` pads a sample of H×W pixels into a centred square, crops that
to the model's square around the part when it has one (core.object_frame), and resizes the
square to the model grid of ``size``×``size`` pixels. :class:`GridMap` records the square
(``side`` pixels, the image's pixel (0, 0) at its pixel (``top``, ``left``); negative when the
square starts inside the image) and inverts the steps: resize back and place on the H×W image,
bilinear for scores (raw score units, unchanged) and nearest for masks; original pixels outside
the square get 0. All positions and sizes are in pixels; "original pixels" are pixels of the
image as read from disk, "model pixels" those of the size×size grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GridMap"]


@dataclass(frozen=True)
class GridMap:
    """The square + resize of one sample (pixels). Original pixel (row r, column c) sits at
    square pixel (r + top, c + left); one model pixel is ``side / size`` original pixels wide."""

    height: int  # original image rows
    width: int  # original image columns
    side: int  # the square's side (original pixels)
    top: int  # rows of the square above the image (padding); negative: the square starts inside it
    left: int  # columns of the square left of the image; negative likewise
    size: int  # model grid side (model pixels)

    @classmethod
    def for_shape(cls, height: int, width: int, size: int, pad_multiple: int = 100) -> "GridMap":
        """The mapping :func:`core.prepare.prepare_sample` uses for an image of height×width
        without a crop around the part (the square padding only)."""
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
        out = rows[:, j0] * (1.0 - tx)[None, :] + rows[:, j1] * tx[None, :]
        return self._outside_to_zero(out, r0, c0, r1, c1)

    def _inside(self, start: int, stop: int, offset: int) -> np.ndarray:
        """Which original pixels start..stop-1 along one axis fall inside the square."""
        pos = np.arange(start, stop) + offset
        return (pos >= 0) & (pos < self.side)

    def _outside_to_zero(self, arr: np.ndarray, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
        """``arr`` (window r0..r1 × c0..c1 of the original image) with 0 where the square does not
        reach (only a crop around the part leaves such pixels)."""
        rows, cols = self._inside(r0, r1, self.top), self._inside(c0, c1, self.left)
        if rows.all() and cols.all():
            return arr
        arr = np.array(arr, copy=True)
        arr[~rows] = 0
        arr[:, ~cols] = 0
        return arr

    def mask_to_original(self, mask: np.ndarray, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """A size×size(×C) array (a mask, a per-pixel value) carried to the original pixels by
        nearest neighbour: H×W(×C), or ``window`` of it; values are copied, never mixed."""
        r0, c0, r1, c1 = window or self.full_window()
        rows = self.nearest_model_index(r0, r1, 0)
        cols = self.nearest_model_index(c0, c1, 1)
        return self._outside_to_zero(np.asarray(mask)[rows[:, None], cols[None, :]], r0, c0, r1, c1)

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

    @property
    def is_crop(self) -> bool:
        """True when the square is a crop around the part (core.object_frame), not the padding."""
        from core.data.preprocess import square_padding

        return (self.side, self.top, self.left) != square_padding(self.height, self.width)

    def to_whole_frame(self, amap: np.ndarray, mask: np.ndarray | None = None):
        """(map, mask) of this grid carried to the grid of the whole padded image at the same size
        (the frame without a crop), so that pixel metrics cover the same pixels with or without
        the crop: scores bilinear to the original pixels (0 outside the crop) then nearest to that
        grid; the mask nearest both ways. Unchanged when this grid is not a crop."""
        if not self.is_crop:
            return amap, mask
        whole = GridMap.for_shape(self.height, self.width, self.size)
        out = whole.mask_to_model(self.scores_to_original(amap))
        return out, (None if mask is None else whole.mask_to_model(self.mask_to_original(mask)))

    # ------------------------------------------------------------------ original -> model grid
    def mask_to_model(self, mask: np.ndarray) -> np.ndarray:
        """An H×W(×C) original-pixel array (e.g. a mask) placed on the square (zero padding, or the
        crop around the part) and resized to the model grid by nearest neighbour, exactly as
        :func:`core.prepare.prepare_sample` does it."""
        from core.data.preprocess import pad_to_square
        from core.data.resize import resize_nearest

        return resize_nearest(pad_to_square(np.asarray(mask), self.side, self.top, self.left), self.size)
