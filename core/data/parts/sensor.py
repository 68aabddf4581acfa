"""The RGB camera's exposure and noise, and the depth sensor's noise and dropouts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.data.parts.common import _noise2d
from core.data.parts.optics import _rays, _Render, _View


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


