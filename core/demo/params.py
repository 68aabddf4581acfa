"""Demo generator parameters: image size, counts, variation factors and their check."""

from __future__ import annotations



from core.errors import UserError


DEFAULT_SIZE = 256
DEFAULT_COUNTS = {"n_train": 40, "n_validation": 8, "n_test_good": 8, "n_test_per_defect": 5}


# Variation factors: name -> allowed range (inclusive) and the standard scene's value; the
# marker stores them only when not at that value, so a dataset made with the defaults is
# byte-identical to one made before they existed, and markers without them read as standard.
VARIATION_RANGES: dict[str, tuple[float, float]] = {
    "object_scale": (0.5, 2.0),
    "noise_scale": (0.0, 5.0),
    "defect_scale": (0.3, 3.0),
    "flying_pixels": (0.0, 1.0),
    "dent_shading": (0.0, 1.0),
    "print_variation": (0.0, 1.0),
}
VARIATION_DEFAULTS: dict[str, float] = {
    "object_scale": 1.0,
    "noise_scale": 1.0,
    "defect_scale": 1.0,
    "flying_pixels": 0.0,
    "dent_shading": 1.0,
    "print_variation": 0.0,
}
_VARIATION_WHAT = {
    "object_scale": "object scale",
    "noise_scale": "noise scale",
    "defect_scale": "defect scale",
    "flying_pixels": "flying pixels share",
    "dent_shading": "dent shading",
    "print_variation": "print variation",
}


def _variation(object_scale, noise_scale, defect_scale, flying_pixels=0.0,
               dent_shading=1.0, print_variation=0.0) -> tuple[float, float, float, float, float, float]:
    """The variation factors as floats; UserError when one is not a number in its range."""
    out = []
    values = (object_scale, noise_scale, defect_scale, flying_pixels, dent_shading, print_variation)
    for name, value in zip(VARIATION_RANGES, values):
        lo, hi = VARIATION_RANGES[name]
        what = _VARIATION_WHAT[name]
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{what} must be a number between {lo:g} and {hi:g}, got {value!r}") from None
        if isinstance(value, bool) or not lo <= x <= hi:  # also rejects NaN
            raise UserError(f"{what} must be between {lo:g} and {hi:g}, got {value!r}")
        out.append(x)
    return tuple(out)
