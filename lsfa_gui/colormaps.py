"""Colormap lookup tables (256×3 uint8) from pyqtgraph's bundled maps, shared by 2D and 3D."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def lut(name: str, n: int = 256) -> np.ndarray:
    """The ``n``×3 uint8 lookup table of colormap ``name`` (read-only array). Turbo at 256
    entries is core.render's TURBO_LUT (the CLI's colours; equal to pyqtgraph's table)."""
    if name == "turbo" and n == 256:
        from core.render import TURBO_LUT

        return TURBO_LUT
    import pyqtgraph as pg

    cmap = pg.colormap.get(name)
    table = np.ascontiguousarray(cmap.getLookupTable(0.0, 1.0, n, alpha=False), dtype=np.uint8)
    table.setflags(write=False)
    return table
