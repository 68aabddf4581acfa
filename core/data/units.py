"""Units of organized point clouds. The engine works in metres; ``--xyz-units mm|cm`` (in the
app: Fit… › Point units) scales clouds on load, and clouds whose point spacing says they are in
other units are refused with one line naming the file, the spacing and the option, instead of
being scored silently. The unit a model was fitted in is stored with it (``info["xyz_units"]``)
and is the default for scoring with it (:func:`scoring_units`).

Spacing = median 3D distance between horizontally/vertically adjacent valid pixels. Real
parts scanned at 0.1-5 mm per pixel have spacings of 1e-4..5e-3 m; the same cloud in
millimetres reads 1000× larger, in centimetres 100×.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np

from core.data.sample import Sample
from core.errors import DataError, UserError

log = logging.getLogger(__name__)

XYZ_UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
MAX_METRE_SPACING = 0.02  # above 2 cm between neighbouring pixels a cloud is unlikely metres
MAX_RATIO = 30.0  # spacing differing from the training spacing by more than this is refused
CHECK_ROWS = 64  # rows the scoring-time unit check measures the spacing on (point_spacing)
_TYPICAL_SPACING = 7e-4  # geometric middle of 1e-4..5e-3 m


UNIT_NAMES = {"m": "metres", "cm": "centimetres", "mm": "millimetres"}
APP_CONTROL = "in the app: Fit… › Point units"


def scoring_units(model) -> str:
    """The unit of the clouds ``model`` scores: the load option ``model.xyz_units`` (``lsfa
    score/eval --xyz-units``) when given, else the unit it was fitted in (``info["xyz_units"]``),
    else metres (models saved before the unit was stored)."""
    return (getattr(model, "xyz_units", None) or (getattr(model, "info", None) or {}).get("xyz_units")
            or "m")


def unit_scale(units: str | None) -> float:
    if units is None:
        return 1.0
    if units not in XYZ_UNITS:
        raise UserError(f"--xyz-units must be one of {', '.join(XYZ_UNITS)}, got {units!r}")
    return XYZ_UNITS[units]


def apply_units(sample: Sample, units: str | None) -> Sample:
    """The sample with its xyz converted from ``units`` to metres (unchanged for m / None)."""
    scale = unit_scale(units)
    if sample.xyz is None or scale == 1.0:
        return sample
    return replace(sample, xyz=(sample.xyz * np.float32(scale)).astype(np.float32),
                   meta={**sample.meta, "xyz_units": units})


def point_spacing(xyz: np.ndarray, max_rows: int = 400) -> float:
    """Median distance between adjacent valid pixels (in the cloud's units); 0.0 if none.
    Large clouds are measured on ``max_rows`` evenly spread rows."""
    h = xyz.shape[0]
    if h - 1 <= max_rows:
        a, below = xyz[: max(h - 1, 0)], xyz[1:]
    else:
        rows = np.linspace(0, h - 2, max_rows).astype(int)
        a, below = xyz[rows], xyz[rows + 1]
    valid_a = _measured(a)
    d = [pixel_distances(a[:, 1:], a[:, :-1], valid_a[:, 1:] & valid_a[:, :-1])]
    if len(below):
        d.append(pixel_distances(below, a, valid_a & _measured(below)))
    d = np.concatenate(d)
    d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0


def _measured(xyz: np.ndarray) -> np.ndarray:
    """Pixels with any non-zero coordinate (NaN counts as non-zero)."""
    return (xyz[..., 0] != 0) | (xyz[..., 1] != 0) | (xyz[..., 2] != 0)


def pixel_distances(p: np.ndarray, q: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """float64 |p - q| at the ``keep`` pixels of two H×W×3 arrays (differences taken in their
    dtype), per component plane: the same numbers as ``np.linalg.norm`` over the last axis of
    the differences, several times faster."""
    total = None
    for c in range(3):
        diff = (p[..., c][keep] - q[..., c][keep]).astype(np.float64)
        total = diff * diff if total is None else total + diff * diff
    return np.sqrt(total)


def likely_units(spacing_m: float) -> str | None:
    """"mm" or "cm" when a spacing read as metres is implausibly large, else None."""
    if not spacing_m > MAX_METRE_SPACING:
        return None
    return min(("mm", "cm"), key=lambda u: abs(math.log(spacing_m * XYZ_UNITS[u] / _TYPICAL_SPACING)))


def units_advice(guess: str | None) -> str:
    """What to do about clouds in the wrong unit, for the CLI and the app: ``guess`` is "mm" or
    "cm" when the spacing says which (:func:`likely_units`), else None."""
    if guess:
        return f"the coordinates look like {UNIT_NAMES[guess]}: pass --xyz-units {guess} ({APP_CONTROL})"
    return f"pass --xyz-units mm|cm|m to say which unit the coordinates are in ({APP_CONTROL})"


def _hint(units: str | None, guess: str | None) -> str:
    given = f" (read as {UNIT_NAMES.get(units, units)})" if units not in (None, "m") else ""
    return f"{given}; {units_advice(guess)}"


def check_fit_spacing(spacings: list[tuple[str, float]], units: str | None) -> float | None:
    """Median training spacing in metres (None without xyz); DataError naming a file when the
    training clouds are implausibly coarse for metres."""
    values = [s for _, s in spacings if s > 0]
    if not values:
        return None
    median = float(np.median(values))
    guess = likely_units(median)
    if guess:
        source = min(spacings, key=lambda fs: abs(fs[1] - median))[0]
        raise DataError(
            source,
            f"median point spacing {median:.4g} per pixel is too coarse for metres{_hint(units, guess)}",
        )
    return median


def check_sample_spacing(sample: Sample, train_spacing: float | None, units: str | None,
                         spacing: float | None = None) -> None:
    """DataError when the sample's point spacing (metres, after ``units``) is ~100× or ~1000×
    (more than MAX_RATIO×) off the training spacing, or implausible for metres without one.
    ``spacing``: the sample's :func:`point_spacing` if already measured; else it is measured on
    :data:`CHECK_ROWS` rows (a unit mistake is a factor of 10-1000: a median over a few thousand
    pixel pairs finds it as surely as one over all of them, at a fraction of the cost)."""
    if sample.xyz is None:
        return
    if spacing is None:  # a part too small for the sampled rows is measured on every row
        spacing = point_spacing(sample.xyz, CHECK_ROWS) or point_spacing(sample.xyz)
    if spacing <= 0:
        return
    source = str(sample.xyz_path or sample.source())
    if train_spacing and train_spacing > 0:
        ratio = spacing / train_spacing
        if 1 / MAX_RATIO <= ratio <= MAX_RATIO:
            return
        guess = likely_units(spacing) if ratio > 1 else None
        raise DataError(
            source,
            f"median point spacing {spacing:.4g} per pixel is {ratio:.3g}× the training data's "
            f"{train_spacing:.4g} m{_hint(units, guess)}",
        )
    guess = likely_units(spacing)
    if guess:
        raise DataError(source, f"median point spacing {spacing:.4g} per pixel is too coarse for metres{_hint(units, guess)}")
