"""Demo object models (puck, cookie): height field + albedo on a grid in object coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.demo.camera import _CAMERA_DISTANCE_M, _FOCAL_PER_PIXEL, _GRID_HALF_EXTENT_M
from core.demo.textures import _Textures, _sample_wrapped, _smoothstep


DEMO_CATEGORIES: tuple[str, ...] = ("puck", "cookie")



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




PRINT_BLOTCHES = 12  # the print variation's random field has about this many blotches across the grid


def _varied_print(obj: _Object, rng: np.random.Generator, amount: float) -> _Object:
    """``obj`` with its albedo multiplied, on the object only, by a smooth random colour field
    of this sample (each channel 1 + ``amount`` × unit-std noise, blotches ~1/12 of the grid
    wide, clipped to [0.1, 2]): a print or finish that differs from part to part, so that the
    RGB image of good parts varies (``rng``: the sample's own print stream)."""
    from dataclasses import replace

    from scipy.ndimage import zoom

    coarse = rng.standard_normal((PRINT_BLOTCHES + 3, PRINT_BLOTCHES + 3, 3))
    field = zoom(coarse, (obj.albedo.shape[0] / coarse.shape[0], obj.albedo.shape[1] / coarse.shape[1], 1), order=3,
                 mode="nearest", grid_mode=True)
    field /= field.std() + 1e-12
    gain = np.clip(1.0 + amount * field * obj.coverage[..., None], 0.1, 2.0)
    return replace(obj, albedo=np.clip(obj.albedo * gain, 0.0, 1.0).astype(obj.albedo.dtype))


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
