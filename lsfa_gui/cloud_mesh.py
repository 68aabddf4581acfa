"""The 3D view's data, built off the UI thread: the valid points and scores of an organized
cloud, the cloud thinned on its grid to a bounded number of shown points, and the pyvista mesh
of the shown points (grid triangles and point normals for the Surface style).

Software OpenGL (llvmpipe) renders in time roughly proportional to the number of points, and
the render runs on the UI thread; so at most :data:`MAX_SHOWN_POINTS` points are drawn. A
shown point stands for its step×step grid block and carries the block's highest score, so a
defect smaller than a block still shows in colour. Building the mesh (triangles, normals:
tens of ms for 50k points, more on a busy machine) happens in one background thread; the UI
thread only swaps the actor's data (:class:`MeshBuilder`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.data.sample import valid_points
from lsfa_gui import overlay

log = logging.getLogger(__name__)

MAX_SHOWN_POINTS = 20_000  # drawn points at most (≈ 60 ms per software-GL render of the shaded surface)


def greyed(scores: np.ndarray, pixel_threshold: float | None) -> np.ndarray:
    """Float32 copy of ``scores`` with NaN where a score is below ``pixel_threshold`` (the
    mapper draws NaN grey)."""
    out = np.asarray(scores, np.float32).copy()
    if pixel_threshold is not None:
        out[out < pixel_threshold] = np.nan
    return out


def thinning_step(valid: np.ndarray, max_points: int = MAX_SHOWN_POINTS) -> int:
    """Smallest k such that every k-th grid row and column keeps at most ``max_points`` valid points."""
    k = max(1, int(np.ceil(np.sqrt(int(valid.sum()) / max(1, max_points)))))
    while int(valid[::k, ::k].sum()) > max_points:
        k += 1
    return k


def block_max(values: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    """ceil(H/k)×ceil(W/k) float32: the highest of ``values`` over the valid pixels of each k×k
    grid block (-inf where a block has none); the shape of ``values[::k, ::k]``."""
    if k == 1:
        return np.where(valid, values, -np.inf).astype(np.float32)
    h, w = values.shape
    hh, ww = -(-h // k) * k, -(-w // k) * k
    padded = np.full((hh, ww), -np.inf, np.float32)
    padded[:h, :w] = np.where(valid, values, -np.inf)
    return padded.reshape(hh // k, k, ww // k, k).max(axis=(1, 3))


@dataclass
class CloudData:
    """One sample's cloud for the 3D view. ``points``/``scores`` are all valid points (the
    readout and picking use them); ``shown_*`` and ``mesh`` are what is drawn."""

    points: np.ndarray  # N×3 float32, metres
    scores: np.ndarray | None  # N raw scores (None: not scored yet)
    step: int  # every step-th grid row and column is drawn (1: all points)
    shown_points: np.ndarray  # M×3 float32, metres
    shown_scores: np.ndarray | None  # M: the highest score of each drawn point's step×step block
    mesh: Any = None  # pyvista.PolyData ("score", "display" point arrays), None without a renderer
    surface: bool = False  # the mesh has triangles (Surface style)


def cloud_data(xyz: np.ndarray, anomaly_map: np.ndarray | None, valid: np.ndarray | None = None,
               surface: bool = True, with_mesh: bool = True, pixel_threshold: float | None = None,
               max_points: int = MAX_SHOWN_POINTS) -> CloudData:
    """The 3D view's data for an organized cloud ``xyz`` (H×W×3, metres) with per-pixel scores
    ``anomaly_map`` (H×W raw scores, or None). ``pixel_threshold`` only sets the mesh's initial
    greying (the view regreys on arrival)."""
    valid = valid_points(xyz) if valid is None else np.asarray(valid, bool)
    points = np.ascontiguousarray(xyz[valid], np.float32)
    scores = None if anomaly_map is None else np.asarray(anomaly_map, np.float32)[valid]
    k = thinning_step(valid, max_points)
    shown_valid = valid[::k, ::k]
    shown_xyz = xyz[::k, ::k]
    shown_points = np.ascontiguousarray(shown_xyz[shown_valid], np.float32)
    shown_scores = None
    if anomaly_map is not None:
        shown_scores = block_max(np.asarray(anomaly_map, np.float32), valid, k)[shown_valid]
    data = CloudData(points, scores, k, shown_points, shown_scores)
    if with_mesh and len(shown_points):
        data.mesh, data.surface = _mesh(shown_xyz, shown_valid, shown_points, shown_scores, surface, pixel_threshold)
    return data


def _mesh(xyz, valid, points, scores, surface: bool, pixel_threshold):
    import pyvista as pv

    tris = overlay.grid_triangles(xyz, valid) if surface else np.zeros((0, 3), np.int64)
    if len(tris):
        faces = np.column_stack([np.full(len(tris), 3, np.int64), tris]).ravel()
        mesh = pv.PolyData(points.astype(np.float64), faces)
    else:
        mesh = pv.PolyData(points.astype(np.float64))
    display = np.full(len(points), np.nan, np.float32) if scores is None else greyed(scores, pixel_threshold)
    mesh.point_data["score"] = display if scores is None else scores
    mesh.point_data["display"] = display
    if len(tris):  # point normals for smooth shading, computed on this very mesh (no copy)
        mesh = mesh.compute_normals(cell_normals=False, point_normals=True, split_vertices=False,
                                    consistent_normals=False, auto_orient_normals=False)
    mesh.set_active_scalars("display")
    return mesh, bool(len(tris))


class MeshBuilder(QObject):
    """Runs :func:`cloud_data` in one background thread; ``built(ticket, CloudData)`` reaches the
    UI thread for the newest request only (an older one still queued is skipped)."""

    built = Signal(int, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsfa-mesh")
        self._ticket = 0
        self._closed = False

    def request(self, **kwargs) -> int:
        """Build ``cloud_data(**kwargs)``; returns the ticket the result will carry."""
        self._ticket += 1
        if not self._closed:
            self._pool.submit(self._build, self._ticket, kwargs)
        return self._ticket

    def cancel(self) -> None:
        """Drop the requests made so far (their results are not delivered)."""
        self._ticket += 1

    def _build(self, ticket: int, kwargs: dict) -> None:  # worker thread
        if ticket != self._ticket:
            return  # superseded while queued
        try:
            data = cloud_data(**kwargs)
        except Exception:  # noqa: BLE001 - a bad cloud must not kill the thread; the view keeps its message
            log.exception("3D view: cannot build the cloud's mesh")
            return
        if ticket != self._ticket:
            return
        try:
            self.built.emit(ticket, data)
        except RuntimeError:  # the view was deleted meanwhile
            pass

    def shutdown(self) -> None:
        """Stop taking work (a build under way finishes in its thread, undelivered)."""
        self._closed = True
        self.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
