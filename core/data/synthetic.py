"""Built-in demo dataset: procedural RGB + organized point-cloud scans in the MVTec 3D-AD layout.

Each sample is a small object lying on a slightly tilted table, seen from above by a simulated
structured-light sensor (pinhole camera at ~0.4 m, projector 60 mm to the side):

* xyz: organized H×W×3 float32 point cloud in metres (camera frame), ray-cast pixel by pixel
  against a height field, with depth noise (~0.1-0.25 mm), random dropouts, and missing data
  on steep walls and in the projector's shadow. Missing points are exactly (0, 0, 0).
* rgb: the same rays' surface colour (albedo) shaded by one directional light (Lambert, plus a
  weak highlight on plastic), cast shadows and vignetting, registered pixel-to-pixel with xyz.
* gt (test only): 0/255 uint8, the pixels whose geometry or colour the defect changed.

Categories: ``puck`` (moulded plastic disc, Ø60 × 10 mm: filleted edge, central recess,
embossed ring, printed red rings, "LSFA" logo and an orientation mark) and ``cookie`` (baked
dome, Ø~54 × ~13 mm: irregular outline, lumpy surface, darker rim, 5-9 raised chocolate chips
at random places). Every sample has a random in-plane rotation, a few mm of shift, its own
table tilt, light direction, exposure and colour jitter.

Defects: dent/bump change geometry only, stain changes colour only, crack/hole change both.
``defect_strength`` scales their amplitude (depth, height, colour contrast), not their size.

Variation factors (all 1.0 by default, which gives exactly the standard dataset):
``object_scale`` scales the objects' physical size (diameter and height; the camera stays),
``noise_scale`` the sensor's depth/RGB noise and random dropout rates, ``defect_scale`` the
defects' lateral size (radius, length, width). None of them changes the random draws.

Every sample draws from its own random streams derived from (seed, category, split/label,
index), so the same seed gives byte-identical files and changing the counts does not change
the other samples. The pose/appearance, defect and sensor-noise streams are separate, which
lets :func:`render_sample_pair` render a sample with and without its defect.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from core import progress as progress_mod
from core.errors import UserError

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
MARKER_NAME = ".lsfa_demo.json"  # written at the dataset root; identifies a generated dataset

DEMO_CATEGORIES: tuple[str, ...] = ("puck", "cookie")
DEFECT_TYPES: dict[str, str] = {
    "dent": "geometry",
    "bump": "geometry",
    "stain": "colour",
    "crack": "both",
    "hole": "both",
}

DEFAULT_SIZE = 256
DEFAULT_COUNTS = {"n_train": 40, "n_validation": 8, "n_test_good": 8, "n_test_per_defect": 5}

# Sensor model (fixed for the whole dataset, like one real sensor).
_FOCAL_PER_PIXEL = 3.3  # fx = fy = 3.3 * size: a 60 mm object fills ~50 % of the frame at 0.4 m
_CAMERA_DISTANCE_M = 0.40  # to the table at the image centre
_PROJECTOR_OFFSET_M = np.array([0.06, 0.0, 0.0])  # structured-light baseline along +x
_GRID_HALF_EXTENT_M = 0.036  # object height-field grid covers ±36 mm in object coordinates
_MARCH_STEP_M = 0.0015  # camera-ray march step in height above the table (then bisection)
_SHADOW_STEP_M = 0.0008  # shadow-ray march step in height
_DROPOUT_RATE = 0.004  # isolated random dropouts (share of pixels, at noise_scale 1)
_CLUSTER_RATE = 0.015  # clustered dropouts: pixels whose speckle level is above 1 - this


# --------------------------------------------------------------------------------------------
# Random streams and textures


def _key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _sample_streams(seed: int, category: str, folder: str, index: int) -> dict[str, np.random.Generator]:
    """Independent generators for one sample: pose/appearance, defect and sensor noise."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(_key(category), _key(folder), int(index)))
    pose, defect, noise = ss.spawn(3)
    return {
        "scene": np.random.default_rng(pose),
        "defect": np.random.default_rng(defect),
        "noise": np.random.default_rng(noise),
    }


def _periodic_noise(rng: np.random.Generator, n: int, beta: float, lowpass: float) -> np.ndarray:
    """n×n tileable noise with a 1/f^beta spectrum, zero mean, unit std (float32)."""
    white = rng.standard_normal((n, n))
    f = np.fft.fftfreq(n)
    fr = np.hypot(f[:, None], f[None, :])
    fr[0, 0] = 1.0
    amp = fr ** (-beta / 2) * np.exp(-((fr / lowpass) ** 2))
    amp[0, 0] = 0.0
    out = np.fft.ifft2(np.fft.fft2(white) * amp).real
    out -= out.mean()
    out /= out.std() + 1e-12
    return out.astype(np.float32)


@dataclass(frozen=True)
class _Textures:
    """Tileable noise textures of one (seed, category); sampled with a per-sample offset."""

    coarse: np.ndarray  # smooth blotches
    fine: np.ndarray  # grain
    belt: np.ndarray  # table/conveyor texture


@lru_cache(maxsize=8)
def _textures(seed: int, category: str) -> _Textures:
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(_key(category), _key("textures")))
    r = [np.random.default_rng(s) for s in ss.spawn(3)]
    return _Textures(
        coarse=_periodic_noise(r[0], 256, 2.5, 0.08),
        fine=_periodic_noise(r[1], 256, 1.0, 0.45),
        belt=_periodic_noise(r[2], 256, 1.6, 0.3),
    )


def _sample_wrapped(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a tileable texture at float texel coordinates (any shape)."""
    from scipy.ndimage import map_coordinates

    return map_coordinates(tex, np.stack([y, x]), order=1, mode="grid-wrap", prefilter=False)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


# --------------------------------------------------------------------------------------------
# Object models (height field + albedo on a grid in object coordinates)


@dataclass
class _Grid:
    size: int  # image size (pixels) this grid is made for
    n: int  # cells per side
    cell: float  # metres per cell
    a: np.ndarray  # n×n object x coordinate (m), columns
    b: np.ndarray  # n×n object y coordinate (m), rows
    half: float = _GRID_HALF_EXTENT_M  # the grid covers ±half (m) in both coordinates
    object_scale: float = 1.0  # objects built for this grid are this many times nominal size

    @staticmethod
    def for_size(size: int, object_scale: float = 1.0) -> "_Grid":
        """Grid of ~2 cells per pixel covering ±36 mm × ``object_scale`` (the object's extent)."""
        pixel_m = _CAMERA_DISTANCE_M / (_FOCAL_PER_PIXEL * size)
        half = _GRID_HALF_EXTENT_M * object_scale
        n = int(np.ceil(2 * half / (0.5 * pixel_m)))
        cell = 2 * half / (n - 1)
        coords = np.linspace(-half, half, n)
        a, b = np.meshgrid(coords, coords, indexing="xy")
        return _Grid(size, n, cell, a, b, half, object_scale)

    def window(self, centre: tuple[float, float], half: float) -> tuple[slice, slice]:
        """Index window (rows, cols) covering the square centre ± half (m)."""
        lo = -self.half
        c0 = max(int(np.floor((centre[0] - half - lo) / self.cell)), 0)
        c1 = min(int(np.ceil((centre[0] + half - lo) / self.cell)) + 1, self.n)
        r0 = max(int(np.floor((centre[1] - half - lo) / self.cell)), 0)
        r1 = min(int(np.ceil((centre[1] + half - lo) / self.cell)) + 1, self.n)
        return slice(r0, r1), slice(c0, c1)


@dataclass
class _Object:
    """One object instance. Grids are n×n (albedo n×n×3, linear RGB in [0, 1])."""

    height: np.ndarray  # metres above the table
    albedo: np.ndarray
    coverage: np.ndarray  # 1 on the object, 0 on the table (float, for albedo blending)
    defect_region: np.ndarray  # bool: where a defect centre may go
    radius: float  # metres; the object lies within this radius of the origin
    specular: float  # strength of the highlight (0 = matte)
    shininess: float
    light_azimuth: float  # radians, base direction of the light for this category


_GLYPHS = {
    "L": ["10000", "10000", "10000", "10000", "10000", "10000", "11111"],
    "S": ["01111", "10000", "10000", "01110", "00001", "00001", "11110"],
    "F": ["11111", "10000", "10000", "11110", "10000", "10000", "10000"],
    "A": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
}


def _text_bitmap(text: str) -> np.ndarray:
    cols = []
    for i, ch in enumerate(text):
        if i:
            cols.append(np.zeros((7, 1)))
        cols.append(np.array([[c == "1" for c in row] for row in _GLYPHS[ch]], dtype=float))
    return np.concatenate(cols, axis=1)


def _printed_text(g: _Grid, text: str, centre: tuple[float, float], letter_h: float) -> np.ndarray:
    """Anti-aliased ink coverage in [0, 1] of a bitmap-font text on the grid."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    bm = _text_bitmap(text)
    up = 8
    big = gaussian_filter(np.kron(bm, np.ones((up, up))), sigma=up * 0.25)
    big = np.pad(big, up, constant_values=0.0)
    px = letter_h / 7.0  # metres per bitmap pixel
    col = (g.a - centre[0]) / px + bm.shape[1] / 2
    row = (centre[1] - g.b) / px + bm.shape[0] / 2  # text reads with +b up
    ink = map_coordinates(big, [row * up + up, col * up + up], order=1, cval=0.0)
    return _smoothstep(0.35, 0.65, ink)


def _ring(r: np.ndarray, r0: float, r1: float, soft: float) -> np.ndarray:
    return _smoothstep(r0 - soft, r0 + soft, r) * (1 - _smoothstep(r1 - soft, r1 + soft, r))


_PUCK_R = 0.030  # puck radius (m)


@lru_cache(maxsize=4)
def _puck_layers(size: int, object_scale: float = 1.0) -> dict[str, np.ndarray]:
    """The puck's fixed geometry and print layers on the nominal grid of ``size`` and
    ``object_scale`` (read-only; heights unscaled)."""
    g = _nominal_grid(size, object_scale)
    R, T, fil = _PUCK_R, 0.010, 0.0015
    r = np.hypot(g.a, g.b)
    h = np.where(r < R - fil, T, T - fil + np.sqrt(np.clip(fil**2 - (r - R + fil) ** 2, 0, None)))
    h = np.where(r <= R, h, 0.0)
    h -= 0.0005 * (1 - _smoothstep(0.0050, 0.0058, r))  # central recess, 0.5 mm deep
    h += 0.00035 * _ring(r, 0.0210, 0.0230, 0.0003)  # embossed ring, 0.35 mm high
    rings = np.clip(_ring(r, 0.0150, 0.0158, 0.0001) + _ring(r, 0.0252, 0.0258, 0.0001), 0, 1)
    logo = _printed_text(g, "LSFA", (0.0, -0.0095), 0.0045)
    # orientation mark: a filled triangle near the rim at +b
    mark = ((g.b > 0.0175) & (g.b < 0.0175 + 0.004 - 1.4 * np.abs(g.a))).astype(float)
    out = {"height": h, "flat_top": r < R - fil, "rings": rings, "logo": logo, "mark": mark,
           "inside": r <= R, "region": r < R - 0.004}
    for v in out.values():
        v.flags.writeable = False
    return out


def _build_puck(g: _Grid, tex: _Textures, rng: np.random.Generator) -> _Object:
    """Moulded plastic disc (Ø60 × 10 mm) with a filleted top edge, a shallow central recess,
    an embossed ring, printed red rings, a printed "LSFA" logo and an orientation mark."""
    layers = _puck_layers(g.size, g.object_scale)
    ox, oy = rng.uniform(0, 256, 2)
    tx, ty = g.a / 0.0004 + ox, g.b / 0.0004 + oy
    fine = _sample_wrapped(tex.fine, tx, ty)
    h = layers["height"] + 0.00001 * fine * layers["flat_top"]  # 10 µm grain

    base = np.array([0.80, 0.78, 0.71]) * rng.uniform(0.97, 1.03, 3)
    grain = 1 + 0.025 * fine + 0.03 * _sample_wrapped(tex.coarse, g.a / 0.0015 + ox, g.b / 0.0015 + oy)
    alb = base[None, None, :] * grain[..., None]
    red = np.array([0.62, 0.10, 0.08]) * rng.uniform(0.95, 1.05)
    blue = np.array([0.08, 0.12, 0.45]) * rng.uniform(0.95, 1.05)
    shift = tuple(int(v) for v in np.round(rng.normal(0, 0.0002, 2) / g.cell))  # print jitter
    for name, colour in (("rings", red), ("logo", blue), ("mark", blue)):
        ink = np.roll(layers[name], shift, axis=(0, 1))[..., None]
        alb = alb * (1 - ink) + colour[None, None, :] * ink
    cov = layers["inside"].astype(np.float32)
    return _Object(h, alb, cov, layers["region"].copy(), _PUCK_R + 2 * g.cell, 0.25, 30.0, np.deg2rad(135.0))


def _build_cookie(g: _Grid, tex: _Textures, rng: np.random.Generator) -> _Object:
    """Baked dome (Ø~54 × ~13 mm) with an irregular outline, a lumpy surface, a darker baked rim
    and 5-9 slightly raised chocolate chips at random places."""
    full = g.a.shape
    win = g.window((0.0, 0.0), 0.0300)  # the cookie lies within 30 mm of its centre
    ga, gb = g.a[win], g.b[win]
    r = np.hypot(ga, gb)
    th = np.arctan2(gb, ga)
    outline = np.ones_like(r)
    for k, amp, phase in zip(range(2, 6), rng.normal(0, 0.012, 4), rng.uniform(0, 2 * np.pi, 4)):
        outline += amp * np.cos(k * th + phase)
    R = 0.027 * rng.uniform(0.97, 1.03) * np.clip(outline, 0.92, 1.06)
    H = 0.013 * rng.uniform(0.95, 1.05)
    rho = r / R
    inside = rho < 1
    dome = H * np.clip(1 - rho**2, 0, None) ** 0.55
    ox, oy = rng.uniform(0, 256, 2)
    lump = _sample_wrapped(tex.coarse, ga / 0.0012 + ox, gb / 0.0012 + oy)
    grain = _sample_wrapped(tex.fine, ga / 0.0003 + ox, gb / 0.0003 + oy)
    edge = _smoothstep(0.0, 0.25, 1 - rho)
    h = (dome + (0.00022 * lump + 0.00003 * grain) * edge) * inside

    base = np.array([0.80, 0.55, 0.27]) * rng.uniform(0.96, 1.04, 3)
    baked = 0.72 + 0.28 * _smoothstep(0.05, 0.35, 1 - rho)
    shade = (1 + 0.07 * lump + 0.04 * grain) * baked
    alb = base[None, None, :] * shade[..., None]

    def widen(x, fill=0.0):
        out = np.full(full + x.shape[2:], fill, dtype=x.dtype)
        out[win] = x
        return out

    h, alb, inside, grain = widen(h), widen(alb, 0.5), widen(inside, False), widen(grain)
    r = np.hypot(g.a, g.b)
    region = widen(rho < 0.75, False)
    chips = np.zeros_like(r)
    chip_h = np.zeros_like(r)
    for _ in range(int(rng.integers(5, 10))):
        cr = 0.80 * np.sqrt(rng.uniform(0, 1))
        ca = rng.uniform(0, 2 * np.pi)
        cx, cy = cr * 0.027 * np.cos(ca), cr * 0.027 * np.sin(ca)
        rad = rng.uniform(0.0013, 0.0023)
        p3, p5 = rng.uniform(0, 6.3, 2)
        keep_out = rad * 1.3 + 0.0035  # keep defects off the chips
        win = g.window((cx, cy), keep_out)
        a, b = g.a[win], g.b[win]
        d = np.hypot(a - cx, b - cy)
        phi = np.arctan2(b - cy, a - cx)
        q = d / (rad * (1 + 0.18 * np.cos(3 * phi + p3) + 0.1 * np.cos(5 * phi + p5)))
        chips[win] = np.maximum(chips[win], _smoothstep(1.0, 0.85, q))
        chip_h[win] = np.maximum(chip_h[win], 0.0005 * np.sqrt(np.clip(1 - q**2, 0, None)))
        region[win] &= d > keep_out
    h = h + chip_h * inside
    chip_col = np.array([0.20, 0.11, 0.06]) * rng.uniform(0.9, 1.1)
    alb = alb * (1 - chips[..., None]) + chip_col[None, None, :] * chips[..., None] * (
        1 + 0.05 * grain[..., None]
    )
    cov = inside.astype(np.float32)
    radius = float(np.max(r[inside])) + 2 * g.cell
    return _Object(h, alb, cov, region & inside, radius, 0.04, 8.0, np.deg2rad(60.0))


_BUILDERS = {"puck": _build_puck, "cookie": _build_cookie}


def _build_object(category: str, size: int, object_scale: float, tex: _Textures,
                  rng: np.random.Generator) -> _Object:
    """The object of ``category`` on the grid of (size, object_scale), ``object_scale`` times
    its nominal size in every direction: the builders work in nominal coordinates (the grid's
    metres / object_scale), then heights and the radius are scaled back to metres. Textures,
    print and chips scale with the object; the grid keeps ~2 cells per pixel."""
    obj = _BUILDERS[category](_nominal_grid(size, object_scale), tex, rng)
    if object_scale != 1.0:
        obj.height = obj.height * object_scale
        obj.radius = obj.radius * object_scale
    return obj


# --------------------------------------------------------------------------------------------
# Defects


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


# --------------------------------------------------------------------------------------------
# Scene, sensor and renderer


@dataclass
class _Pose:
    n: np.ndarray  # table normal (camera frame, pointing at the camera)
    p0: np.ndarray  # table point under the image centre
    e1: np.ndarray  # table axes (camera frame)
    e2: np.ndarray
    rot: float  # in-plane rotation of the object (rad)
    shift: np.ndarray  # object position on the table (m, table axes)
    light: np.ndarray  # unit vector towards the light (camera frame)
    ambient: float
    gain: float
    belt_offset: np.ndarray
    belt_colour: np.ndarray


def _draw_pose(rng: np.random.Generator, light_azimuth: float) -> _Pose:
    tilt = np.deg2rad(3.0) + rng.normal(0, np.deg2rad(1.0))  # conveyor tilt + per-sample wobble
    tilt_dir = rng.normal(np.deg2rad(20.0), np.deg2rad(25.0))
    n = np.array([np.sin(tilt) * np.cos(tilt_dir), np.sin(tilt) * np.sin(tilt_dir), -np.cos(tilt)])
    p0 = np.array([0.0, 0.0, _CAMERA_DISTANCE_M * rng.uniform(0.985, 1.015)])
    e1 = np.array([1.0, 0.0, 0.0]) - n[0] * n
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    elev = np.deg2rad(rng.uniform(54, 60))
    az = light_azimuth + rng.normal(0, np.deg2rad(8))
    # light above the table: component along n (towards the camera) plus a horizontal part
    light = np.sin(elev) * n + np.cos(elev) * (np.cos(az) * e1 + np.sin(az) * e2)
    return _Pose(
        n=n, p0=p0, e1=e1, e2=e2,
        rot=rng.uniform(0, 2 * np.pi),
        shift=rng.uniform(-0.005, 0.005, 2),
        light=light / np.linalg.norm(light),
        ambient=rng.uniform(0.23, 0.28),
        gain=rng.uniform(0.96, 1.04),
        belt_offset=rng.uniform(0, 256, 2),
        belt_colour=np.array([0.16, 0.17, 0.18]) * rng.uniform(0.9, 1.1, 3),
    )


@dataclass
class _SensorNoise:
    """Sensor noise fields, drawn before rendering so defect/no-defect renders share them."""

    depth: np.ndarray  # S×S, unit normal (white + correlated)
    depth_sigma: float  # metres
    dropout: np.ndarray  # S×S uniform in [0, 1): random dropouts
    speckle: np.ndarray  # S×S uniform: clustered dropouts
    grazing: np.ndarray  # S×S uniform: steep-angle dropouts
    rgb: np.ndarray  # S×S×3 unit normal
    rgb_sigma: float  # in [0, 1] intensity units
    dropout_rate: float = _DROPOUT_RATE  # share of isolated random dropouts
    cluster_rate: float = _CLUSTER_RATE  # speckle level above which clustered dropouts fall


def _draw_noise(rng: np.random.Generator, size: int, noise_scale: float = 1.0) -> _SensorNoise:
    """The sensor noise fields of one sample; ``noise_scale`` multiplies the depth and RGB
    noise and the random dropout rates (not the draws, which stay the same)."""
    from scipy.ndimage import zoom

    white = rng.standard_normal((size, size))
    lo = zoom(rng.standard_normal((size // 8 + 1, size // 8 + 1)), 8, order=1)[:size, :size]
    depth = (0.8 * white + 0.6 * lo).astype(np.float32)
    speckle = zoom(rng.uniform(0, 1, (size // 4 + 1, size // 4 + 1)), 4, order=1)[:size, :size]
    return _SensorNoise(
        depth=depth,
        depth_sigma=float(rng.uniform(0.00010, 0.00022)) * noise_scale,
        dropout=rng.random((size, size), dtype=np.float32),
        speckle=speckle,
        grazing=rng.random((size, size), dtype=np.float32),
        rgb=rng.standard_normal((size, size, 3), dtype=np.float32),
        rgb_sigma=float(rng.uniform(0.006, 0.010)) * noise_scale,
        dropout_rate=_DROPOUT_RATE * noise_scale,
        cluster_rate=_CLUSTER_RATE * noise_scale,
    )


class _Lookup:
    """Bilinear lookups into the object's grids at object coordinates (zero outside)."""

    def __init__(self, obj: _Object, g: _Grid):
        self.cell = g.cell
        self.origin = -g.half - g.cell  # coordinate of padded index 0

        def pad(x):
            widths = ((1, 1), (1, 1)) + ((0, 0),) * (x.ndim - 2)
            return np.pad(np.asarray(x, dtype=np.float64), widths)

        self.height = pad(obj.height)
        gy, gx = np.gradient(obj.height, g.cell)
        self.grad = pad(np.stack([gx, gy], axis=-1))
        self.albedo = pad(obj.albedo)
        self.coverage = pad(obj.coverage)

    def index(self, a, b):
        """Object coordinates (m) -> fractional grid indices (column, row)."""
        return (a - self.origin) / self.cell, (b - self.origin) / self.cell

    def sample(self, arr, a, b):
        return self.sample_index(arr, *self.index(a, b))

    @staticmethod
    def sample_index(arr, x, y):
        """Bilinear value of ``arr`` (rows×cols[×C]) at fractional (column, row) indices;
        the zero border extends outside."""
        rows, cols = arr.shape[:2]
        x = np.clip(x, 0, cols - 1.000001)
        y = np.clip(y, 0, rows - 1.000001)
        x0 = x.astype(np.int64)
        y0 = y.astype(np.int64)
        fx = x - x0
        fy = y - y0
        i = y0 * cols + x0
        flat = arr.reshape(rows * cols, -1) if arr.ndim == 3 else arr.reshape(-1)
        if arr.ndim == 3:
            fx, fy = fx[:, None], fy[:, None]
        top = flat[i] + fx * (flat[i + 1] - flat[i])
        bot = flat[i + cols] + fx * (flat[i + cols + 1] - flat[i + cols])
        return top + fy * (bot - top)


def _segment_near(a0, b0, a1, b1, centre, radius) -> np.ndarray:
    """True where the 2D segment (a0,b0)-(a1,b1) passes within ``radius`` of ``centre``."""
    a0 = a0 - centre[0]
    b0 = b0 - centre[1]
    da = a1 - centre[0] - a0
    db = b1 - centre[1] - b0
    t = np.clip(-(a0 * da + b0 * db) / (da * da + db * db + 1e-30), 0, 1)
    pa = a0 + t * da
    pb = b0 + t * db
    return pa * pa + pb * pb < radius * radius


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` (k×3) scaled to unit length."""
    return v / np.sqrt(np.einsum("ij,ij->i", v, v))[:, None]


@lru_cache(maxsize=4)
def _rays(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ray directions (npx×3, z = 1, camera frame) and vignetting factors."""
    f = _FOCAL_PER_PIXEL * size
    c = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    d = np.stack([(xs - c) / f, (ys - c) / f, np.ones_like(xs)], axis=-1).reshape(-1, 3)
    r_img = np.hypot(xs - c, ys - c).ravel() / (c * np.sqrt(2))
    d.flags.writeable = False
    return d, 1 - 0.18 * r_img**2


class _View:
    """Camera/table/object geometry of one pose: maps rays and directions to object coordinates."""

    def __init__(self, pose: _Pose, size: int):
        self.pose = pose
        self.d, self.vignette = _rays(size)
        self.nd = self.d @ pose.n
        self.np0 = pose.n @ pose.p0
        self.ku, self.kv = self.d @ pose.e1, self.d @ pose.e2
        self.pu, self.pv = pose.p0 @ pose.e1, pose.p0 @ pose.e2
        self.c, self.s = np.cos(-pose.rot), np.sin(-pose.rot)

    def rotate(self, u, v):
        """Table-axis components -> object-axis components."""
        return self.c * u - self.s * v, self.s * u + self.c * v

    def ray_t(self, sig, pix):
        """Ray parameter (camera z, m) where pixel rays ``pix`` are ``sig`` m above the table."""
        return (sig + self.np0) / self.nd[pix]

    def ray_uv(self, t, pix):
        return t * self.ku[pix] - self.pu, t * self.kv[pix] - self.pv

    def ray_ab(self, sig, pix):
        u, v = self.ray_uv(self.ray_t(sig, pix), pix)
        return self.rotate(u - self.pose.shift[0], v - self.pose.shift[1])

    def dir_obj(self, dirs):
        """Camera-frame directions (k×3 or 3) -> (object a, object b, along the normal)."""
        a, b = self.rotate(dirs @ self.pose.e1, dirs @ self.pose.e2)
        return a, b, dirs @ self.pose.n


@dataclass
class _Render:
    """Noise-free render of pixels ``pix`` (flat indices); arrays are per pixel (m or m×3)."""

    pix: np.ndarray
    xyz: np.ndarray  # float64 camera-frame surface point (every ray hits the table or object)
    occluded: np.ndarray  # bool: no 3D point for geometric reasons (steep wall / projector shadow)
    grazing: np.ndarray  # in [0, 1]: how likely a steep-angle point is lost
    albedo: np.ndarray  # linear RGB surface colour
    rgb: np.ndarray  # linear shaded RGB (before sensor noise and gamma)
    on_object: np.ndarray  # bool: the pixel sees the object
    a: np.ndarray  # hit point, object coordinates (m)
    b: np.ndarray
    sig: np.ndarray  # hit point height above the table (m)
    to_proj: np.ndarray  # unit vectors hit point -> projector (camera frame)

    def merged_into(self, full: "_Render") -> "_Render":
        """``full`` with this render's pixels replaced."""
        out = {}
        for name in ("xyz", "occluded", "grazing", "albedo", "rgb", "on_object", "a", "b", "sig", "to_proj"):
            arr = getattr(full, name).copy()
            arr[self.pix] = getattr(self, name)
            out[name] = arr
        return _Render(pix=full.pix, **out)


def _shadowed(look, view, obj_radius, ceiling, a0, b0, sig0, dirs, near) -> np.ndarray:
    """True where the straight path from surface points (a0, b0, sig0) along camera-frame
    directions ``dirs`` (k×3 or 3) passes under the height field before reaching ``ceiling``.
    Only points ``near`` (indices) can be shadowed; callers pass all within reach."""
    m = a0.size
    dirs = dirs[near] if np.ndim(dirs) == 2 else dirs
    a0, b0, sig0 = a0[near], b0[near], sig0[near]
    w_a, w_b, w_n = view.dir_obj(dirs)
    w_a, w_b, w_n = (np.broadcast_to(x, (near.size,)) for x in (w_a, w_b, w_n))
    w_n = np.maximum(w_n, 1e-6)
    run = (ceiling - sig0) / w_n  # path length up to the ceiling
    sel = np.flatnonzero(
        (sig0 < ceiling) & _segment_near(a0, b0, a0 + run * w_a, b0 + run * w_b, (0.0, 0.0), obj_radius)
    )
    out = np.zeros(m, dtype=bool)
    step_len = _SHADOW_STEP_M / w_n[sel]
    s = 0.00015 / w_n[sel]  # start just off the surface
    x0, y0 = look.index(a0[sel], b0[sel])
    xs, ys = w_a[sel] / look.cell, w_b[sel] / look.cell
    z0, zs = sig0[sel] + 0.00005, w_n[sel]
    live = np.arange(sel.size)
    while live.size:
        sl = s[live]
        z = z0[live] + sl * zs[live]
        block = look.sample_index(look.height, x0[live] + sl * xs[live], y0[live] + sl * ys[live]) > z
        out[near[sel[live[block]]]] = True
        s[live] += step_len[live]
        live = live[(~block) & (z < ceiling)]
    return out


def _render(
    obj: _Object, g: _Grid, pose: _Pose, tex: _Textures, size: int, ceiling: float,
    pix: np.ndarray | None = None,
) -> _Render:
    """Ray-cast the scene for pixels ``pix`` (flat indices; all by default). ``ceiling``
    (m above the table, above the highest surface point) fixes the ray-march levels, so two
    renders of the same pose agree bit for bit wherever the surface agrees."""
    view = _View(pose, size)
    if pix is None:
        pix = np.arange(size * size)
    m = pix.size
    n = pose.n
    look = _Lookup(obj, g)
    hmax = float(ceiling)

    # rays whose path between the ceiling and the table passes over the object
    a_top, b_top = view.ray_ab(hmax, pix)
    a_bot, b_bot = view.ray_ab(0.0, pix)
    cand = np.flatnonzero(_segment_near(a_top, b_top, a_bot, b_bot, (0.0, 0.0), obj.radius))
    cpix = pix[cand]

    # grid indices along each candidate ray are linear in the height sig: x = x0 + sig * xs
    x0, y0 = look.index(*view.ray_ab(0.0, cpix))
    x1, y1 = look.index(*view.ray_ab(hmax, cpix))
    xs, ys = (x1 - x0) / hmax, (y1 - y0) / hmax

    def surface_minus(level, sel):  # height of the surface under ray point minus its height
        return look.sample_index(look.height, x0[sel] + level * xs[sel], y0[sel] + level * ys[sel]) - level

    # 1) march down until the ray is below the surface, 2) bisection, 3) secant step
    k_steps = int(round(hmax / _MARCH_STEP_M))
    levels = np.linspace(hmax, 0.0, k_steps + 1)
    lo = np.full(cand.size, hmax)
    hi = np.zeros(cand.size)
    active = np.arange(cand.size)
    for k in range(1, k_steps + 1):
        if active.size == 0:
            break
        hit = surface_minus(levels[k], active) >= 0
        lo[active[hit]] = levels[k - 1]
        hi[active[hit]] = levels[k]
        active = active[~hit]
    every = slice(None)
    for _ in range(6):
        mid = 0.5 * (lo + hi)
        above = surface_minus(mid, every) < 0
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    f_lo = surface_minus(lo, every)  # < 0
    f_hi = surface_minus(hi, every)  # >= 0
    w = np.where(f_hi - f_lo > 1e-12, -f_lo / (f_hi - f_lo + 1e-30), 1.0)
    sig = np.zeros(m)
    sig[cand] = lo + np.clip(w, 0, 1) * (hi - lo)

    t = view.ray_t(sig, pix)
    xyz = view.d[pix] * t[:, None]
    u, v = view.ray_uv(t, pix)
    a_hit, b_hit = view.rotate(u - pose.shift[0], v - pose.shift[1])

    # object grids are only looked up where the hit point can be on the object; shadows only
    # fall within reach of it (light >= 54 deg, projector near-vertical: reach < ceiling)
    rr = a_hit * a_hit + b_hit * b_hit
    on_grid = np.flatnonzero(rr < obj.radius**2)
    near = np.flatnonzero(rr < (obj.radius + hmax) ** 2)
    grad = look.sample(look.grad, a_hit[on_grid], b_hit[on_grid])
    cov = np.zeros(m)
    cov[on_grid] = look.sample(look.coverage, a_hit[on_grid], b_hit[on_grid]) * (sig[on_grid] > 0)
    obj_alb = np.zeros((m, 3))
    obj_alb[on_grid] = look.sample(look.albedo, a_hit[on_grid], b_hit[on_grid])

    # surface normal (camera frame) from the height-field gradient; the table's elsewhere
    cr, sr = np.cos(pose.rot), np.sin(pose.rot)
    gu = cr * grad[:, 0] - sr * grad[:, 1]  # object -> table axes
    gv = sr * grad[:, 0] + cr * grad[:, 1]
    normal = np.broadcast_to(n, (m, 3)).copy()
    normal[on_grid] = _unit(n[None, :] - gu[:, None] * pose.e1 - gv[:, None] * pose.e2)

    to_proj = _unit(_PROJECTOR_OFFSET_M[None, :] - xyz)
    to_cam = _unit(-xyz)
    cos_cam = np.abs(np.einsum("ij,ij->i", normal, to_cam))
    cos_proj = np.einsum("ij,ij->i", normal, to_proj)
    proj_shadow = _shadowed(look, view, obj.radius, hmax, a_hit, b_hit, sig, to_proj, near)
    occluded = proj_shadow | (cos_proj < 0.12) | (cos_cam < 0.12)
    grazing = np.clip((0.45 - np.minimum(cos_cam, cos_proj)) / 0.33, 0, 1)

    # colour: object albedo blended with the table texture by coverage
    belt = _sample_wrapped(tex.belt, u / 0.0006 + pose.belt_offset[0], v / 0.0006 + pose.belt_offset[1])
    table = pose.belt_colour[None, :] * (1 + 0.12 * belt)[:, None]
    albedo = cov[:, None] * obj_alb + (1 - cov[:, None]) * table

    lit = ~_shadowed(look, view, obj.radius, hmax, a_hit, b_hit, sig, pose.light, near)
    lambert = np.clip(normal @ pose.light, 0, None) * lit
    spec = np.zeros(m)
    half = _unit(pose.light[None, :] + to_cam[on_grid])
    spec[on_grid] = (obj.specular * np.clip(np.einsum("ij,ij->i", normal[on_grid], half), 0, 1) ** obj.shininess
                     * lit[on_grid] * cov[on_grid])
    vignette = view.vignette[pix] * pose.gain
    shading = (pose.ambient + (1 - pose.ambient) * lambert) * vignette
    rgb = albedo * shading[:, None] + (spec * vignette)[:, None]
    return _Render(
        pix=pix, xyz=xyz, occluded=occluded, grazing=grazing, albedo=albedo, rgb=rgb,
        on_object=cov > 0.5, a=a_hit, b=b_hit, sig=sig, to_proj=to_proj,
    )


def _affected_pixels(clean: _Render, pose: _Pose, size: int, ceiling: float, centre, radius) -> np.ndarray:
    """Pixels whose render can change when the surface changes only within ``radius`` of
    ``centre`` (object coordinates): the camera ray or a shadow ray passes over that disc."""
    view = _View(pose, size)
    pix = clean.pix
    near = _segment_near(*view.ray_ab(ceiling, pix), *view.ray_ab(0.0, pix), centre, radius)
    for dirs in (clean.to_proj, pose.light):
        w_a, w_b, w_n = view.dir_obj(dirs)
        run = (ceiling - clean.sig) / np.maximum(w_n, 1e-6)
        near |= _segment_near(clean.a, clean.b, clean.a + run * w_a, clean.b + run * w_b, centre, radius)
    return pix[near]


def _sensor(render: _Render, noise: _SensorNoise, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply sensor effects to a full render: (rgb uint8, xyz float32 invalid = 0, valid bool)."""
    xyz = render.xyz.reshape(size, size, 3)
    z = xyz[..., 2]
    # depth noise along the viewing ray (keeps the point on its pixel's ray)
    scale = 1 + noise.depth_sigma * noise.depth / np.maximum(z, 1e-6)
    noisy = xyz * scale[..., None]
    valid = ~render.occluded.reshape(size, size)
    valid &= noise.dropout >= noise.dropout_rate  # isolated dropouts
    valid &= noise.speckle <= 1 - noise.cluster_rate  # small dropout clusters
    valid &= noise.grazing >= render.grazing.reshape(size, size)  # steep surfaces lose points
    xyz_out = np.where(valid[..., None], noisy, 0.0).astype(np.float32)
    lin = np.clip(render.rgb.reshape(size, size, 3) + noise.rgb_sigma * noise.rgb, 0, 1)
    rgb = np.round(255.0 * lin ** (1 / 2.2)).astype(np.uint8)
    return rgb, xyz_out, valid


# --------------------------------------------------------------------------------------------
# Public sample-level API


@dataclass
class SyntheticSample:
    """One generated sample (arrays S×S) plus what is needed to check it."""

    rgb: np.ndarray  # uint8 S×S×3
    xyz: np.ndarray  # float32 S×S×3, metres, invalid = (0, 0, 0)
    mask: np.ndarray  # bool S×S, True = defect (all False for good samples)
    label: str  # "good" or a defect type
    height: np.ndarray  # object height field (m) on the object grid
    albedo_grid: np.ndarray  # object albedo on the object grid (linear RGB)
    render: _Render = field(repr=False)
    defect: _DefectSpec | None = None


def _camera_matrix(size: int) -> dict:
    f = _FOCAL_PER_PIXEL * size
    c = (size - 1) / 2.0
    return {"fx": f, "fy": f, "cx": c, "cy": c, "width": size, "height": size, "units": "metres"}


def _changed(clean: _Render, dirty: _Render) -> np.ndarray:
    """Flat bool: pixels whose noise-free geometry, validity or colour differ at all."""
    diff = np.any(clean.xyz != dirty.xyz, axis=-1) | (clean.occluded != dirty.occluded)
    diff |= clean.grazing != dirty.grazing
    diff |= np.any(clean.rgb != dirty.rgb, axis=-1) | np.any(clean.albedo != dirty.albedo, axis=-1)
    return diff


def _changed_disc(g: _Grid, before: _Object, after: _Object) -> tuple[tuple[float, float], float]:
    """Centre and radius (object coordinates, m) of a disc holding every changed grid cell,
    widened by the reach of the bilinear lookups and the gradient (3 cells)."""
    diff = (before.height != after.height) | np.any(before.albedo != after.albedo, axis=-1)
    if not diff.any():
        return (0.0, 0.0), 0.0
    a, b = g.a[diff], g.b[diff]
    ca, cb = 0.5 * (a.min() + a.max()), 0.5 * (b.min() + b.max())
    return (float(ca), float(cb)), float(np.hypot(a - ca, b - cb).max() + 3 * g.cell)


def render_sample_pair(
    seed: int,
    category: str,
    folder: str,
    index: int,
    size: int = DEFAULT_SIZE,
    defect_strength: float = 1.0,
    full_render: bool = False,
    *,
    object_scale: float = 1.0,
    noise_scale: float = 1.0,
    defect_scale: float = 1.0,
) -> tuple[SyntheticSample, SyntheticSample]:
    """Render sample ``index`` of ``folder`` ("train", "validation", "test/good",
    "test/<defect>") without and with its defect (the same object for good samples).

    Both share pose, appearance and sensor noise; the defect's mask is exactly the set of
    pixels whose noise-free geometry, validity or colour the defect changed. The defective
    render re-traces only the pixels the defect can reach; ``full_render`` re-traces all
    (for checking that shortcut). ``object_scale``, ``noise_scale`` and ``defect_scale``
    are the variation factors of :func:`demo_parameters` (1 = the standard scene)."""
    object_scale, noise_scale, defect_scale = _variation(object_scale, noise_scale, defect_scale)
    if category not in _BUILDERS:
        raise UserError(f"unknown demo category {category!r}; known: {', '.join(DEMO_CATEGORIES)}")
    label = folder.split("/", 1)[1] if folder.startswith("test/") else "good"
    if folder not in ("train", "validation") and not folder.startswith("test/"):
        raise UserError(f"unknown split folder {folder!r}: use train, validation or test/<good|defect>")
    if label != "good" and label not in DEFECT_TYPES:
        raise UserError(f"unknown defect type {label!r}; known: {', '.join(DEFECT_TYPES)}")
    streams = _sample_streams(seed, category, folder, index)
    tex = _textures(int(seed), category)
    g = _grid(size, object_scale)
    obj = _build_object(category, size, object_scale, tex, streams["scene"])
    pose = _draw_pose(streams["scene"], obj.light_azimuth)
    noise = _draw_noise(streams["noise"], size, noise_scale)
    dobj = spec = None
    if label != "good":
        dobj, spec = _apply_defect(obj, g, label, streams["defect"], float(defect_strength), tex,
                                   defect_scale)
    top = max(float(obj.height.max()), float(dobj.height.max()) if dobj is not None else 0.0)
    ceiling = (np.floor(top / _MARCH_STEP_M) + 1) * _MARCH_STEP_M
    clean_r = _render(obj, g, pose, tex, size, ceiling)
    rgb, xyz, _ = _sensor(clean_r, noise, size)
    empty = np.zeros((size, size), dtype=bool)
    clean = SyntheticSample(rgb, xyz, empty, "good", obj.height, obj.albedo, clean_r)
    if dobj is None:
        return clean, clean
    if full_render:
        dirty_r = _render(dobj, g, pose, tex, size, ceiling)
    else:
        centre, radius = _changed_disc(g, obj, dobj)
        pix = _affected_pixels(clean_r, pose, size, ceiling, centre, radius)
        dirty_r = _render(dobj, g, pose, tex, size, ceiling, pix).merged_into(clean_r)
    rgb_d, xyz_d, _ = _sensor(dirty_r, noise, size)
    mask = _changed(clean_r, dirty_r).reshape(size, size)
    dirty = SyntheticSample(rgb_d, xyz_d, mask, label, dobj.height, dobj.albedo, dirty_r, spec)
    return clean, dirty


@lru_cache(maxsize=4)
def _grid(size: int, object_scale: float = 1.0) -> _Grid:
    """The object grid (metres, object coordinates) for images of ``size`` and objects
    ``object_scale`` times their nominal size (read-only)."""
    g = _Grid.for_size(size, object_scale)
    g.a.flags.writeable = False
    g.b.flags.writeable = False
    return g


@lru_cache(maxsize=4)
def _nominal_grid(size: int, object_scale: float = 1.0) -> _Grid:
    """:func:`_grid` in the nominal object's coordinates (metres / object_scale), for the
    object builders; the same grid when ``object_scale`` is 1."""
    g = _grid(size, object_scale)
    if object_scale == 1.0:
        return g
    s = float(object_scale)
    a, b = g.a / s, g.b / s
    a.flags.writeable = False
    b.flags.writeable = False
    return _Grid(size, g.n, g.cell / s, a, b, g.half / s, s)


def render_sample(
    seed: int, category: str, folder: str, index: int, size: int = DEFAULT_SIZE, defect_strength: float = 1.0,
    *, object_scale: float = 1.0, noise_scale: float = 1.0, defect_scale: float = 1.0,
) -> SyntheticSample:
    """The sample as written to ``<category>/<folder>/{rgb,xyz,gt}/<index:03d>.*`` (with its
    defect, if any); ``folder`` is "train", "validation", "test/good" or "test/<defect>"."""
    return render_sample_pair(
        seed, category, folder, index, size, defect_strength,
        object_scale=object_scale, noise_scale=noise_scale, defect_scale=defect_scale,
    )[1]


# --------------------------------------------------------------------------------------------
# Dataset writer


def _write_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(arr).save(path, format="PNG", compress_level=1)


def _write_tiff(path: Path, xyz: np.ndarray) -> None:
    import tifffile

    tifffile.imwrite(path, xyz, photometric="rgb", metadata=None)


def _plan(
    categories, n_train, n_validation, n_test_good, n_test_per_defect, defect_types
) -> list[tuple[str, str, int]]:
    jobs = []
    for cat in categories:
        for folder, count in (
            ("train", n_train),
            ("validation", n_validation),
            ("test/good", n_test_good),
            *((f"test/{t}", n_test_per_defect) for t in defect_types),
        ):
            jobs += [(cat, folder, i) for i in range(count)]
    return jobs


def _folder_path(root: Path, category: str, folder: str) -> Path:
    if folder in ("train", "validation"):
        return root / category / folder / "good"
    return root / category / folder


def _write_sample(root: str, seed: int, category: str, folder: str, index: int, size: int,
                  defect_strength: float, object_scale: float = 1.0, noise_scale: float = 1.0,
                  defect_scale: float = 1.0) -> str:
    """Render one sample and write its rgb/xyz(/gt) files under ``root``; returns its name."""
    s = render_sample(seed, category, folder, index, size, defect_strength, object_scale=object_scale,
                      noise_scale=noise_scale, defect_scale=defect_scale)
    base = _folder_path(Path(root), category, folder)
    name = f"{index:03d}"
    subs = ("rgb", "xyz") + (("gt",) if folder.startswith("test/") else ())
    for sub in subs:
        (base / sub).mkdir(parents=True, exist_ok=True)
    _write_png(base / "rgb" / f"{name}.png", s.rgb)
    _write_tiff(base / "xyz" / f"{name}.tiff", s.xyz)
    if "gt" in subs:
        _write_png(base / "gt" / f"{name}.png", np.where(s.mask, 255, 0).astype(np.uint8))
    return f"{category}/{folder}/{name}"


def _default_workers(n_jobs: int) -> int:
    if n_jobs < 24:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def _run_jobs(jobs, root: Path, args: tuple, workers: int, p: progress_mod.Progress) -> None:
    """Render and write all ``jobs`` (category, folder, index), in worker processes if > 1."""
    total = len(jobs)
    p.update("Demo data", 0, total)
    if workers <= 1:
        for done, (cat, folder, i) in enumerate(jobs, start=1):
            name = _write_sample(str(root), args[0], cat, folder, i, *args[1:])
            p.update("Demo data", done, total, name)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")  # safe beside GUI threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending = set()
        try:
            for cat, folder, i in jobs:
                pending.add(pool.submit(_write_sample, str(root), args[0], cat, folder, i, *args[1:]))
            done = 0
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    name = fut.result()
                    done += 1
                    p.update("Demo data", done, total, name)
                p.check()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


# Variation factors: name -> allowed range (inclusive). 1.0 is the standard scene; the
# marker stores them only when not 1.0, so a dataset made with the defaults is byte-identical
# to one made before they existed, and markers without them read as 1.0.
VARIATION_RANGES: dict[str, tuple[float, float]] = {
    "object_scale": (0.5, 2.0),
    "noise_scale": (0.0, 5.0),
    "defect_scale": (0.3, 3.0),
}
_VARIATION_WHAT = {
    "object_scale": "object scale",
    "noise_scale": "noise scale",
    "defect_scale": "defect scale",
}


def _variation(object_scale, noise_scale, defect_scale) -> tuple[float, float, float]:
    """The three variation factors as floats; UserError when one is not a number in its range."""
    out = []
    for name, value in zip(VARIATION_RANGES, (object_scale, noise_scale, defect_scale)):
        lo, hi = VARIATION_RANGES[name]
        what = _VARIATION_WHAT[name]
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{what} must be a number between {lo:g} and {hi:g}, got {value!r}") from None
        if isinstance(value, bool) or not lo <= x <= hi:  # also rejects NaN
            raise UserError(f"{what} must be between {lo:g} and {hi:g}, got {value!r}")
        out.append(x)
    return out[0], out[1], out[2]


def read_marker(out_dir: str | Path) -> dict | None:
    """The generation parameters of a demo dataset at ``out_dir``, or None if it is not one;
    variation factors the marker does not list are 1.0 (as in :func:`demo_parameters`)."""
    try:
        data = json.loads((Path(out_dir) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != "lsfa-demo":
        return None
    for name in VARIATION_RANGES:
        data.setdefault(name, 1.0)
    return data


def _marker_text(params: dict) -> str:
    """The marker file's text for :func:`demo_parameters` output: variation factors at 1.0
    are left out (older generators wrote none; :func:`read_marker` fills them in)."""
    stored = {k: v for k, v in params.items() if not (k in VARIATION_RANGES and v == 1.0)}
    return json.dumps(stored, indent=2) + "\n"


def demo_parameters(
    seed: int = 0,
    categories: list[str] | tuple[str, ...] | None = None,
    size: int = DEFAULT_SIZE,
    n_train: int = DEFAULT_COUNTS["n_train"],
    n_validation: int = DEFAULT_COUNTS["n_validation"],
    n_test_good: int = DEFAULT_COUNTS["n_test_good"],
    n_test_per_defect: int = DEFAULT_COUNTS["n_test_per_defect"],
    defect_types: list[str] | tuple[str, ...] | None = None,
    defect_strength: float = 1.0,
    object_scale: float = 1.0,
    noise_scale: float = 1.0,
    defect_scale: float = 1.0,
) -> dict:
    """Validated, normalised generation parameters (as stored in the dataset's marker file,
    which leaves out variation factors at 1.0); UserError on bad values.

    ``object_scale`` (0.5-2) scales the objects' physical size (diameter and height) at the
    fixed camera, so they cover more or fewer pixels; ``noise_scale`` (0-5) multiplies the
    sensor's depth and RGB noise and its random dropout rates (0 = noise-free, steep-wall and
    shadow losses stay); ``defect_scale`` (0.3-3) scales the defects' lateral size (radius,
    length, width) independently of ``defect_strength`` (depth/height/contrast). At 1.0 they
    leave the output unchanged."""
    categories = list(DEMO_CATEGORIES if categories is None else categories)
    defect_types = list(DEFECT_TYPES if defect_types is None else defect_types)
    if not categories:
        raise UserError("no demo category selected")
    for cat in categories:
        if cat not in _BUILDERS:
            raise UserError(f"unknown demo category {cat!r}; known: {', '.join(DEMO_CATEGORIES)}")
    for t in defect_types:
        if t not in DEFECT_TYPES:
            raise UserError(f"unknown defect type {t!r}; known: {', '.join(DEFECT_TYPES)}")
    if len(set(categories)) != len(categories) or len(set(defect_types)) != len(defect_types):
        raise UserError("categories and defect types must not repeat")
    if not 0 <= int(seed) < 2**63:
        raise UserError(f"seed must be a non-negative integer, got {seed}")
    if not 64 <= int(size) <= 2048:
        raise UserError(f"image size must be between 64 and 2048 pixels, got {size}")
    counts = {"n_train": n_train, "n_validation": n_validation, "n_test_good": n_test_good,
              "n_test_per_defect": n_test_per_defect}
    for k, v in counts.items():
        if not 0 <= int(v) <= 100_000:
            raise UserError(f"{k} must be between 0 and 100000, got {v}")
    if int(n_train) < 1:
        raise UserError("n_train must be at least 1")
    if not 0 < float(defect_strength) <= 10:
        raise UserError(f"defect strength must be in (0, 10], got {defect_strength}")
    variation = dict(zip(VARIATION_RANGES, _variation(object_scale, noise_scale, defect_scale)))
    return {
        "generator": "lsfa-demo",
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "categories": categories,
        "size": int(size),
        **{k: int(v) for k, v in counts.items()},
        "defect_types": defect_types,
        "defect_strength": float(defect_strength),
        **variation,
    }


def generate_demo_dataset(
    out_dir: str | Path,
    seed: int = 0,
    categories: list[str] | tuple[str, ...] | None = None,
    size: int = DEFAULT_SIZE,
    n_train: int = DEFAULT_COUNTS["n_train"],
    n_validation: int = DEFAULT_COUNTS["n_validation"],
    n_test_good: int = DEFAULT_COUNTS["n_test_good"],
    n_test_per_defect: int = DEFAULT_COUNTS["n_test_per_defect"],
    defect_types: list[str] | tuple[str, ...] | None = None,
    defect_strength: float = 1.0,
    object_scale: float = 1.0,
    noise_scale: float = 1.0,
    defect_scale: float = 1.0,
    progress: progress_mod.Progress | None = None,
    force: bool = False,
    workers: int = 1,
) -> Path:
    """Write a demo dataset in the MVTec 3D-AD layout to ``out_dir`` and return its path.

    Files are written into a temporary folder beside ``out_dir`` and renamed into place.
    If ``out_dir`` already holds a demo dataset made with the same parameters it is returned
    as is (the output is deterministic). Another demo dataset there (``.lsfa_demo.json``
    marker) is replaced only with ``force``; any other non-empty folder is refused, never
    deleted. ``workers`` > 1 renders in that many spawned processes, 0 picks up to 4 for
    larger sets; files do not depend on it (scripts calling with workers != 1 need the
    ``if __name__ == "__main__":`` guard). ``object_scale``, ``noise_scale`` and
    ``defect_scale`` vary the scene (see :func:`demo_parameters`).
    """
    p = progress_mod.ensure(progress)
    params = demo_parameters(
        seed, categories, size, n_train, n_validation, n_test_good, n_test_per_defect,
        defect_types, defect_strength, object_scale, noise_scale, defect_scale,
    )
    out = Path(out_dir).expanduser().absolute()
    replacing = False
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out}: exists and is not a folder")
        if any(out.iterdir()):
            marker = read_marker(out)
            if marker is None:
                raise UserError(
                    f"{out}: folder is not empty and is not a demo dataset; choose another output folder"
                )
            if marker == params:
                log.info("%s: demo dataset already up to date", out)
                return out
            if not force:
                raise UserError(
                    f"{out}: holds a demo dataset made with other parameters; use --force to replace it"
                )
            from core.data.generated import refuse_foreign

            refuse_foreign(out, marker, MARKER_NAME)
            replacing = True
    out.parent.mkdir(parents=True, exist_ok=True)

    jobs = _plan(params["categories"], params["n_train"], params["n_validation"],
                 params["n_test_good"], params["n_test_per_defect"], params["defect_types"])
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for cat in params["categories"]:
            calib = tmp / cat / "calibration"
            calib.mkdir(parents=True)
            (calib / "camera_parameters.json").write_text(json.dumps(_camera_matrix(size), indent=2) + "\n")
        n_workers = _default_workers(len(jobs)) if int(workers) == 0 else max(1, int(workers))
        args = (params["seed"], params["size"], params["defect_strength"],
                *(params[k] for k in VARIATION_RANGES))
        _run_jobs(jobs, tmp, args, n_workers, p)
        (tmp / MARKER_NAME).write_text(_marker_text(params))
        os.chmod(tmp, 0o755)
        if replacing:
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, trash / "old")
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            if out.exists():
                out.rmdir()  # an empty folder
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure_demo_dataset(out_dir: str | Path | None = None, progress: progress_mod.Progress | None = None,
                        **kwargs) -> Path:
    """The demo dataset at ``out_dir`` (default: :func:`default_demo_dir`), generated or
    replaced if missing or made with other parameters (other data is never replaced)."""
    out = default_demo_dir() if out_dir is None else out_dir
    return generate_demo_dataset(out, progress=progress, force=True, **kwargs)


def default_demo_dir() -> Path:
    """Per-user folder for the built-in demo dataset: ``<cache>/demo``, where <cache> is
    ``$LSFA_CACHE_DIR`` or ``$XDG_CACHE_HOME/lsfa-inspector`` (~/.cache/lsfa-inspector)."""
    from core.prepare import default_cache_dir

    return default_cache_dir() / "demo"


def dataset_digest(root: str | Path) -> str:
    """sha256 over all file names and contents under ``root`` (for determinism checks)."""
    h = hashlib.sha256()
    root = Path(root)
    for path in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()
