"""Procedural "parts" data: a second, independently written RGB + 3D dataset family.

It is meant for confirming choices (thresholds, feature settings, ablations) that were made on
other data, so it shares no code or modelling decisions with the demo generator.
:func:`generate_parts_dataset` writes the MVTec 3D-AD layout
(``<out>/<category>/{train,validation,test}/<type>/{rgb,xyz,gt}/NNN.{png,tiff}``) with a marker
file ``.lsfa_parts.json`` at the root; :func:`render_parts_sample` renders one sample in memory.

Units: the point clouds (``xyz``) are in **metres** in the camera frame (x right, y down,
z forward, away from the camera); invalid points are exactly (0, 0, 0). Everything inside this
module is modelled in millimetres, so part and defect sizes below are in mm.

Scene
    A part lies on a flat table. A pinhole camera (focal length ``4.4 × size`` pixels, so the
    frame is 89–95 mm wide at the table, about 0.23 mm per pixel at 400 px) looks down from
    390–420 mm (distance of the camera centre from the table plane); the table normal is
    tilted 0.3–3° from the optical axis in a random direction. Each sample gets a random in-plane
    rotation (0–360°) and shift of the part (kept inside the frame with a margin, so the image
    border always sees the table) and jitter of the part's dimensions and features. The parts
    cover about 25–40 % of the frame (the hose 14–20 %). Every pixel's ray
    is intersected with the part's height field (march + bisection), so RGB and xyz are
    registered pixel to pixel and tall parts show true perspective parallax. The table is in
    the point cloud everywhere outside the part (and through holes / the gear's bore) and looks
    like a table in RGB: wood, a green or blue ESD mat, or grey laminate.

Categories (``PARTS_CATEGORIES``)
    bracket  machined aluminium plate 58–66 × 34–40 mm, 7–9 mm thick, with a Z-step (a bend
             raising one end by 5–8 mm), rounded corners, 3 drilled through holes with chamfered
             edges; brushed texture and an anisotropic (Kajiya-Kay) highlight across the brushing.
    gear     spur gear (16–25 teeth, tip radius 29–33 mm, 8–10 mm thick) with a raised hub, a
             recessed web, lightening holes and a bore with keyway; anodised colour (red, blue,
             gold, black, green or violet) with lathe-turned concentric highlights.
    tile     ceramic tile 50–56 mm square, 7–9 mm thick, glossy printed glaze (checker, ring,
             stripe or dot motif) surrounded by an unglazed, matte biscuit/grout edge band.
    hose     black rubber hose segment (radius 9–11.5 mm, 60–70 mm long, slightly curved) lying
             on the table: a curved surface, dark and low in contrast, sometimes a faded print line.

Lighting and camera
    Ambient light plus two directional lights (key and fill, random directions 20–65° from the
    vertical) with per-sample intensity and colour-temperature jitter (3300–6500 K);
    Blinn-Phong highlights, anisotropic highlights on brushed/turned metal. Exposure jitter,
    vignetting, a slight optical blur, gamma 2.2, read + shot noise, 8-bit quantisation.

Sensor model (strength drawn per sample)
    * depth noise along the ray, sigma = s0 · (z / 400 mm)², s0 in 0.05–0.2 mm, partly
      spatially correlated;
    * row-correlated striping (per-row offsets, 0.01–0.05 mm) and a faint low-frequency ripple;
    * at depth discontinuities (> 1 mm between neighbours): dropouts, and "flying pixels"
      placed between the foreground and background depth;
    * dropouts on dark surfaces (probability rising as the lit brightness falls), on saturated
      specular highlights and at grazing angles;
    * 0.05–0.3 % random invalid pixels.

Defects (``PARTS_DEFECT_TYPES``; always placed on a flat-ish top face of the part, never on the
table)
    dent / bump     smooth Gaussian profile, depth/height 0.2–1.0 mm, sigma 1.5–4 mm. Geometry
                    only: the RGB image is the defect-free render.
    scratch         1–3 nearly parallel thin curved strokes (0.6–1.4 mm wide, up to 14–30 mm
                    long, cut off where the top face ends) that change colour/brightness and
                    gloss, with a groove of 0.02–0.1 mm.
    contamination   foreign material (oil, paint, dust, glue), an irregular blob of 2–4
                    ellipses about 5–10 mm across: colour change, raised by 0.2–0.8 mm.
    hole            material removed: an irregular pit 2.2–4.5 mm in radius and 2–4 mm deep,
                    dark in RGB, with most of its points missing in xyz.

    Masks are exact: a pixel is a defect when the defect moved its 3D point by more than
    0.05 mm or changed its noise-free colour by more than 0.03 (on a 0–1 scale) in a channel,
    comparing renders of the same sample with and without the defect. At 400 px the masks
    cover roughly 0.15–2.7 % of the image (scratches 0.15–0.8 %, dents/bumps 0.25–2.7 %).

Determinism: each sample draws from its own ``numpy.random.Generator`` seeded from a hash of
(seed, category, split, label, index), so a seed reproduces the files byte for byte (on the same
platform and numpy) and changing the counts or categories does not change the other samples.
A 400 px sample takes about 0.2–0.25 s of one CPU core to render and write.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from core.errors import UserError
from core.progress import Progress, ensure

PARTS_CATEGORIES = ("bracket", "gear", "tile", "hose")
PARTS_DEFECT_TYPES = ("dent", "bump", "scratch", "contamination", "hole")
MARKER_NAME = ".lsfa_parts.json"
GENERATOR_NAME = "lsfa-parts"
GENERATOR_VERSION = 1

FOCAL_PER_PIXEL = 4.4  # focal length in pixels per pixel of image width (frame ≈ distance / 4.4)
MASK_DEPTH_MM = 0.05  # a defect pixel moved its 3D point by more than this ...
MASK_COLOUR = 0.03  # ... or changed a colour channel (0..1 display scale) by more than this
_MARCH_STEP_MM = 0.8
_BISECT_STEPS = 7

# material channels of the part raster
_ALB = slice(0, 3)
_SPEC, _SHINE, _ANISO, _TX, _TY, _DROP = 3, 4, 5, 6, 7, 8
_NCH = 9


# ----------------------------------------------------------------------------- small helpers


def _smoothstep(e0: float, e1: float, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _upsample(small: np.ndarray, shape: tuple[int, int], factor: float) -> np.ndarray:
    """Bilinear upsampling of a coarse grid (cell ``factor`` fine cells) to ``shape``."""
    h, w = shape
    ys = np.arange(h, dtype=np.float32) / factor
    xs = np.arange(w, dtype=np.float32) / factor
    y0 = np.minimum(ys.astype(np.intp), small.shape[0] - 2)
    x0 = np.minimum(xs.astype(np.intp), small.shape[1] - 2)
    wy = (ys - y0)[:, None]
    wx = (xs - x0)[None, :]
    rows = small[y0] * (1 - wy) + small[y0 + 1] * wy
    return (rows[:, x0] * (1 - wx) + rows[:, x0 + 1] * wx).astype(np.float32)


def _noise2d(rng: np.random.Generator, shape: tuple[int, int], corr: float) -> np.ndarray:
    """Smooth random field with correlation length ``corr`` cells, roughly unit variance."""
    corr = max(float(corr), 1.0)
    sh = (int(np.ceil(shape[0] / corr)) + 3, int(np.ceil(shape[1] / corr)) + 3)
    small = ndimage.gaussian_filter(rng.standard_normal(sh), 0.7, mode="wrap")
    small /= small.std() + 1e-9
    return _upsample(small, shape, corr)


def _noise1d(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    x = ndimage.gaussian_filter1d(rng.standard_normal(n + 8), max(corr, 0.5), mode="wrap")[4:-4]
    return (x / (x.std() + 1e-9)).astype(np.float32)


def _interp1d(values: np.ndarray, x, x0: float, step: float):
    """Linear lookup of a 1-D array sampled at x0 + k·step (clamped at the ends)."""
    f = np.clip((x - x0) / step, 0, len(values) - 1.001)
    i = f.astype(np.intp)
    w = f - i
    return values[i] * (1 - w) + values[i + 1] * w


def _sdf_box(p, q, hx: float, hy: float, r: float):
    """Signed distance to a rounded rectangle (negative inside)."""
    dx = np.abs(p) - (hx - r)
    dy = np.abs(q) - (hy - r)
    outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
    return outside + np.minimum(np.maximum(dx, dy), 0) - r


def _edge_drop(e, r: float):
    """Height lost by a quarter-round edge of radius r at inner distance e from the edge."""
    t = r - np.minimum(np.maximum(e, 0), r)
    return r - np.sqrt(np.maximum(r * r - t * t, 0))


def _kelvin(k: float) -> np.ndarray:
    """RGB tint of a light of colour temperature k (camera white-balanced near 5500 K)."""
    ks = [3200.0, 4300.0, 5500.0, 6500.0]
    return np.array(
        [
            np.interp(k, ks, [1.22, 1.10, 1.0, 0.94]),
            1.0,
            np.interp(k, ks, [0.70, 0.86, 1.0, 1.08]),
        ]
    )


def _sample_rng(seed: int, category: str, split: str, label: str, index: int) -> np.random.SeedSequence:
    key = f"{GENERATOR_NAME}/v{GENERATOR_VERSION}/{int(seed)}/{category}/{split}/{label}/{int(index)}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return np.random.SeedSequence(int.from_bytes(digest[:16], "little"))


# ----------------------------------------------------------------------------- part rasters


@dataclass
class _Part:
    """A part as a height field on a grid in its own frame (p along the part, q across), in mm."""

    p0: float  # p of column 0
    q0: float  # q of row 0
    cell: float  # grid step (mm)
    height: np.ndarray  # (R, C) float32, mm above the table
    mat: np.ndarray  # (R, C, _NCH) float32 material channels
    top: np.ndarray  # (R, C) bool: flat top faces where defects may go
    kind: str = ""
    scratch_style: dict = field(default_factory=dict)
    _grad: tuple | None = field(default=None, repr=False)

    def gradient(self) -> tuple[np.ndarray, np.ndarray]:
        """(dH/dq, dH/dp) of the height field, float32, cached."""
        if self._grad is None:
            self._grad = tuple(g.astype(np.float32) for g in np.gradient(self.height, self.cell))
        return self._grad

    @property
    def shape(self) -> tuple[int, int]:
        return self.height.shape

    def coords(self, window: tuple[slice, slice] | None = None):
        r, c = self.shape
        rows = np.arange(r, dtype=np.float32)
        cols = np.arange(c, dtype=np.float32)
        if window is not None:
            rows, cols = rows[window[0]], cols[window[1]]
        q = self.q0 + rows * self.cell
        p = self.p0 + cols * self.cell
        return np.meshgrid(p, q)

    def bounding_radius(self) -> float:
        p, q = self.coords()
        inside = self.height > 0
        return float(np.sqrt((p[inside] ** 2 + q[inside] ** 2).max())) + self.cell

    def copy(self) -> "_Part":
        return _Part(self.p0, self.q0, self.cell, self.height.copy(), self.mat.copy(), self.top,
                     self.kind, dict(self.scratch_style))


def _grid(half_p: float, half_q: float, cell: float):
    """Grid covering [-half_p, half_p] × [-half_q, half_q] plus a margin of flat table."""
    margin = 2.0 + 2 * cell
    nc = int(np.ceil(2 * (half_p + margin) / cell)) + 1
    nr = int(np.ceil(2 * (half_q + margin) / cell)) + 1
    p0 = -(nc - 1) * cell / 2
    q0 = -(nr - 1) * cell / 2
    p = (p0 + np.arange(nc, dtype=np.float32) * cell)[None, :]
    q = (q0 + np.arange(nr, dtype=np.float32) * cell)[:, None]
    p, q = np.broadcast_arrays(p, q)
    return np.ascontiguousarray(p), np.ascontiguousarray(q), p0, q0


def _finish(p0, q0, cell, height, albedo, spec, shine, aniso, tx, ty, top_extra, kind, scratch):
    shape = height.shape
    mat = np.zeros(shape + (_NCH,), dtype=np.float32)
    mat[..., _ALB] = albedo
    mat[..., _SPEC] = spec
    mat[..., _SHINE] = shine
    mat[..., _ANISO] = aniso
    mat[..., _TX] = tx
    mat[..., _TY] = ty
    gq, gp = np.gradient(height, cell)
    top = top_extra & (np.hypot(gp, gq) < 0.08)
    return _Part(p0, q0, cell, height.astype(np.float32), mat, top, kind, scratch)


def _build_bracket(rng: np.random.Generator, cell: float) -> _Part:
    length = rng.uniform(58, 66)
    width = rng.uniform(34, 40)
    thick = rng.uniform(7.0, 9.0)
    step = rng.uniform(5.0, 8.0)
    bend = rng.uniform(3.5, 5.5)
    flange = rng.uniform(0.22, 0.32) * length
    corner = rng.uniform(2.5, 5.0)
    r_edge = rng.uniform(0.4, 0.8)
    p, q, p0, q0 = _grid(length / 2, width / 2, cell)
    pb = length / 2 - flange - bend  # start of the bend
    t = np.clip((p - pb) / bend, 0, 1)
    base = thick + step * t * t * t * (t * (6 * t - 15) + 10)  # smootherstep Z-bend
    sdf = _sdf_box(p, q, length / 2, width / 2, corner)
    low_len = pb + length / 2
    holes = [
        (-length / 2 + low_len * rng.uniform(0.3, 0.45), width * rng.uniform(0.22, 0.3), rng.uniform(2.5, 3.8)),
        (-length / 2 + low_len * rng.uniform(0.3, 0.45), -width * rng.uniform(0.22, 0.3), rng.uniform(2.5, 3.8)),
        (length / 2 - flange * rng.uniform(0.45, 0.55), rng.uniform(-2, 2), rng.uniform(2.5, 4.0)),
    ]
    for hp, hq, hr in holes:
        sdf = np.maximum(sdf, hr - np.hypot(p - hp, q - hq))
    inside = sdf < 0
    e = -sdf
    height = np.where(inside, base - _edge_drop(e, r_edge), 0.0)
    # brushed aluminium: streaks along p (1-D noise across q) + slow variation
    n_q = int(np.ceil((q.max() - q.min()) / 0.03)) + 2
    streak = _interp1d(_noise1d(rng, n_q, 1.2), q, float(q.min()), 0.03)
    coarse = _noise1d(rng, n_q, 12.0)
    streak2 = _interp1d(coarse, q, float(q.min()), 0.03)
    slow = _noise2d(rng, p.shape, 8.0 / cell)
    tone = rng.uniform(0.26, 0.38)
    tint = np.array([1.0, 1.0 + rng.uniform(-0.01, 0.02), 1.0 + rng.uniform(0.0, 0.05)])
    shade = tone * (1 + 0.07 * streak + 0.04 * streak2 + 0.03 * slow)
    albedo = shade[..., None] * tint
    spec = rng.uniform(0.3, 0.5) * (1 + 0.15 * streak)
    shine = rng.uniform(60, 160)
    top = inside & (e > r_edge + 0.4)
    scratch = {"colour": (0.75, 0.75, 0.77) if rng.random() < 0.6 else (0.22, 0.21, 0.2), "spec": 0.15, "aniso": 0.0}
    return _finish(p0, q0, cell, height, albedo, spec, shine, 1.0, 1.0, 0.0, top, "bracket", scratch)


_ANODISED = {
    "red": (0.42, 0.035, 0.035),
    "blue": (0.04, 0.10, 0.42),
    "gold": (0.50, 0.30, 0.05),
    "black": (0.03, 0.03, 0.034),
    "green": (0.05, 0.28, 0.09),
    "violet": (0.18, 0.05, 0.33),
}


def _build_gear(rng: np.random.Generator, cell: float) -> _Part:
    teeth = int(rng.integers(16, 26))
    r_tip = rng.uniform(29, 33)
    depth = rng.uniform(2.4, 3.4)
    r_root = r_tip - depth
    thick = rng.uniform(8.0, 10.0)
    hub_r = rng.uniform(9.0, 12.0)
    hub_h = rng.uniform(2.0, 3.5)
    bore_r = rng.uniform(4.0, 5.5)
    key_w = rng.uniform(1.6, 2.6)
    key_d = rng.uniform(1.2, 2.0)
    key_angle = rng.uniform(0, 2 * np.pi)
    web_in = hub_r + rng.uniform(1.5, 2.5)
    web_out = r_root - rng.uniform(2.5, 3.5)
    web_depth = rng.uniform(0.6, 1.5)
    phase = rng.uniform(0, 2 * np.pi)
    p, q, p0, q0 = _grid(r_tip, r_tip, cell)
    r = np.hypot(p, q)
    phi = np.arctan2(q, p)
    s = np.cos(teeth * phi + phase)
    r_edge = r_root + depth * _smoothstep(-0.5, 0.3, s)
    sdf = r - r_edge
    ku = p * np.cos(key_angle) + q * np.sin(key_angle)
    kv = -p * np.sin(key_angle) + q * np.cos(key_angle)
    key = np.maximum(np.maximum(-ku, ku - (bore_r + key_d)), np.abs(kv) - key_w / 2)  # <0 inside keyway
    sdf = np.maximum(sdf, np.maximum(bore_r - r, -key))
    n_light = int(rng.choice([0, 4, 5, 6]))
    if n_light and web_out - web_in > 5.0:
        lr = min(rng.uniform(2.2, 3.5), (web_out - web_in) / 2 - 1.2)
        lc = (web_in + web_out) / 2
        a0 = rng.uniform(0, 2 * np.pi)
        for k in range(n_light):
            a = a0 + 2 * np.pi * k / n_light
            sdf = np.maximum(sdf, lr - np.hypot(p - lc * np.cos(a), q - lc * np.sin(a)))
    inside = sdf < 0
    e = -sdf
    base = (
        thick
        + hub_h * (1 - _smoothstep(hub_r - 0.4, hub_r + 0.4, r))
        - web_depth * _smoothstep(web_in - 0.4, web_in + 0.4, r) * (1 - _smoothstep(web_out - 0.4, web_out + 0.4, r))
    )
    height = np.where(inside, base - _edge_drop(e, 0.5), 0.0)
    colour_name = str(rng.choice(list(_ANODISED)))
    colour = np.array(_ANODISED[colour_name]) * rng.uniform(0.85, 1.15, 3)
    n_r = int(np.ceil(r_tip / 0.02)) + 4
    rings = _interp1d(_noise1d(rng, n_r, 1.5), r, 0.0, 0.02)
    slow = _noise2d(rng, p.shape, 10.0 / cell)
    albedo = colour * (1 + 0.04 * rings + 0.03 * slow)[..., None]
    spec = rng.uniform(0.22, 0.4) * (1 + 0.2 * rings)
    shine = rng.uniform(30, 70)
    rr = np.maximum(r, 1e-3)
    top = inside & (e > 1.0)
    scratch = {"colour": (0.62, 0.62, 0.64), "spec": 0.35, "aniso": 0.0}  # bare aluminium under the coating
    return _finish(p0, q0, cell, height, albedo, spec, shine, rng.uniform(0.35, 0.6), -q / rr, p / rr, top, "gear", scratch)


_GLAZES = [
    ((0.80, 0.78, 0.72), (0.08, 0.18, 0.45)),  # white + cobalt
    ((0.75, 0.68, 0.50), (0.45, 0.12, 0.06)),  # cream + terracotta red
    ((0.20, 0.40, 0.38), (0.78, 0.76, 0.70)),  # teal + white
    ((0.62, 0.62, 0.60), (0.12, 0.12, 0.13)),  # grey + black
    ((0.70, 0.55, 0.15), (0.10, 0.25, 0.12)),  # ochre + green
]


def _build_tile(rng: np.random.Generator, cell: float) -> _Part:
    side_p = rng.uniform(50, 56)
    side_q = side_p * rng.uniform(0.96, 1.04)
    thick = rng.uniform(7.0, 9.0)
    corner = rng.uniform(0.6, 1.6)
    r_edge = rng.uniform(0.8, 1.3)
    band = rng.uniform(1.2, 2.0)
    glaze_t = rng.uniform(0.15, 0.35)
    bow = rng.uniform(-0.12, 0.12)
    p, q, p0, q0 = _grid(side_p / 2, side_q / 2, cell)
    sdf = _sdf_box(p, q, side_p / 2, side_q / 2, corner)
    inside = sdf < 0
    e = -sdf
    glazed = _smoothstep(band - 0.25, band + 0.25, e)
    dome = bow * (1 - (2 * p / side_p) ** 2) * (1 - (2 * q / side_q) ** 2)
    height = np.where(inside, thick + glaze_t * glazed + dome - _edge_drop(e, r_edge), 0.0)
    c1, c2 = (np.array(c) for c in _GLAZES[int(rng.integers(len(_GLAZES)))])
    if rng.random() < 0.5:
        c1, c2 = c2, c1
    style = int(rng.integers(4))
    period = rng.uniform(7.0, 13.0)
    soft = max(cell, 0.15)
    u, v = p / period, q / period
    if style == 0:  # checker rotated by 45 degrees
        f = np.sin(np.pi * (u + v)) * np.sin(np.pi * (u - v)) * period / np.pi
    elif style == 1:  # ring motif in each cell
        d = np.hypot(u - np.round(u), v - np.round(v)) * period
        f = np.sin(2 * np.pi * d / (period * 0.35)) * period * 0.05
    elif style == 2:  # diagonal stripes
        f = np.sin(2 * np.pi * (u + 0.5 * v)) * period / (2 * np.pi)
    else:  # dots
        f = (np.cos(2 * np.pi * u) + np.cos(2 * np.pi * v) - 0.8) * period / (4 * np.pi)
    motif = _smoothstep(-soft, soft, f)
    ink = 1 + 0.05 * _noise2d(rng, p.shape, 1.5 / cell) + 0.03 * _noise2d(rng, p.shape, 0.3 / cell)
    glaze_col = (c1 * (1 - motif[..., None]) + c2 * motif[..., None]) * ink[..., None]
    biscuit = np.array([0.56, 0.47, 0.36]) * rng.uniform(0.85, 1.1)
    biscuit = biscuit * (1 + 0.12 * _noise2d(rng, p.shape, 0.4 / cell))[..., None]
    g = glazed[..., None]
    albedo = glaze_col * g + biscuit * (1 - g)
    spec = 0.03 + rng.uniform(0.22, 0.4) * glazed
    shine = 10 + rng.uniform(110, 240) * glazed
    top = inside & (e > band + 0.6)
    scratch = {"colour": (0.33, 0.33, 0.32), "spec": 0.03, "aniso": 0.0, "opacity": (0.5, 0.85)}
    return _finish(p0, q0, cell, height, albedo, spec, shine, 0.0, 1.0, 0.0, top, "tile", scratch)


def _build_hose(rng: np.random.Generator, cell: float) -> _Part:
    length = rng.uniform(60, 70)
    radius = rng.uniform(9.0, 11.5)
    sag = rng.uniform(-4.0, 4.0)
    kappa = sag / (length / 2) ** 2
    p, q, p0, q0 = _grid(length / 2, radius + abs(sag), cell)
    centre = kappa * p * p - sag / 2
    d = (q - centre) / np.sqrt(1 + (2 * kappa * p) ** 2)  # distance across the (curved) axis
    inside = (np.abs(d) < radius) & (np.abs(p) < length / 2)
    e_end = length / 2 - np.abs(p)
    crown = radius + np.sqrt(np.maximum(radius * radius - d * d, 0))
    height = np.where(inside, crown - _edge_drop(e_end, 0.8), 0.0)
    rubber = np.array([0.032, 0.032, 0.035]) * rng.uniform(0.85, 1.3)
    grain = 1 + 0.1 * _noise2d(rng, p.shape, 0.25 / cell) + 0.06 * _noise2d(rng, p.shape, 6.0 / cell)
    albedo = rubber * grain[..., None]
    if rng.random() < 0.5:  # faded print line along the hose
        col = np.array([[0.7, 0.7, 0.65], [0.75, 0.6, 0.1], [0.1, 0.25, 0.6]][int(rng.integers(3))])
        d0 = radius * rng.uniform(-0.5, 0.5)
        w = rng.uniform(0.8, 1.6)
        dash = rng.uniform(4, 9)
        line = _smoothstep(w, w - 0.3, np.abs(d - d0)) * _smoothstep(0.3 * dash, 0.4 * dash, np.mod(p, dash))
        alpha = rng.uniform(0.08, 0.25) * line * (1 + 0.3 * _noise2d(rng, p.shape, 0.5 / cell))
        albedo = albedo * (1 - alpha[..., None]) + col * alpha[..., None]
    spec = rng.uniform(0.05, 0.1) * (1 + 0.2 * grain)
    shine = rng.uniform(8, 18)
    top = inside & (np.abs(d) < 0.55 * radius) & (e_end > 3.0)
    scratch = {"colour": (0.12, 0.12, 0.12), "spec": 0.02, "aniso": 0.0}
    t_norm = 1 / np.sqrt(1 + (2 * kappa * p) ** 2)
    part = _finish(p0, q0, cell, height, albedo, spec, shine, 0.2, t_norm, 2 * kappa * p * t_norm,
                   np.zeros_like(inside), "hose", scratch)
    part.top = top  # the crown is curved: skip the flatness test
    return part


_BUILDERS = {"bracket": _build_bracket, "gear": _build_gear, "tile": _build_tile, "hose": _build_hose}


# ----------------------------------------------------------------------------- defects


def _window(part: _Part, ci: int, cj: int, radius_mm: float) -> tuple[slice, slice]:
    n = int(np.ceil(radius_mm / part.cell)) + 2
    r, c = part.shape
    return slice(max(ci - n, 0), min(ci + n + 1, r)), slice(max(cj - n, 0), min(cj + n + 1, c))


def _pick_centre(rng, part: _Part, dist_mm: np.ndarray, margin_mm: float) -> tuple[int, int, float]:
    """A random top-face cell at least ``margin_mm`` from the edge of the top faces
    (the margin shrinks if no cell qualifies); returns (row, col, margin used)."""
    flat = dist_mm.ravel()
    margin = margin_mm
    for _ in range(40):
        cand = np.flatnonzero(flat > margin)
        if cand.size:
            k = int(cand[rng.integers(cand.size)])
            return k // part.shape[1], k % part.shape[1], margin
        margin *= 0.85
    raise RuntimeError("part has no top face for a defect")  # pragma: no cover - builders always have one


def _apply_defect(rng: np.random.Generator, part: _Part, kind: str) -> tuple[_Part, dict, tuple[slice, slice]]:
    """A copy of ``part`` with one defect added to its rasters, the defect's parameters and
    the raster window it changed."""
    out = part.copy()
    dist = ndimage.distance_transform_edt(part.top) * part.cell
    H, mat = out.height, out.mat
    info: dict = {"type": kind}
    if kind in ("dent", "bump"):
        amp = rng.uniform(0.2, 1.0)
        sigma = rng.uniform(1.5, 4.0)
        ci, cj, margin = _pick_centre(rng, part, dist, 2.4 * sigma)
        sigma = min(sigma, margin / 2.4)
        win = _window(part, ci, cj, 3.2 * sigma)
        p, q = part.coords(win)
        pc, qc = part.p0 + cj * part.cell, part.q0 + ci * part.cell
        ax = rng.uniform(0.75, 1.0)  # slightly elliptical
        ang = rng.uniform(0, np.pi)
        du = (p - pc) * np.cos(ang) + (q - qc) * np.sin(ang)
        dv = -(p - pc) * np.sin(ang) + (q - qc) * np.cos(ang)
        prof = np.exp(-0.5 * ((du / sigma) ** 2 + (dv / (sigma * ax)) ** 2))
        prof *= np.clip(dist[win] / 0.5, 0, 1)
        H[win] += (amp if kind == "bump" else -amp) * prof
        info.update(depth_mm=round(amp, 4), sigma_mm=round(sigma, 4), centre_mm=(round(pc, 3), round(qc, 3)))
    elif kind == "scratch":
        length = rng.uniform(14.0, 30.0)
        ci, cj, _ = _pick_centre(rng, part, dist, length / 4 + 1.0)  # clipped where the face ends
        pc, qc = part.p0 + cj * part.cell, part.q0 + ci * part.cell
        ang = rng.uniform(0, np.pi)
        dirv = np.array([np.cos(ang), np.sin(ang)])
        perp = np.array([-dirv[1], dirv[0]])
        n_strokes = int(rng.choice([1, 2, 2, 3]))
        width = rng.uniform(0.6, 1.4)
        groove = rng.uniform(0.02, 0.1)
        bend = rng.uniform(-0.02, 0.02)
        pts = []
        for k in range(n_strokes):
            off = 0.0 if k == 0 else rng.uniform(0.8, 2.5) * (1 if k == 1 else -1)
            lk = length * (1.0 if k == 0 else rng.uniform(0.4, 0.8))
            sk = rng.uniform(-0.5, 0.5) * (length - lk)
            s = np.linspace(-lk / 2, lk / 2, max(int(lk / 0.05), 2)) + sk
            pts.append(np.array([pc, qc]) + s[:, None] * dirv + (off + bend * s * s)[:, None] * perp)
        pts = np.concatenate(pts)
        win = _window(part, ci, cj, length / 2 + 4.0)
        p, q = part.coords(win)
        d, _ = cKDTree(pts).query(np.column_stack([p.ravel(), q.ravel()]), distance_upper_bound=width)
        d = np.minimum(d, width).reshape(p.shape)
        half = width / 2
        core = _smoothstep(half + 0.08, half - 0.08, d) * np.clip(dist[win] / 0.3, 0, 1)
        style = part.scratch_style
        lo, hi = style.get("opacity", (0.7, 1.0))
        alpha = rng.uniform(lo, hi) * core * (0.85 + 0.15 * rng.random(core.shape))
        a3 = alpha[..., None]
        m = mat[win]
        m[..., _ALB] = m[..., _ALB] * (1 - a3) + np.array(style["colour"]) * rng.uniform(0.85, 1.15) * a3
        m[..., _SPEC] = m[..., _SPEC] * (1 - alpha) + style["spec"] * alpha
        m[..., _ANISO] = m[..., _ANISO] * (1 - alpha) + style["aniso"] * alpha
        H[win] -= groove * np.clip(1 - (d / half) ** 2, 0, 1) * core
        info.update(length_mm=round(length, 3), width_mm=round(width, 3), groove_mm=round(groove, 4),
                    strokes=n_strokes, centre_mm=(round(pc, 3), round(qc, 3)))
    elif kind == "contamination":
        size = rng.uniform(5.0, 10.0)  # across (mm)
        ci, cj, margin = _pick_centre(rng, part, dist, size * 0.6 + 0.5)
        pc, qc = part.p0 + cj * part.cell, part.q0 + ci * part.cell
        win = _window(part, ci, cj, size * 1.2 + 1.0)
        p, q = part.coords(win)
        fieldv = np.zeros(p.shape, dtype=np.float32)
        for _ in range(int(rng.integers(2, 5))):
            oc = rng.normal(0, size * 0.15, 2)
            ax, ay = size * rng.uniform(0.22, 0.4, 2)
            ang = rng.uniform(0, np.pi)
            du = (p - pc - oc[0]) * np.cos(ang) + (q - qc - oc[1]) * np.sin(ang)
            dv = -(p - pc - oc[0]) * np.sin(ang) + (q - qc - oc[1]) * np.cos(ang)
            fieldv += np.exp(-((du / ax) ** 2 + (dv / ay) ** 2))
        fieldv *= 1 + 0.15 * _noise2d(rng, p.shape, 0.5 / part.cell)
        cover = _smoothstep(0.35, 0.55, fieldv) * np.clip(dist[win] / 0.3, 0, 1)
        lift = rng.uniform(0.2, 0.8)
        H[win] += lift * _smoothstep(0.35, 0.9, fieldv) * np.clip(dist[win] / 0.3, 0, 1)
        kind_c = str(rng.choice(["oil", "paint", "dust", "glue"]))
        colour, spec, shine = {
            "oil": ((0.05, 0.035, 0.02), 0.6, 90.0),
            "paint": (tuple(rng.uniform(0.05, 0.7, 3)), 0.25, 40.0),
            "dust": ((0.55, 0.52, 0.45), 0.02, 6.0),
            "glue": ((0.55, 0.45, 0.18), 0.45, 120.0),
        }[kind_c]
        if part.kind == "hose" and kind_c == "oil":
            colour = (0.25, 0.2, 0.12)  # oil on black rubber: a brownish smear
        opacity = rng.uniform(0.75, 1.0)
        a = cover * opacity
        m = mat[win]
        m[..., _ALB] = m[..., _ALB] * (1 - a[..., None]) + np.array(colour) * a[..., None]
        m[..., _SPEC] = m[..., _SPEC] * (1 - a) + spec * a
        m[..., _SHINE] = m[..., _SHINE] * (1 - a) + shine * a
        m[..., _ANISO] *= 1 - a
        info.update(material=kind_c, size_mm=round(size, 3), height_mm=round(lift, 4), centre_mm=(round(pc, 3), round(qc, 3)))
    elif kind == "hole":
        rad = rng.uniform(2.2, 4.5)
        ci, cj, margin = _pick_centre(rng, part, dist, rad + 0.8)
        rad = min(rad, max(margin - 0.8, 1.2))
        pc, qc = part.p0 + cj * part.cell, part.q0 + ci * part.cell
        local = float(part.height[ci, cj])
        depth = min(rng.uniform(2.0, 4.0), local - 1.5)
        win = _window(part, ci, cj, rad * 1.3 + 1.0)
        p, q = part.coords(win)
        ang = np.arctan2(q - qc, p - pc)
        wobble = 1 + sum(rng.uniform(-0.08, 0.08) * np.cos(k * ang + rng.uniform(0, 6.3)) for k in (2, 3, 5))
        rr = np.hypot(p - pc, q - qc) / (rad * wobble)
        inside = _smoothstep(1.0 + 0.06, 1.0 - 0.06, rr)
        bottom = depth * (1 + 0.08 * _noise2d(rng, p.shape, 0.4 / part.cell))
        H[win] -= inside * bottom
        rim = _smoothstep(1.35, 1.0, rr) * (1 - inside)
        m = mat[win]
        dark = rng.uniform(0.06, 0.18)
        m[..., _ALB] *= (1 - inside * (1 - dark) - rim * 0.35)[..., None]
        m[..., _SPEC] *= 1 - 0.9 * inside
        m[..., _DROP] = np.maximum(m[..., _DROP], inside * rng.uniform(0.55, 0.95))
        info.update(radius_mm=round(rad, 3), depth_mm=round(depth, 3), centre_mm=(round(pc, 3), round(qc, 3)))
    else:  # pragma: no cover - validated by the caller
        raise ValueError(kind)
    return out, info, win


# ----------------------------------------------------------------------------- camera and rendering


@lru_cache(maxsize=4)
def _rays(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel ray (x/z, y/z) for rays (x/z, y/z, 1) and the unit view direction (towards the
    camera) as float32 components. Read-only, shared between samples of one size."""
    f = FOCAL_PER_PIXEL * size
    xs = (np.arange(size) - (size - 1) / 2) / f
    rx = np.broadcast_to(xs[None, :], (size, size)).ravel()
    ry = np.broadcast_to(xs[:, None], (size, size)).ravel()
    inv = 1.0 / np.sqrt(rx * rx + ry * ry + 1.0)
    out = (rx, ry, (-rx * inv).astype(np.float32), (-ry * inv).astype(np.float32), (-inv).astype(np.float32))
    for a in out:
        a.flags.writeable = False
    return out


@dataclass
class _View:
    size: int
    d0: float  # table plane: n·X = d0 (mm)
    k: np.ndarray  # (M,) n·ray
    p0: np.ndarray  # part-frame position where the ray meets the table (c = 0)
    q0: np.ndarray
    dp: np.ndarray  # change of p per mm of height c
    dq: np.ndarray
    e_a: np.ndarray
    e_b: np.ndarray
    e_c: np.ndarray
    cos_t: float  # part rotation in the table plane
    sin_t: float
    a0: np.ndarray  # table-frame position at c = 0 (for the table texture)
    b0: np.ndarray


def _view(rng: np.random.Generator, size: int, part: _Part, hmax: float,
          distance_scale: float = 1.0) -> tuple[_View, dict]:
    dist = rng.uniform(390.0, 420.0) * distance_scale
    tilt = np.deg2rad(rng.uniform(0.3, 3.0))
    az = rng.uniform(0, 2 * np.pi)
    n = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), np.cos(tilt)])
    e_c = -n
    e_a = np.array([1.0, 0.0, 0.0]) - n[0] * n
    e_a /= np.linalg.norm(e_a)
    e_b = np.cross(e_c, e_a)
    rx, ry = _rays(size)[:2]
    k = n[0] * rx + n[1] * ry + n[2]
    origin_z = dist / n[2]  # the optical axis meets the table here
    ra = e_a[0] * rx + e_a[1] * ry + e_a[2]
    rb = e_b[0] * rx + e_b[1] * ry + e_b[2]
    a0 = dist / k * ra - e_a[2] * origin_z
    b0 = dist / k * rb - e_b[2] * origin_z
    da, db = -ra / k, -rb / k
    theta = rng.uniform(0, 2 * np.pi)
    ct, st = np.cos(theta), np.sin(theta)
    # keep the part (with the perspective growth of its top) inside the frame, with a margin
    half_fov = dist / (2 * FOCAL_PER_PIXEL)
    reach = part.bounding_radius() * dist / (dist - hmax)
    room = max(0.92 * half_fov - reach, 0.0)
    rad = room * np.sqrt(rng.random())
    ang = rng.uniform(0, 2 * np.pi)
    sa, sb = rad * np.cos(ang), rad * np.sin(ang)
    p0 = ct * (a0 - sa) + st * (b0 - sb)
    q0 = -st * (a0 - sa) + ct * (b0 - sb)
    dp = ct * da + st * db
    dq = -st * da + ct * db
    view = _View(size, dist, k, p0, q0, dp, dq, e_a, e_b, e_c, ct, st, a0, b0)
    info = {"distance_mm": round(dist, 3), "tilt_deg": round(float(np.rad2deg(tilt)), 3),
            "rotation_deg": round(float(np.rad2deg(theta)), 2), "shift_mm": (round(sa, 3), round(sb, 3))}
    return view, info


def _bilinear(flat: np.ndarray, ncols: int, nrows: int, fi: np.ndarray, fj: np.ndarray) -> np.ndarray:
    fi = np.clip(fi, 0, nrows - 1.001)
    fj = np.clip(fj, 0, ncols - 1.001)
    i0 = fi.astype(np.intp)
    j0 = fj.astype(np.intp)
    wi = fi - i0
    wj = fj - j0
    k = i0 * ncols + j0
    top = flat[k] * (1 - wj) + flat[k + 1] * wj
    bot = flat[k + ncols] * (1 - wj) + flat[k + ncols + 1] * wj
    return top * (1 - wi) + bot * wi


def _rays_over(view: _View, part: _Part, hmax: float, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Pixels whose ray, between the table and height hmax, passes over the part-frame box
    (p_lo, p_hi, q_lo, q_hi); default: the whole raster."""
    if box is None:
        nrows, ncols = part.shape
        box = (part.p0, part.p0 + (ncols - 1) * part.cell, part.q0, part.q0 + (nrows - 1) * part.cell)
    p_lo, p_hi, q_lo, q_hi = box
    p1 = view.p0 + hmax * view.dp
    q1 = view.q0 + hmax * view.dq
    return np.flatnonzero(
        (np.maximum(view.p0, p1) > p_lo) & (np.minimum(view.p0, p1) < p_hi)
        & (np.maximum(view.q0, q1) > q_lo) & (np.minimum(view.q0, q1) < q_hi)
    )


def _intersect(view: _View, part: _Part, cand: np.ndarray, hmax: float):
    """For the pixels ``cand``: height c (mm) where the ray first meets the scene, and for the
    rays that hit the part, their positions in ``cand`` and fractional raster (row, col).

    The march visits fixed multiples of the step (independent of the part), so two renders of
    the same scene give identical results wherever the height field is the same."""
    nrows, ncols = part.shape
    flat = part.height.ravel()
    inv = 1.0 / part.cell
    fj0 = ((view.p0[cand] - part.p0) * inv).astype(np.float32)
    fi0 = ((view.q0[cand] - part.q0) * inv).astype(np.float32)
    dj = (view.dp[cand] * inv).astype(np.float32)
    di = (view.dq[cand] * inv).astype(np.float32)
    lo = np.zeros(cand.size, dtype=np.float32)
    alive = np.arange(cand.size)
    n_levels = int(np.ceil(hmax / _MARCH_STEP_MM))
    for level in range(n_levels, 0, -1):
        if alive.size == 0:
            break
        c = np.float32(level * _MARCH_STEP_MM)
        j = np.rint(fj0[alive] + c * dj[alive]).astype(np.intp)
        i = np.rint(fi0[alive] + c * di[alive]).astype(np.intp)
        np.clip(j, 0, ncols - 1, out=j)
        np.clip(i, 0, nrows - 1, out=i)
        hit = flat[i * ncols + j] >= c
        if hit.any():
            lo[alive[hit]] = c
            alive = alive[~hit]
    hits = np.flatnonzero(lo > 0)
    lo = lo[hits]
    hi = lo + np.float32(_MARCH_STEP_MM)
    fj0, fi0, dj, di = fj0[hits], fi0[hits], dj[hits], di[hits]
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        above = _bilinear(flat, ncols, nrows, fi0 + mid * di, fj0 + mid * dj) < mid
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    mid = 0.5 * (lo + hi)
    cstar = np.clip(_bilinear(flat, ncols, nrows, fi0 + mid * di, fj0 + mid * dj), lo, hi)
    c_all = np.zeros(cand.size, dtype=np.float64)
    c_all[hits] = cstar
    return c_all, hits, fi0 + cstar * di, fj0 + cstar * dj


@dataclass
class _Lights:
    ambient: np.ndarray  # (3,)
    dirs: list  # unit vectors from the surface towards each light (camera frame)
    colours: list  # (3,) intensity × tint


def _lights(rng: np.random.Generator) -> tuple[_Lights, dict]:
    az = rng.uniform(0, 2 * np.pi)
    zen = np.deg2rad(rng.uniform(20, 50))
    az2 = az + rng.uniform(np.deg2rad(120), np.deg2rad(240))
    zen2 = np.deg2rad(rng.uniform(30, 65))
    k1, k2 = rng.uniform(4200, 6500), rng.uniform(3300, 6000)
    i1, i2 = rng.uniform(0.6, 0.85), rng.uniform(0.2, 0.4)
    amb = rng.uniform(0.07, 0.14) * _kelvin(rng.uniform(4500, 6500))
    dirs = [np.array([np.sin(z) * np.cos(a), np.sin(z) * np.sin(a), -np.cos(z)]) for z, a in ((zen, az), (zen2, az2))]
    info = {"key": {"kelvin": round(k1), "intensity": round(i1, 3)}, "fill": {"kelvin": round(k2), "intensity": round(i2, 3)}}
    return _Lights(amb, dirs, [i1 * _kelvin(k1), i2 * _kelvin(k2)]), info


def _table_albedo(rng: np.random.Generator, view: _View) -> tuple[np.ndarray, float, float, str]:
    """Per-pixel albedo (M, 3), specular strength and exponent of the table top."""
    a, b = view.a0.astype(np.float32), view.b0.astype(np.float32)
    style = str(rng.choice(["wood", "mat", "laminate"], p=[0.4, 0.35, 0.25]))
    m = a.size
    grid_cell = 1.5
    half = 90.0
    ng = int(2 * half / grid_cell) + 2
    fine = rng.standard_normal(m, dtype=np.float32)

    def smooth(corr_cells: float) -> np.ndarray:
        g = _noise2d(rng, (ng, ng), corr_cells)
        return _bilinear(g.ravel(), ng, ng, (b + half) / grid_cell, (a + half) / grid_cell)

    if style == "wood":
        ang = rng.uniform(0, np.pi)
        v = -a * np.float32(np.sin(ang)) + b * np.float32(np.cos(ang))
        warp = smooth(12.0)
        period = np.float32(rng.uniform(1.8, 3.5))
        grain = (0.5 + 0.5 * np.sin(np.float32(2 * np.pi) * (v + 4.0 * warp) / period)) ** 2.5
        light = (np.array([0.50, 0.33, 0.17]) * rng.uniform(0.8, 1.15)).astype(np.float32)
        dark = light * np.array([0.62, 0.56, 0.50], dtype=np.float32)
        albedo = light + (dark - light) * grain[:, None]
        albedo *= (1 + 0.06 * fine + 0.05 * smooth(4.0))[:, None]
        return albedo, 0.08, 20.0, style
    if style == "mat":
        base = np.array([[0.10, 0.16, 0.13], [0.10, 0.12, 0.18]][int(rng.integers(2))]) * rng.uniform(0.8, 1.2)
        albedo = base.astype(np.float32) * (1 + 0.1 * fine + 0.06 * smooth(3.0))[:, None]
        return albedo, 0.03, 8.0, style
    base = np.array([0.42, 0.42, 0.40]) * rng.uniform(0.8, 1.1)
    speck = (rng.random(m, dtype=np.float32) < 0.04) * rng.uniform(-0.25, 0.15, m).astype(np.float32)
    albedo = base.astype(np.float32) * (1 + 0.04 * fine + speck + 0.03 * smooth(8.0))[:, None]
    return albedo, 0.12, 40.0, style


def _shade(albedo, spec, shine, aniso, normal, tangent, view_dir, lights: _Lights):
    """Ambient + Lambert + Blinn-Phong / Kajiya-Kay highlights of two directional lights.
    Vectors are (x, y, z) tuples of float32 arrays; returns (rgb (n, 3), highlight (n, 3))."""
    nx, ny, nz = normal
    vx, vy, vz = view_dir
    diffuse = np.broadcast_to(lights.ambient.astype(np.float32), albedo.shape).copy()
    highlight = np.zeros_like(albedo)
    half_shine = shine * np.float32(0.5)
    for ldir, lcol in zip(lights.dirs, lights.colours):
        lx, ly, lz = (np.float32(v) for v in ldir)
        ndl = np.maximum(nx * lx + ny * ly + nz * lz, 0)
        hx, hy, hz = vx + lx, vy + ly, vz + lz
        inv = 1 / np.sqrt(hx * hx + hy * hy + hz * hz)
        hx *= inv
        hy *= inv
        hz *= inv
        ndh = np.maximum(nx * hx + ny * hy + nz * hz, 0)
        s = (1 - aniso) * ndh**shine
        if tangent is not None:
            tdh = tangent[0] * hx + tangent[1] * hy + tangent[2] * hz
            s += aniso * np.maximum(1 - tdh * tdh, 0) ** half_shine * (ndl > 0)
        s *= spec
        lcol = lcol.astype(np.float32)
        diffuse += ndl[:, None] * lcol
        highlight += s[:, None] * lcol
    return albedo * diffuse, highlight


_LUM = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


@dataclass
class _Render:
    """Per-pixel render results (for all pixels, or for a subset ``pix``)."""

    pix: np.ndarray | None  # pixel indices, None = all
    z: np.ndarray  # depth along the optical axis (mm)
    part: np.ndarray  # bool, pixel sees the part
    rgb: np.ndarray  # (n, 3) linear radiance
    diffuse_lum: np.ndarray  # lit brightness without highlights
    spec_lum: np.ndarray  # highlight brightness
    cos_view: np.ndarray  # cosine between surface normal and view direction
    drop: np.ndarray  # extra dropout probability from the material


def _render_table(view: _View, table, lights: _Lights) -> _Render:
    """The bare table seen by every pixel."""
    m = view.size * view.size
    vdir = _rays(view.size)[2:]
    ec = tuple(np.full(1, v, dtype=np.float32) for v in view.e_c)
    albedo, spec, shine, _ = table
    rgb, hl = _shade(albedo, np.float32(spec), np.float32(shine), np.float32(0), ec, None, vdir, lights)
    cos_view = ec[0] * vdir[0] + ec[1] * vdir[1] + ec[2] * vdir[2]
    return _Render(None, view.d0 / view.k, np.zeros(m, dtype=bool), rgb + hl, (rgb @ _LUM), hl @ _LUM,
                   cos_view, np.zeros(m, dtype=np.float32))


def _render(view: _View, part: _Part, table_render: _Render, lights: _Lights, pix: np.ndarray, hmax: float) -> _Render:
    """Render the pixels ``pix`` with the part in place (the table where rays miss it)."""
    c, hits, fi, fj = _intersect(view, part, pix, hmax)
    z = (view.d0 - c) / view.k[pix]
    out = _Render(pix, z, np.zeros(pix.size, dtype=bool), table_render.rgb[pix].copy(),
                  table_render.diffuse_lum[pix].copy(), table_render.spec_lum[pix].copy(),
                  table_render.cos_view[pix].copy(), np.zeros(pix.size, dtype=np.float32))
    if hits.size == 0:
        return out
    nrows, ncols = part.shape
    ii = np.clip(np.rint(fi), 0, nrows - 1).astype(np.intp)
    jj = np.clip(np.rint(fj), 0, ncols - 1).astype(np.intp)
    cell_idx = ii * ncols + jj
    mat = part.mat.reshape(-1, _NCH)[cell_idx]
    gq, gp = part.gradient()
    gp = gp.ravel()[cell_idx]
    gq = gq.ravel()[cell_idx]
    ct, st = np.float32(view.cos_t), np.float32(view.sin_t)
    ga = ct * gp - st * gq
    gb = st * gp + ct * gq
    ea, eb, ec = (v.astype(np.float32) for v in (view.e_a, view.e_b, view.e_c))
    nx = ec[0] - ga * ea[0] - gb * eb[0]
    ny = ec[1] - ga * ea[1] - gb * eb[1]
    nz = ec[2] - ga * ea[2] - gb * eb[2]
    inv = 1 / np.sqrt(nx * nx + ny * ny + nz * nz)
    normal = (nx * inv, ny * inv, nz * inv)
    tx, ty = mat[:, _TX], mat[:, _TY]
    ta = ct * tx - st * ty
    tb = st * tx + ct * ty
    tangent = tuple(ta * ea[i] + tb * eb[i] for i in range(3))
    vdir = tuple(v[pix[hits]] for v in _rays(view.size)[2:])
    rgb, hl = _shade(mat[:, _ALB], mat[:, _SPEC], mat[:, _SHINE], mat[:, _ANISO], normal, tangent, vdir, lights)
    out.part[hits] = True
    out.rgb[hits] = rgb + hl
    out.diffuse_lum[hits] = rgb @ _LUM
    out.spec_lum[hits] = hl @ _LUM
    out.cos_view[hits] = normal[0] * vdir[0] + normal[1] * vdir[1] + normal[2] * vdir[2]
    out.drop[hits] = mat[:, _DROP]
    return out


def _merge(base: _Render, sub: _Render) -> _Render:
    """``base`` (all pixels) with the pixels of ``sub`` replaced."""
    out = _Render(None, base.z.copy(), base.part.copy(), base.rgb.copy(), base.diffuse_lum.copy(),
                  base.spec_lum.copy(), base.cos_view.copy(), base.drop.copy())
    for name in ("z", "part", "rgb", "diffuse_lum", "spec_lum", "cos_view", "drop"):
        getattr(out, name)[sub.pix] = getattr(sub, name)
    return out


# ----------------------------------------------------------------------------- camera + sensor


@dataclass
class _Camera:
    exposure: float
    vignette: np.ndarray  # (M,)
    blur: float
    noise: np.ndarray  # (M, 3) unit normal draws
    read_sigma: float  # read noise (0..1 scale)
    shot_sigma: float  # shot noise at full scale (grows with the square root of the signal)


def _camera(rng: np.random.Generator, size: int) -> _Camera:
    h = (size - 1) / 2
    xs = ((np.arange(size, dtype=np.float32) - h) / h) ** 2
    vig = (1 - rng.uniform(0.05, 0.2) * 0.5 * (xs[None, :] + xs[:, None])).ravel()
    noise = rng.standard_normal((size * size, 3), dtype=np.float32)
    return _Camera(rng.uniform(0.85, 1.1), vig, rng.uniform(0.3, 0.6), noise, rng.uniform(0.002, 0.006), rng.uniform(0.004, 0.012))


def _display(rgb_lin: np.ndarray, cam: _Camera, pix: np.ndarray | None = None) -> np.ndarray:
    """Noise-free display values (0..1) of a linear render (of the pixels ``pix``)."""
    vig = cam.vignette if pix is None else cam.vignette[pix]
    lin = np.clip(rgb_lin * (np.float32(cam.exposure) * vig)[:, None], 0, 1)
    return lin ** np.float32(1 / 2.2)


def _photo(disp: np.ndarray, cam: _Camera, size: int) -> np.ndarray:
    img = ndimage.gaussian_filter(disp.reshape(size, size, 3), (cam.blur, cam.blur, 0))
    flat = img.reshape(-1, 3)
    sigma = np.sqrt(np.float32(cam.read_sigma**2) + np.float32(cam.shot_sigma**2) * np.maximum(flat, 0))
    flat = flat + cam.noise * sigma
    return np.clip(np.rint(flat * 255), 0, 255).astype(np.uint8).reshape(size, size, 3)


def _sensor(rng: np.random.Generator, view: _View, rnd: _Render) -> tuple[np.ndarray, dict]:
    """Noisy organized cloud (H, W, 3) in metres (float32), invalid points set to 0."""
    size = view.size
    m = size * size
    z = rnd.z.reshape(size, size)
    s0 = rng.uniform(0.05, 0.2)
    white = rng.standard_normal((size, size), dtype=np.float32)
    corr = ndimage.gaussian_filter(rng.standard_normal((size, size), dtype=np.float32), 1.5)
    corr *= np.float32(1 / (corr.std() + 1e-9))
    stripe_s = rng.uniform(0.01, 0.05)
    stripes = ndimage.gaussian_filter1d(rng.standard_normal(size), 0.7) * (stripe_s * 1.6)
    ripple = rng.uniform(0.0, 0.03) * _noise2d(rng, (size, size), size / 4)
    zn = z + (s0 * (z / 400.0) ** 2) * (0.85 * white + 0.5 * corr) + stripes[:, None] + ripple
    # depth discontinuities: dropouts and flying pixels between the two depths
    pad = np.pad(z, 1, mode="edge")
    jump = np.zeros_like(z)
    for nb in (pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]):
        d = nb - z
        jump = np.where(np.abs(d) > np.abs(jump), d, jump)
    edge = np.abs(jump) > 1.0
    u = rng.random((size, size), dtype=np.float32)
    p_edge_drop = rng.uniform(0.3, 0.7)
    p_fly = rng.uniform(0.2, 0.5)
    fly = edge & (u >= p_edge_drop) & (u < p_edge_drop + p_fly * (1 - p_edge_drop))
    frac = rng.uniform(0.2, 0.8, (size, size))
    zn = np.where(fly, z + frac * jump, zn)
    invalid = edge & (u < p_edge_drop)
    # dark, saturated and grazing surfaces, material dropouts, random invalid pixels
    dark_level = rng.uniform(0.02, 0.035)
    p_dark = rng.uniform(0.2, 0.5) * np.clip((dark_level - rnd.diffuse_lum) / (0.7 * dark_level), 0, 1)
    p_spec = np.where(rnd.spec_lum > rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.7), 0.0)
    p_graze = 0.8 * np.clip((0.22 - rnd.cos_view) / 0.22, 0, 1)
    p_rand = rng.uniform(0.0005, 0.003)
    p_keep = (1 - p_dark) * (1 - p_spec) * (1 - p_graze) * (1 - rnd.drop) * (1 - p_rand)
    invalid |= (rng.random(m, dtype=np.float32) >= p_keep).reshape(size, size)
    rx, ry = _rays(size)[:2]
    zm = np.where(invalid, 0.0, zn * 0.001).ravel()
    xyz = np.stack([rx * zm, ry * zm, zm], axis=1).astype(np.float32).reshape(size, size, 3)
    info = {"depth_sigma_mm": round(s0, 4), "stripe_mm": round(stripe_s, 4), "invalid_fraction": round(float(invalid.mean()), 5)}
    return xyz, info


# ----------------------------------------------------------------------------- one sample


@dataclass
class PartsSample:
    """One rendered sample (see :func:`render_parts_sample`)."""

    rgb: np.ndarray  # (H, W, 3) uint8
    xyz: np.ndarray  # (H, W, 3) float32 metres, invalid = 0
    mask: np.ndarray  # (H, W) bool defect mask (all False for good samples)
    part: np.ndarray  # (H, W) bool: pixels that see the part in the defect-free render
    rgb_nodefect: np.ndarray | None  # (H, W, 3) uint8: the same sample without its defect
    info: dict


def render_parts_sample(
    category: str,
    seed: int = 0,
    split: str = "test",
    label: str = "good",
    index: int = 0,
    size: int = 400,
    with_nodefect: bool = False,
    camera_distance: float = 1.0,
) -> PartsSample:
    """Render one sample of the parts family (deterministic in all arguments).

    label: "good" or a defect type of ``PARTS_DEFECT_TYPES``. with_nodefect: also fill
    ``rgb_nodefect`` for colour defects (for dents, bumps and good samples it is ``rgb``;
    otherwise None unless asked for). camera_distance: the camera's distance from the table as a
    multiple of the usual 390–420 mm (2: the part half as wide in the frame, every pixel twice as
    wide on the part, the range noise as the sensor model gives it at that distance).
    """
    if not (isinstance(camera_distance, (int, float)) and 0.5 <= camera_distance <= 4):
        raise UserError(f"camera_distance must be a number in 0.5..4, got {camera_distance!r}")
    if category not in _BUILDERS:
        raise UserError(f"unknown parts category {category!r} (known: {', '.join(PARTS_CATEGORIES)})")
    if label != "good" and label not in PARTS_DEFECT_TYPES:
        raise UserError(f"unknown parts defect type {label!r} (known: {', '.join(PARTS_DEFECT_TYPES)})")
    size = int(size)
    ss = _sample_rng(seed, category, split, label, index)
    r_part, r_view, r_light, r_table, r_defect, r_cam, r_sensor = (np.random.default_rng(s) for s in ss.spawn(7))
    pitch = 405.0 * camera_distance / FOCAL_PER_PIXEL / size  # approximate pixel pitch on the table (mm)
    clean = _BUILDERS[category](r_part, pitch / 1.25)
    part, window = clean, None
    info: dict = {"category": category, "split": split, "label": label, "index": int(index), "seed": int(seed)}
    if label != "good":
        part, dinfo, window = _apply_defect(r_defect, clean, label)
        info["defect"] = dinfo
    hmax = float(max(clean.height.max(), part.height.max())) + 0.05
    view, vinfo = _view(r_view, size, clean, hmax, camera_distance)
    lights, linfo = _lights(r_light)
    table = _table_albedo(r_table, view)
    cam = _camera(r_cam, size)
    info.update(view=vinfo, lights=linfo, table=table[3])
    table_render = _render_table(view, table, lights)
    base = _merge(table_render, _render(view, clean, table_render, lights, _rays_over(view, clean, hmax), hmax))
    disp_base = _display(base.rgb, cam)
    mask = np.zeros(size * size, dtype=bool)
    final, disp = base, disp_base
    if label != "good":
        rows, cols = window
        box = (part.p0 + (cols.start - 1) * part.cell, part.p0 + cols.stop * part.cell,
               part.q0 + (rows.start - 1) * part.cell, part.q0 + rows.stop * part.cell)
        pix = _rays_over(view, part, hmax, box)
        sub = _render(view, part, table_render, lights, pix, hmax)
        changed = np.abs(sub.z - base.z[pix]) > MASK_DEPTH_MM
        if label in ("dent", "bump"):  # geometry only: the image stays the defect-free render
            sub.rgb, sub.diffuse_lum, sub.spec_lum = base.rgb[pix], base.diffuse_lum[pix], base.spec_lum[pix]
        else:
            disp = disp_base.copy()
            disp[pix] = _display(sub.rgb, cam, pix)
            changed |= np.abs(disp[pix] - disp_base[pix]).max(axis=1) > MASK_COLOUR
        mask[pix] = changed
        final = _merge(base, sub)
    xyz, sinfo = _sensor(r_sensor, view, final)
    info["sensor"] = sinfo
    rgb = _photo(disp, cam, size)
    rgb_nd = rgb if disp is disp_base else (_photo(disp_base, cam, size) if with_nodefect else None)
    mask = mask.reshape(size, size)
    info["mask_fraction"] = round(float(mask.mean()), 6)
    return PartsSample(rgb, xyz, mask, base.part.reshape(size, size), rgb_nd, info)


# ----------------------------------------------------------------------------- dataset writer


def _write_sample(folder: Path, name: str, sample: PartsSample, with_gt: bool) -> None:
    import tifffile
    from PIL import Image

    (folder / "rgb").mkdir(parents=True, exist_ok=True)
    (folder / "xyz").mkdir(parents=True, exist_ok=True)
    Image.fromarray(sample.rgb, "RGB").save(folder / "rgb" / f"{name}.png", compress_level=1)  # noisy: fast zlib
    tifffile.imwrite(folder / "xyz" / f"{name}.tiff", sample.xyz, photometric="rgb", software=False)
    if with_gt:
        (folder / "gt").mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.mask.astype(np.uint8) * 255, "L").save(folder / "gt" / f"{name}.png")


def _params(seed, categories, size, n_train, n_validation, n_test_good, n_test_per_defect, defect_types) -> dict:
    return {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "categories": list(categories),
        "size": int(size),
        "n_train": int(n_train),
        "n_validation": int(n_validation),
        "n_test_good": int(n_test_good),
        "n_test_per_defect": int(n_test_per_defect),
        "defect_types": list(defect_types),
    }


def _read_marker(path: Path) -> dict | None:
    try:
        data = json.loads((path / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("generator") == GENERATOR_NAME else None


def _check_choice(values, known: tuple[str, ...], what: str) -> list[str]:
    values = list(known if values is None else ([values] if isinstance(values, str) else values))
    bad = [v for v in values if v not in known]
    if bad:
        raise UserError(f"unknown parts {what} {', '.join(map(repr, bad))} (known: {', '.join(known)})")
    if not values:
        raise UserError(f"no parts {what} selected (known: {', '.join(known)})")
    if len(set(values)) != len(values):
        raise UserError(f"parts {what} listed twice: {', '.join(values)}")
    return values


def generate_parts_dataset(
    out_dir: str | Path,
    seed: int = 0,
    categories=None,
    size: int = 400,
    n_train: int = 60,
    n_validation: int = 10,
    n_test_good: int = 12,
    n_test_per_defect: int = 6,
    defect_types=None,
    progress: Progress | None = None,
    force: bool = False,
    camera_distance: float = 1.0,
) -> Path:
    """Write a parts dataset in the MVTec 3D-AD layout to ``out_dir`` and return its path
    (``camera_distance``: see :func:`render_parts_sample`).

    The folder is built beside ``out_dir`` and renamed into place at the end, with
    ``.lsfa_parts.json`` holding the parameters. An existing parts dataset with the same
    parameters is returned unchanged; one with other parameters is replaced only with
    ``force=True``. A non-empty folder that is not a parts dataset is never written to.
    """
    cats = _check_choice(categories, PARTS_CATEGORIES, "category")
    defects = _check_choice(defect_types, PARTS_DEFECT_TYPES, "defect type")
    counts = {"n_train": n_train, "n_validation": n_validation, "n_test_good": n_test_good, "n_test_per_defect": n_test_per_defect}
    for key, value in counts.items():
        if int(value) != value or value < 0:
            raise UserError(f"{key} must be a whole number ≥ 0, got {value!r}")
    if n_train < 1:
        raise UserError("n_train must be at least 1")
    if int(size) != size or not 32 <= size <= 4096:
        raise UserError(f"size must be a whole number of pixels in 32..4096, got {size!r}")
    params = _params(seed, cats, size, n_train, n_validation, n_test_good, n_test_per_defect, defects)
    if camera_distance != 1.0:  # recorded only when set, so datasets made before it still match
        params["camera_distance"] = float(camera_distance)
    out = Path(out_dir).expanduser().absolute()
    existing = None
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out}: exists and is not a folder; choose another output folder")
        marker = _read_marker(out)
        if marker is not None:
            if marker == params:
                return out
            if not force:
                raise UserError(
                    f"{out}: holds a parts dataset made with other parameters; use force=True (--force) to replace it"
                )
            from core.data.generated import refuse_foreign

            refuse_foreign(out, marker, MARKER_NAME)
            existing = out
        elif any(out.iterdir()):
            raise UserError(f"{out}: folder is not empty and is not a parts dataset; refusing to write into it")
    p = ensure(progress)
    jobs: list[tuple[str, str, str, int]] = []
    for cat in cats:
        jobs += [(cat, "train", "good", i) for i in range(n_train)]
        jobs += [(cat, "validation", "good", i) for i in range(n_validation)]
        jobs += [(cat, "test", "good", i) for i in range(n_test_good)]
        jobs += [(cat, "test", d, i) for d in defects for i in range(n_test_per_defect)]
    widths = {}
    for cat, split, label, i in jobs:
        widths[(cat, split, label)] = max(widths.get((cat, split, label), 3), len(str(i)))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise UserError(f"{out.parent}: cannot write here ({exc.__class__.__name__}: {exc.strerror or exc})") from None
    try:
        stage = "Generating parts data"
        for n, (cat, split, label, i) in enumerate(jobs):
            p.update(stage, n, len(jobs), f"{cat}/{split}/{label}/{i}")
            sample = render_parts_sample(cat, seed, split, label, i, size, camera_distance=camera_distance)
            name = str(i).zfill(widths[(cat, split, label)])
            _write_sample(tmp / cat / split / label, name, sample, with_gt=split == "test")
        p.update(stage, len(jobs), len(jobs))
        (tmp / MARKER_NAME).write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
        if existing is not None:
            trash = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(out, trash)
            try:
                os.replace(tmp, out)
            except OSError:
                os.replace(trash, out)  # put the old dataset back
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            if out.exists():
                out.rmdir()  # empty folder
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
