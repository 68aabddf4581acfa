"""Region of interest in the image view: draw a polygon (pyqtgraph's PolyLineROI, corners dragged
with the mouse) and shade what the model ignores.

Positions are taken in the view's pixel coordinates and carried to the ORIGINAL image's pixels,
where a ROI lives (core.roi): the view shows either the model grid (size×size, the square padding
included) or the original image, and :func:`view_points_to_original` tells them apart by size.
The widget only edits and shows; applying a ROI to the model is the window's
(``lsfa_gui.roi_control``), through the same engine functions as ``lsfa fit/score --roi``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF

from lsfa_gui.state import InspectionState

IGNORED_RGBA = (40, 40, 40, 150)  # shade of ignored pixels
ROI_PEN = (255, 213, 79)  # the polygon being drawn
INSET = 0.1  # a new polygon: the shown image inset by this share on each side


def view_points_to_original(points, shown_shape: tuple[int, int], original: tuple[int, int],
                            grid=None) -> np.ndarray:
    """(N, 2) (x, y) view positions as original image pixels: unchanged when the view shows the
    original image (``shown_shape`` == ``original``, (height, width)), else the model grid's
    inverse square + resize: ``grid`` (the shown result's core.grid_map.GridMap, which knows its
    crop around the part), or the plain padding of an image of that size."""
    from core.grid_map import GridMap

    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if tuple(shown_shape) == tuple(original):
        return pts
    if grid is None or grid.size != int(shown_shape[0]) or grid.shape != tuple(original):
        grid = GridMap.for_shape(original[0], original[1], int(shown_shape[0]))
    return grid.model_points_to_original(pts)


def ignored_overlay(roi_on_view: np.ndarray) -> np.ndarray:
    """H×W×4 uint8: :data:`IGNORED_RGBA` where the ROI ignores a pixel, transparent elsewhere."""
    out = np.zeros(roi_on_view.shape + (4,), np.uint8)
    out[~roi_on_view] = IGNORED_RGBA
    return out


class RoiEditor(QObject):
    """Polygon drawing and the ignored-area shade on an image view's ViewBox. Reads the current
    result's ROI on the grid (``result.roi``) from ``state`` to shade it."""

    def __init__(self, view: pg.ViewBox, base_item: pg.ImageItem, state: InspectionState, parent=None):
        super().__init__(parent)
        self.view = view
        self.base_item = base_item
        self.state = state
        self.polygon: pg.PolyLineROI | None = None
        self.shade = pg.ImageItem()
        self.shade.setZValue(5)  # above the heatmap and outlines, below the polygon
        self.view.addItem(self.shade)
        state.current_changed.connect(lambda _i: self.refresh())
        state.sample_updated.connect(lambda i: self.refresh() if i == state.current else None)
        self.refresh()

    @property
    def drawing(self) -> bool:
        return self.polygon is not None

    def shown_shape(self) -> tuple[int, int] | None:
        """(height, width) of the image the view shows, None when empty."""
        image = self.base_item.image
        return None if image is None else (int(image.shape[0]), int(image.shape[1]))

    def refresh(self) -> None:
        """Shade the pixels the current result was scored without: its ROI on the model grid when
        the view shows the grid, the model's ROI (original pixels) when it shows the original image."""
        entry = self.state.current_entry
        scored = None if entry is None or entry.result is None else getattr(entry.result, "roi", None)
        shown = self.shown_shape()
        roi = None
        if scored is not None and shown is not None:
            original = getattr(self.state.model.model, "roi", None)
            roi = next((r for r in (scored, original) if r is not None and tuple(r.shape) == shown), None)
        if roi is None:
            self.shade.clear()
            return
        self.shade.setImage(ignored_overlay(np.asarray(roi, bool)), autoLevels=False, levels=(0, 255))

    def start(self) -> bool:
        """Put an editable polygon on the shown image (a rectangle inset by INSET); its corners are
        dragged, and a click on an edge adds a corner. False when no image is shown."""
        shown = self.shown_shape()
        if shown is None:
            return False
        self.cancel()
        h, w = shown
        x0, x1, y0, y1 = INSET * w, (1 - INSET) * w, INSET * h, (1 - INSET) * h
        self.polygon = pg.PolyLineROI([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], closed=True,
                                      pen=pg.mkPen(ROI_PEN, width=2))
        self.polygon.setZValue(20)
        self.view.addItem(self.polygon)
        return True

    def set_corners(self, points) -> None:
        """Replace the polygon's corners with (x, y) view positions (drawing must have started)."""
        assert self.polygon is not None
        self.polygon.setPoints([QPointF(float(x), float(y)) for x, y in points], closed=True)

    def corners(self) -> np.ndarray:
        """(N, 2) (x, y) corners of the polygon in view pixels."""
        assert self.polygon is not None
        out = []
        for _name, pos in self.polygon.getLocalHandlePositions():
            p = self.polygon.mapToParent(pos)  # the parent is the ViewBox's child group: view pixels
            out.append((p.x(), p.y()))
        return np.asarray(out, np.float64)

    def finish(self, original: tuple[int, int]) -> np.ndarray:
        """The drawn polygon as an H×W bool ROI of the original image (``original`` = (height,
        width)); drawing ends."""
        from core.roi import roi_from_polygon

        entry = self.state.current_entry
        grid = None if entry is None or entry.result is None else getattr(entry.result, "grid", None)
        pts = view_points_to_original(self.corners(), self.shown_shape(), original, grid)
        self.cancel()
        return roi_from_polygon(pts, original[0], original[1])

    def cancel(self) -> None:
        """Stop drawing (the polygon goes)."""
        if self.polygon is not None:
            self.view.removeItem(self.polygon)
            self.polygon = None
