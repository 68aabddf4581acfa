"""Demo defects (dent, bump, stain, crack, hole) applied to an object model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.demo.objects import _Grid, _Object
from core.demo.textures import _Textures, _sample_wrapped, _smoothstep
from core.errors import UserError


DEFECT_TYPES: dict[str, str] = {
    "dent": "geometry",
    "bump": "geometry",
    "stain": "colour",
    "crack": "both",
    "hole": "both",
}



@dataclass
class _DefectSpec:
    kind: str
    centre: tuple[float, float]  # object coordinates, metres
    params: dict = field(default_factory=dict)


def _blob_q(a, b, centre, radius, rng) -> np.ndarray:
    """Normalised distance (< 1 inside) to an irregular, randomly rotated, elongated blob;
    the blob lies within 1.8 × radius of its centre."""
    cx, cy = centre
    ang = rng.uniform(0, np.pi)
    elong = rng.uniform(1.0, 1.6)
    coef = rng.normal(0, 0.08, 3)
    phase = rng.uniform(0, 2 * np.pi, 3)
    da, db = a - cx, b - cy
    u = (da * np.cos(ang) + db * np.sin(ang)) / elong
    v = -da * np.sin(ang) + db * np.cos(ang)
    d = np.hypot(u, v) * np.sqrt(elong)
    phi = np.arctan2(v, u)
    wob = 1 + sum(c * np.cos(k * phi + ph) for c, k, ph in zip(coef, (2, 3, 5), phase))
    return d / (radius * np.clip(wob, 0.6, 1.4))


def _polyline_distance(a, b, pts: np.ndarray) -> np.ndarray:
    """Distance (m) from points (a, b) to a polyline given as (k, 2) vertices."""
    best = np.full(a.shape, np.inf)
    for p, q in zip(pts[:-1], pts[1:]):
        dv = q - p
        t = np.clip(((a - p[0]) * dv[0] + (b - p[1]) * dv[1]) / (dv @ dv), 0, 1)
        best = np.minimum(best, np.hypot(a - p[0] - t * dv[0], b - p[1] - t * dv[1]))
    return best


_STAIN_TINTS = {
    "oil": np.array([0.45, 0.42, 0.38]),
    "rust": np.array([0.95, 0.62, 0.40]),
    "ink": np.array([0.55, 0.62, 0.95]),
}


def _apply_defect(
    obj: _Object, g: _Grid, kind: str, rng: np.random.Generator, strength: float, tex: _Textures,
    size_scale: float = 1.0,
) -> tuple[_Object, _DefectSpec]:
    """A copy of ``obj`` with one defect of ``kind`` on its surface; amplitude × strength,
    lateral size × size_scale. Sizes at size_scale 1 (m): dent/bump radius 1.7-3.2 mm, stain
    2.2-4.5 mm, crack 5-17 mm long and 0.7-1.2 mm wide, hole radius 0.9-1.6 mm. The random
    draws do not depend on either factor, so the place and shape stay the same."""
    cells = np.flatnonzero(obj.defect_region)
    if cells.size == 0:
        raise RuntimeError("object has no room for a defect")
    c = int(rng.choice(cells))
    centre = (float(g.a.flat[c]), float(g.b.flat[c]))
    height = obj.height.copy()
    albedo = obj.albedo.copy()
    spec = _DefectSpec(kind, centre)

    def local(half):
        win = g.window(centre, half)
        on = (obj.coverage[win] >= 1.0) & (obj.height[win] > 0)
        return win, g.a[win], g.b[win], on

    if kind in ("dent", "bump"):
        radius = rng.uniform(0.0017, 0.0032) * size_scale
        amp = rng.uniform(0.0006, 0.0012) * strength
        win, a, b, on = local(1.8 * radius)
        prof = np.clip(1 - _blob_q(a, b, centre, radius, rng) ** 2, 0, None) * on
        height[win] = np.maximum(height[win] + (amp if kind == "bump" else -amp) * prof, 0.0)
        spec.params = {"radius_m": radius, "amplitude_m": amp}
    elif kind == "stain":
        radius = rng.uniform(0.0022, 0.0045) * size_scale
        win, a, b, on = local(4.0 * radius)
        q = _blob_q(a, b, centre, radius, rng)
        ox, oy = rng.uniform(0, 256, 2)
        texel = 0.0004 * size_scale  # the ragged edge scales with the stain
        q = q + 0.25 * _sample_wrapped(tex.coarse, a / texel + ox, b / texel + oy)
        alpha = (np.clip((1 - q) * 4, 0, 1) * min(1.0, 0.6 * strength) * on)[..., None]
        name = str(rng.choice(sorted(_STAIN_TINTS)))
        albedo[win] = albedo[win] * (1 - alpha) + albedo[win] * _STAIN_TINTS[name] * alpha
        spec.params = {"radius_m": radius, "tint": name}
    elif kind == "crack":
        n_seg = int(rng.integers(4, 8))
        ang = rng.uniform(0, 2 * np.pi)
        pts = [np.array(centre)]
        for _ in range(n_seg):
            ang += rng.normal(0, 0.5)
            step = rng.uniform(0.0012, 0.0024) * size_scale
            pts.append(pts[-1] + step * np.array([np.cos(ang), np.sin(ang)]))
        pts = np.array(pts)
        pts -= pts.mean(0) - np.array(centre)  # centre the crack on the chosen point
        half_w = rng.uniform(0.00035, 0.00060) * size_scale
        depth = rng.uniform(0.0006, 0.0012) * strength
        reach = float(np.hypot(*(pts - np.array(centre)).T).max()) + half_w + g.cell
        win, a, b, on = local(reach)
        prof = np.clip(1 - _polyline_distance(a, b, pts) / half_w, 0, None) * on
        height[win] = np.maximum(height[win] - depth * prof, 0.0)
        albedo[win] = albedo[win] * (1 - min(0.9, 0.55 * strength) * prof)[..., None]
        spec.params = {"length_m": float(np.sum(np.hypot(*np.diff(pts, axis=0).T))), "depth_m": depth}
    elif kind == "hole":
        radius = rng.uniform(0.0009, 0.0016) * size_scale
        depth = rng.uniform(0.002, 0.004) * strength
        win, a, b, on = local(1.8 * radius)
        prof = _smoothstep(1.0, 0.8, _blob_q(a, b, centre, radius, rng)) * on
        height[win] = np.maximum(height[win] - depth * prof, 0.0)
        albedo[win] = albedo[win] * (1 - min(0.9, 0.7 * strength) * prof)[..., None]
        spec.params = {"radius_m": radius, "depth_m": depth}
    else:
        raise UserError(f"unknown defect type {kind!r}; known: {', '.join(DEFECT_TYPES)}")
    out = _Object(
        height, albedo, obj.coverage, obj.defect_region, obj.radius, obj.specular,
        obj.shininess, obj.light_azimuth,
    )
    return out, spec
