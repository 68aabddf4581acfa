"""The heatmap's fixed colour range, chosen at fit time and stored in the model (``display_range``).

Both ends are in fused map units (the units of the pixel threshold). The low end is the median of
the held-out good parts' non-zero map values; the viewers start the colours at the pixel threshold
instead by default (core.render.range_from_threshold), so the low end matters only with that
option off. The high end, where the ramp reaches its last colour, is twice the distance from the
low end up to the larger of the pixel threshold and the ``pixel_quantile`` of held-out good map
values. Tops taken from the self-check's synthetic defects were measured and not adopted
(docs/evaluation.md, ``bench/bench_colour_range.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fitted_colour_range"]


def fitted_colour_range(good_maps: np.ndarray, pixel_threshold: float, pixel_quantile: float) -> tuple[float, float]:
    """(low, high) of the colour range from held-out good maps (any shape, fused units) and the
    pixel threshold (see the module)."""
    values = np.asarray(good_maps, np.float64)
    nz = values[values > 0]
    lo = float(np.median(nz)) if nz.size else 0.0
    hi = max(float(pixel_threshold), float(np.quantile(values, pixel_quantile)) if values.size else lo)
    return lo, hi + max(hi - lo, 1e-6)
