"""The four part categories as height-field rasters with material channels (mm)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.data.parts.common import (
    _ALB, _ANISO, _edge_drop, _interp1d, _NCH, _noise1d, _noise2d, _sdf_box, _SHINE, _smoothstep,
    _SPEC, _TX, _TY,
)


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


def _build_bracket(design: np.random.Generator, rng: np.random.Generator, cell: float) -> _Part:
    length = design.uniform(58, 66)
    width = design.uniform(34, 40)
    thick = design.uniform(7.0, 9.0)
    step = design.uniform(5.0, 8.0)
    bend = design.uniform(3.5, 5.5)
    flange = design.uniform(0.22, 0.32) * length
    corner = design.uniform(2.5, 5.0)
    r_edge = design.uniform(0.4, 0.8)
    p, q, p0, q0 = _grid(length / 2, width / 2, cell)
    pb = length / 2 - flange - bend  # start of the bend
    t = np.clip((p - pb) / bend, 0, 1)
    base = thick + step * t * t * t * (t * (6 * t - 15) + 10)  # smootherstep Z-bend
    sdf = _sdf_box(p, q, length / 2, width / 2, corner)
    low_len = pb + length / 2
    holes = [
        (-length / 2 + low_len * design.uniform(0.3, 0.45), width * design.uniform(0.22, 0.3), design.uniform(2.5, 3.8)),
        (-length / 2 + low_len * design.uniform(0.3, 0.45), -width * design.uniform(0.22, 0.3), design.uniform(2.5, 3.8)),
        (length / 2 - flange * design.uniform(0.45, 0.55), design.uniform(-2, 2), design.uniform(2.5, 4.0)),
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


def _build_gear(design: np.random.Generator, rng: np.random.Generator, cell: float) -> _Part:
    teeth = int(design.integers(16, 26))
    r_tip = design.uniform(29, 33)
    depth = design.uniform(2.4, 3.4)
    r_root = r_tip - depth
    thick = design.uniform(8.0, 10.0)
    hub_r = design.uniform(9.0, 12.0)
    hub_h = design.uniform(2.0, 3.5)
    bore_r = design.uniform(4.0, 5.5)
    key_w = design.uniform(1.6, 2.6)
    key_d = design.uniform(1.2, 2.0)
    key_angle = design.uniform(0, 2 * np.pi)
    web_in = hub_r + design.uniform(1.5, 2.5)
    web_out = r_root - design.uniform(2.5, 3.5)
    web_depth = design.uniform(0.6, 1.5)
    phase = design.uniform(0, 2 * np.pi)
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
    n_light = int(design.choice([0, 4, 5, 6]))
    if n_light and web_out - web_in > 5.0:
        lr = min(design.uniform(2.2, 3.5), (web_out - web_in) / 2 - 1.2)
        lc = (web_in + web_out) / 2
        a0 = design.uniform(0, 2 * np.pi)
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
    colour_name = str(design.choice(list(_ANODISED)))
    colour = np.array(_ANODISED[colour_name]) * design.uniform(0.85, 1.15, 3)
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


def _build_tile(design: np.random.Generator, rng: np.random.Generator, cell: float) -> _Part:
    side_p = design.uniform(50, 56)
    side_q = side_p * design.uniform(0.96, 1.04)
    thick = design.uniform(7.0, 9.0)
    corner = design.uniform(0.6, 1.6)
    r_edge = design.uniform(0.8, 1.3)
    band = design.uniform(1.2, 2.0)
    glaze_t = design.uniform(0.15, 0.35)
    bow = rng.uniform(-0.12, 0.12)  # each tile warps in the kiln its own way
    p, q, p0, q0 = _grid(side_p / 2, side_q / 2, cell)
    sdf = _sdf_box(p, q, side_p / 2, side_q / 2, corner)
    inside = sdf < 0
    e = -sdf
    glazed = _smoothstep(band - 0.25, band + 0.25, e)
    dome = bow * (1 - (2 * p / side_p) ** 2) * (1 - (2 * q / side_q) ** 2)
    height = np.where(inside, thick + glaze_t * glazed + dome - _edge_drop(e, r_edge), 0.0)
    c1, c2 = (np.array(c) for c in _GLAZES[int(design.integers(len(_GLAZES)))])
    if design.random() < 0.5:
        c1, c2 = c2, c1
    style = int(design.integers(4))
    period = design.uniform(7.0, 13.0)
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


def _build_hose(design: np.random.Generator, rng: np.random.Generator, cell: float) -> _Part:
    length = design.uniform(60, 70)
    radius = design.uniform(9.0, 11.5)
    sag = design.uniform(-4.0, 4.0)
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
    if design.random() < 0.5:  # faded print line along the hose
        col = np.array([[0.7, 0.7, 0.65], [0.75, 0.6, 0.1], [0.1, 0.25, 0.6]][int(design.integers(3))])
        d0 = radius * design.uniform(-0.5, 0.5)
        w = design.uniform(0.8, 1.6)
        dash = design.uniform(4, 9)
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


# Each builder takes ``(design, rng, cell)``: ``design`` draws what makes the product (dimensions,
# holes, teeth, colour scheme, decor), ``rng`` what differs from part to part of one product
# (surface texture, tone, a tile's bow). Passing the same generator as both gives a new design
# for every part, the family the confirmation group was written with; a design generator seeded
# once per dataset and category gives one product per category (``one_design``).
_BUILDERS = {"bracket": _build_bracket, "gear": _build_gear, "tile": _build_tile, "hose": _build_hose}


