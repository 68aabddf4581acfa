"""Synthetic defects painted onto good samples at the model grid, for the fit-time self-check.

Input is a *prepared* sample (:func:`core.prepare.prepare_sample`: S×S uint8 RGB and/or S×S×3
float32 xyz in metres, background zeroed). Each call returns a copy with one defect and its
exact mask (the pixels the defect changed). Sizes are in pixels of the S×S grid, depths in
metres. Defects land on the part: on pixels with 3D points when there is xyz, otherwise on
pixels whose colour differs from the image border (the object), or the central region.

Types (the modalities they change), with the ``SUBTLE`` ranges (``WIDE`` doubles the sizes and
quadruples the depths; :class:`Severity`):

* ``stain``   RGB: a smooth irregular blob blended towards a random colour (alpha 0.15-0.6);
* ``cutpaste`` RGB: a rectangle copied from another good sample (or elsewhere in this one);
* ``scratch`` RGB: a thin (1-2 px) darker or brighter polyline;
* ``dent`` / ``bump`` xyz: a Gaussian displacement along the viewing ray, 0.1-1 mm deep (log-uniform),
  sigma 2-6 px; RGB unchanged (shape-only defects);
* ``hole``    both: a disc of points removed (invalid) and the RGB blackened there, as the
  preprocessing leaves a through-hole;
* ``foreign`` both: a raised blob (0.1-1 mm) with a colour change on top.

The self-check's choices use ``SUBTLE`` on purpose: obvious defects are found by every candidate,
so only subtle ones tell the candidates apart. Its estimate adds ``WIDE`` ones, because real test
sets mix subtle and gross defects (core.self_check).

Everything is drawn from the ``numpy.random.Generator`` passed in, so a seeded fit makes the
same defects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter

from core.data.sample import Sample, valid_points


@dataclass(frozen=True)
class Severity:
    """Ranges a synthetic defect's size and strength are drawn from (pixels at 224 px, scaled
    with the grid; depths in metres, log-uniform)."""

    stain_radius: tuple[float, float]
    stain_alpha: tuple[float, float]
    cutpaste_side: tuple[float, float]
    scratch_length: tuple[float, float]
    scratch_shade: tuple[float, float]  # added to or taken from 0-255 grey levels
    bump_sigma: tuple[float, float]
    bump_depth_m: tuple[float, float]
    hole_radius: tuple[float, float]


SUBTLE = Severity(stain_radius=(4, 10), stain_alpha=(0.15, 0.6), cutpaste_side=(8, 20),
                  scratch_length=(15, 40), scratch_shade=(30, 90), bump_sigma=(2, 6),
                  bump_depth_m=(0.1e-3, 1e-3), hole_radius=(3, 7))
# From the subtle end to gross (twice the sizes, four times the depths): the mix of a real test
# set, for the self-check's estimate (core.self_check); its decisions use SUBTLE.
WIDE = Severity(stain_radius=(4, 20), stain_alpha=(0.15, 0.9), cutpaste_side=(8, 40),
                scratch_length=(15, 80), scratch_shade=(30, 150), bump_sigma=(2, 12),
                bump_depth_m=(0.1e-3, 4e-3), hole_radius=(3, 14))

RGB_TYPES = ("stain", "cutpaste", "scratch")
XYZ_TYPES = ("dent", "bump")
BOTH_TYPES = ("hole", "foreign")


def types_for(modalities) -> tuple[str, ...]:
    """Defect types that change at least one of ``modalities``."""
    mods = set(modalities)
    out: tuple[str, ...] = ()
    if "rgb" in mods:
        out += RGB_TYPES
    if "xyz" in mods:
        out += XYZ_TYPES
    out += ("hole",)  # darkens RGB and/or removes points
    if "xyz" in mods:
        out += ("foreign",)  # a raised blob, recoloured when there is RGB
    return out


def object_mask(sample: Sample) -> np.ndarray:
    """S×S bool: where a defect may go (3D points, else colour unlike the border, else centre)."""
    if sample.xyz is not None:
        valid = valid_points(sample.xyz)
        if valid.sum() > 50:
            return valid
    h, w = sample.shape
    centre = np.zeros((h, w), bool)
    centre[h // 6 : h - h // 6, w // 6 : w - w // 6] = True
    if sample.rgb is None:
        return centre
    rgb = sample.rgb.astype(np.float32)
    border = np.concatenate([rgb[:4].reshape(-1, 3), rgb[-4:].reshape(-1, 3), rgb[:, :4].reshape(-1, 3), rgb[:, -4:].reshape(-1, 3)])
    dist = np.linalg.norm(rgb - np.median(border, axis=0), axis=-1)
    obj = dist > 30
    share = obj.mean()
    return obj & centre if 0.05 < share < 0.95 and (obj & centre).sum() > 50 else centre


def _pick_centre(allowed: np.ndarray, margin: int, rng: np.random.Generator) -> tuple[int, int]:
    h, w = allowed.shape
    inner = np.zeros_like(allowed)
    inner[margin : h - margin, margin : w - margin] = allowed[margin : h - margin, margin : w - margin]
    ys, xs = np.nonzero(inner if inner.any() else allowed)
    i = rng.integers(len(ys))
    return int(ys[i]), int(xs[i])


def _blob(shape, centre, radius: float, rng) -> np.ndarray:
    """Irregular soft blob in [0, 1] around ``centre`` with about ``radius`` px."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(yy - centre[0], xx - centre[1]) / radius
    noise = gaussian_filter(rng.standard_normal(shape), max(radius / 2, 1.0))
    noise /= np.abs(noise).max() + 1e-9
    return np.clip(1.5 - d + 0.5 * noise, 0, 1) ** 2


def _polyline(shape, centre, length: float, rng) -> np.ndarray:
    h, w = shape
    out = np.zeros(shape, bool)
    angle = rng.uniform(0, np.pi)
    pts = [np.array(centre, float) - 0.5 * length * np.array([np.sin(angle), np.cos(angle)])]
    for _ in range(3):
        angle += rng.uniform(-0.5, 0.5)
        pts.append(pts[-1] + (length / 3) * np.array([np.sin(angle), np.cos(angle)]))
    for a, b in zip(pts[:-1], pts[1:]):
        n = int(np.ceil(np.linalg.norm(b - a) * 2)) + 1
        t = np.linspace(0, 1, n)[:, None]
        p = np.round(a + t * (b - a)).astype(int)
        ok = (p[:, 0] >= 0) & (p[:, 0] < h) & (p[:, 1] >= 0) & (p[:, 1] < w)
        out[p[ok, 0], p[ok, 1]] = True
    return out


def add_defect(sample: Sample, kind: str, rng: np.random.Generator, donor: Sample | None = None,
               severity: Severity = SUBTLE) -> Sample:
    """A copy of ``sample`` with one defect of ``kind``; its ``mask`` is the defect's pixels and
    its ``label`` is ``"pseudo_<kind>"``. ``donor`` is the source of a cut-paste patch;
    ``severity`` the ranges of its size and strength."""
    sv = severity
    if kind in ("dent", "bump", "foreign") and sample.xyz is None:
        raise ValueError(f"pseudo-defect {kind!r} needs a point cloud")
    if kind in RGB_TYPES and sample.rgb is None:
        raise ValueError(f"pseudo-defect {kind!r} needs an RGB image")
    h, w = sample.shape
    scale = h / 224.0
    allowed = object_mask(sample)
    if sample.roi is not None and (allowed & sample.roi).any():
        allowed = allowed & sample.roi  # synthetic defects go where the model inspects
    rgb = None if sample.rgb is None else sample.rgb.astype(np.float32).copy()
    xyz = None if sample.xyz is None else sample.xyz.copy()
    centre = _pick_centre(allowed, int(12 * scale), rng)
    mask = np.zeros((h, w), bool)

    if kind == "stain":
        blob = _blob((h, w), centre, rng.uniform(*sv.stain_radius) * scale, rng) * allowed
        colour = rng.uniform(0, 255, 3)
        alpha = rng.uniform(*sv.stain_alpha)
        rgb += (alpha * blob)[..., None] * (colour - rgb)
        mask = blob > 0.15
    elif kind == "cutpaste":
        src = donor if donor is not None and donor.rgb is not None else sample
        ph, pw = (int(rng.uniform(*sv.cutpaste_side) * scale) for _ in range(2))
        y0, x0 = max(0, min(h - ph, centre[0] - ph // 2)), max(0, min(w - pw, centre[1] - pw // 2))
        sy, sx = _pick_centre(object_mask(src), max(ph, pw), rng)
        sy, sx = max(0, min(h - ph, sy - ph // 2)), max(0, min(w - pw, sx - pw // 2))
        patch = src.rgb[sy : sy + ph, sx : sx + pw].astype(np.float32)
        if src is sample or rng.random() < 0.5:
            patch = np.rot90(patch, rng.integers(1, 4)) if ph == pw else patch[::-1, ::-1]
        region = (slice(y0, y0 + ph), slice(x0, x0 + pw))
        before = rgb[region].copy()
        rgb[region] = patch
        mask[region] = np.abs(patch - before).mean(-1) > 12
    elif kind == "scratch":
        line = _polyline((h, w), centre, rng.uniform(*sv.scratch_length) * scale, rng)
        if rng.random() < 0.5 or scale > 1.5:
            line = binary_dilation(line)
        line &= allowed
        shade = rng.choice([-1.0, 1.0]) * rng.uniform(*sv.scratch_shade)
        rgb[line] = np.clip(rgb[line] + shade, 0, 255)
        mask = line
    elif kind in ("dent", "bump", "foreign"):
        sigma = rng.uniform(*sv.bump_sigma) * scale
        depth = np.exp(rng.uniform(*np.log(sv.bump_depth_m)))  # log-uniform: mostly at the low end
        yy, xx = np.mgrid[:h, :w]
        prof = np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2))
        valid = valid_points(xyz)
        prof *= valid
        sign = 1.0 if kind == "dent" else -1.0  # + = away from the camera
        ray = xyz / (np.linalg.norm(xyz, axis=-1, keepdims=True) + 1e-12)
        xyz += (sign * depth * prof)[..., None] * ray
        xyz[~valid] = 0
        mask = prof * depth > max(0.05e-3, 0.25 * depth)
        if kind == "foreign" and rgb is not None:
            colour = rng.uniform(0, 255, 3)
            rgb[mask] = 0.3 * rgb[mask] + 0.7 * colour
    elif kind == "hole":
        yy, xx = np.mgrid[:h, :w]
        disc = np.hypot(yy - centre[0], xx - centre[1]) <= rng.uniform(*sv.hole_radius) * scale
        disc &= allowed
        if xyz is not None:
            xyz[disc] = 0
        if rgb is not None:
            rgb[disc] = rgb[disc] * 0.1
        mask = disc
    else:
        raise ValueError(f"unknown pseudo-defect type {kind!r}")

    if not mask.any():  # defect fell off the part (tiny object): mark its centre pixel
        mask[centre] = True
    out_rgb = None if rgb is None else np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return replace(sample, rgb=out_rgb, xyz=xyz, mask=mask, label=f"pseudo_{kind}", name=f"{sample.name}+{kind}")


def make_pseudo_defects(samples: list[Sample], modalities, per_sample: int, rng: np.random.Generator,
                        severity: Severity = SUBTLE) -> list[Sample]:
    """``per_sample`` defective copies of each good sample, cycling through the defect types that
    change the model's modalities (donors for cut-paste are the other samples)."""
    kinds = types_for(modalities)
    out = []
    k = int(rng.integers(len(kinds)))
    for i, s in enumerate(samples):
        for _ in range(per_sample):
            kind = kinds[k % len(kinds)]
            k += 1
            donor = samples[(i + 1 + int(rng.integers(max(len(samples) - 1, 1)))) % len(samples)] if len(samples) > 1 else None
            out.append(add_defect(s, kind, rng, donor, severity))
    return out


__all__ = ["add_defect", "make_pseudo_defects", "Severity", "SUBTLE", "WIDE", "types_for", "object_mask", "RGB_TYPES", "XYZ_TYPES", "BOTH_TYPES"]
