"""Camera rays, ray / height-field intersection, lights and shading of one view."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.data.parts.common import (
    _ALB, _ANISO, _BISECT_STEPS, _DROP, _kelvin, _MARCH_STEP_MM, _NCH, _noise2d, _SHINE, _SPEC,
    _TX, _TY, FOCAL_PER_PIXEL,
)
from core.data.parts.shapes import _Part


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


