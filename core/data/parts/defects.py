"""Defects painted into a part raster (mm): dent, bump, scratch, contamination, hole."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from core.data.parts.common import _ALB, _ANISO, _DROP, _noise2d, _SHINE, _smoothstep, _SPEC
from core.data.parts.shapes import _Part


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


