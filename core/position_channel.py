"""Where a patch lies on the part, unchanged by the part's rotation: its distance from the centre.

A memory bank compares a patch with every training patch wherever that one lay, so whatever is
normal somewhere on a part (a tooth flank, a bore's rim, a print near the edge) is normal
anywhere on it. With the object-centred crop (core.object_frame) the model grid's centre is the
part's centroid, and a cell's distance from it does not change with the part's in-plane rotation.
This module appends it to each modality's patch features as one channel (after the LSFA adaptors,
which never see it)::

    position = units_per_cell · r      r: distance of the cell's centre from the grid centre, cells

so a patch's nearest neighbour is sought among training patches at about the same distance from
the centre: a mismatch of Δr cells adds ``units_per_cell · Δr`` to the feature distance (in
quadrature). ``units_per_cell`` = ``FitConfig.position_weight`` (default 1) × the median distance
of a training patch to its nearest other training patch, in that modality's feature units (measured
at fit time on up to :data:`SCALE_QUERIES` patches, stored in the model file), so one cell of
mismatch costs about one typical good-part neighbour distance on every modality and backbone.

Only cropped models have the channel: without a crop (no part found in the training images, or
``--no-object-crop``) the grid centre is not the part's. Shifted bank copies (``--bank-shifts``) take the radius of the cell they land in (off by at
most 0.7 cells); turned copies keep it exactly (they turn about the grid centre).

Measured (docs/evaluation.md, "the position channel"): mean fused I-AUROC over the tuning group's
16 sets at fit seeds 0 and 1 0.963 -> 0.969; the fresh parts seed 919 0.877 -> 0.897 and 0.843 ->
0.878 (fit seeds 0 / 1), the 3D branch gaining most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from core.progress import Progress, ensure

MEASURE_STAGE = "Measuring the patches' distances for the position channel"
SCALE_QUERIES = 1024  # training patches whose nearest-neighbour distance sets the channel's unit
MAX_UNITS = 1e9  # feature units per cell; a stored value beyond it is refused as a damaged model file


def radius_cells(grid: int) -> np.ndarray:
    """(grid*grid,) float32 distance of each cell's centre from the grid's centre, in cells (row-major)."""
    c = (grid - 1) / 2.0
    i, j = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    return np.hypot(i - c, j - c).astype(np.float32).reshape(-1)


def median_neighbour_distance(patches: np.ndarray, seed: int = 0, n_query: int = SCALE_QUERIES) -> float:
    """Median distance (feature units) of up to ``n_query`` random rows of ``patches`` (N, D) to
    their nearest other row; 0 for fewer than two rows."""
    x = torch.as_tensor(np.ascontiguousarray(patches), dtype=torch.float32)
    if len(x) < 2:
        return 0.0
    q = torch.as_tensor(np.random.default_rng(seed).choice(len(x), size=min(n_query, len(x)), replace=False))
    best = torch.full((len(q),), float("inf"))
    step = 8192
    for s in range(0, len(x), step):
        d = torch.cdist(x[q], x[s:s + step])
        d[q[:, None] == torch.arange(s, s + len(d[0]))[None, :]] = float("inf")  # not the row itself
        best = torch.minimum(best, d.min(1).values)
    return float(best.median())


@dataclass(frozen=True)
class PositionChannel:
    """A model's position channel: ``units_per_cell`` {modality: feature units per cell of radius}."""

    units_per_cell: dict

    def __post_init__(self):
        if not isinstance(self.units_per_cell, dict) or not self.units_per_cell:
            raise ValueError(f"position channel needs {{modality: units per cell}}, got {self.units_per_cell!r}")
        for m, v in self.units_per_cell.items():
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= MAX_UNITS
            if not isinstance(m, str) or not ok:
                raise ValueError(f"position channel: {m!r} must map to a number of feature units per cell in "
                                 f"0..{MAX_UNITS:g}, got {v!r}")

    @classmethod
    def measure(cls, tokens: dict, regions: dict, weight: float, seed: int = 0,
                progress: Progress | None = None) -> "PositionChannel | None":
        """The channel for the training ``tokens`` {modality: (B, cells, D)} over their scored
        ``regions`` {modality: (B, cells) bool}; None when ``weight`` is 0. ~0.4 s per modality on
        one thread for 60 training parts; reports to (and can be cancelled through) ``progress``."""
        if weight <= 0:
            return None
        p = ensure(progress)
        units = {}
        for i, (m, t) in enumerate(tokens.items()):
            p.update(MEASURE_STAGE, i, len(tokens))
            units[m] = float(weight * median_neighbour_distance(t[regions[m]], seed))
        p.update(MEASURE_STAGE, len(tokens), len(tokens))
        return cls(units)

    def apply(self, tokens: dict, grid: int) -> dict:
        """{modality: (B, grid*grid, D)} -> the same with the position channel appended (D + 1);
        modalities without a value pass unchanged."""
        r = radius_cells(grid)
        out = {}
        for m, t in tokens.items():
            if m not in self.units_per_cell:
                out[m] = t
                continue
            t = np.asarray(t)
            channel = np.broadcast_to((r * np.float32(self.units_per_cell[m]))[None, :, None], t.shape[:2] + (1,))
            out[m] = np.concatenate([t, channel.astype(t.dtype)], axis=2)
        return out

    def to_dict(self) -> dict:
        return {"units_per_cell": dict(self.units_per_cell)}

    @classmethod
    def from_dict(cls, d: dict) -> "PositionChannel":
        """From :meth:`to_dict`'s form; KeyError / ValueError for a damaged entry."""
        return cls(dict(d["units_per_cell"]))
