"""A local colour-contrast block appended to the CNN's RGB patch features, weight-free.

ImageNet features at strides 8 and 16 are trained to recognise objects across changes of lighting
and colour, and they average a cell's faint changes into its texture, so a stain, a scratch or the
shading of a dent moves them less than the part's own texture does. This block measures how each
pixel's brightness and colour stand out of its surroundings, in units that a global exposure or a
white-balance change does not move:

For an image x in [0, 1] (RGB, the model grid's pixels) with ``eps`` = 0.1 (of full scale; it keeps
the camera's noise in dark regions, such as a black tire, from being amplified), three channels

    lum = log((R + G + B) / 3 + eps),   rg = log(R + eps) - log(G + eps),   bg = log(B + eps) - log(G + eps)

are each smoothed lightly (Gaussian σ ``fine_sigma_px``) and their Gaussian context at σ in
``context_sigmas_px`` (4 and 12 px at 224 px: a few cells around) is subtracted (both blurs
normalised at the image border). A multiplicative change of the light or of the camera's gain is
an additive constant of the logs wherever a pixel is well above ``eps``, so it cancels; a stain or a
scratch does not. Pooled to the patch grid per context scale (after a 3×3 average, as the CNN
maps): the cell mean, maximum and minimum of each channel (a mark a few pixels wide is diluted in
the mean of an 8×8-pixel cell), so ``3 × 3 × len(context_sigmas_px)`` = 18 channels, multiplied by
``weight``.

The weight (100) puts the block's 99th percentile of a good cell's distance to its nearest
training cell at 0.26–0.51 of the CNN features' (demo puck and cookie, the real tire and bottle:
0.05–0.09 unweighted against 15–20), so the good parts' colour variation weighs less than their
texture while a stain or a hole, many times the block's own good-part spread, still counts. It
was chosen on RGB-only fits of the evaluation suite's tuning group (weights 10, 40, 100, 200):
docs/evaluation.md, "the colour-contrast block". Cost: ~3.6 ms of CPU per 224 px image on one
thread (the context blurs on block means, :func:`_normalised_blur`; bench/bench_rgb_backbones.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import UserError
from core.features import pooling
from core.features.filters import gaussian_blur

CHANNELS = 3  # lum, rg, bg
STATISTICS = 3  # cell mean, max, min


@dataclass(frozen=True)
class ColourConfig:
    """Colour-contrast block settings (pixels at the model grid's image size; see the module)."""

    context_sigmas_px: tuple[float, ...] = (4.0, 12.0)
    fine_sigma_px: float = 1.0
    eps: float = 0.1
    weight: float = 100.0

    def __post_init__(self):
        sigmas = tuple(float(s) for s in self.context_sigmas_px)
        object.__setattr__(self, "context_sigmas_px", sigmas)
        if not sigmas or not all(math.isfinite(s) and s > self.fine_sigma_px for s in sigmas):
            raise UserError("colour context sigmas must be one or more values above the fine sigma")
        if not (math.isfinite(self.fine_sigma_px) and self.fine_sigma_px > 0):
            raise UserError("colour fine sigma must be a positive number of pixels")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise UserError("colour eps must be a positive number")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w > 0):
            raise UserError(f"colour weight must be a positive number, got {w!r}")
        object.__setattr__(self, "weight", float(w))

    @property
    def dim(self) -> int:
        return CHANNELS * STATISTICS * len(self.context_sigmas_px)


MAX_CONTEXT_STRIDE = 4  # a context blur runs on block means of at most 4×4 pixels (it is smooth)


def _context_stride(sigma: float) -> int:
    """The largest power of two ≤ σ / 2 (at most MAX_CONTEXT_STRIDE): block means that small leave a
    Gaussian of σ nearly untouched."""
    s = 1
    while 2 * s <= min(sigma / 2, MAX_CONTEXT_STRIDE):
        s *= 2
    return s


@functools.lru_cache(maxsize=16)
def _coverage(height: int, width: int, sigma: float) -> torch.Tensor:
    """(1, H, W) blur of an all-ones map: how much of each pixel's Gaussian window lies inside."""
    return gaussian_blur(torch.ones(1, height, width), sigma)


def _normalised_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (σ pixels) of (C, H, W) maps, each pixel divided by its window's share inside
    the map (no darkening at the border). A wide σ is blurred on s×s block means (s from
    :func:`_context_stride`, the blocks' own spread taken off σ) and brought back bilinearly."""
    h, w = maps.shape[-2:]
    s = _context_stride(sigma)
    if s == 1 or h % s or w % s:
        return gaussian_blur(maps, sigma) / _coverage(h, w, float(sigma))
    small = F.avg_pool2d(maps[None], s)[0]
    sigma_small = math.sqrt(max(sigma * sigma - (s * s - 1) / 12.0, 0.25)) / s
    blurred = gaussian_blur(small, sigma_small) / _coverage(h // s, w // s, float(sigma_small))
    return F.interpolate(blurred[None], size=(h, w), mode="bilinear", align_corners=False)[0]


def log_colour(images: np.ndarray, eps: float) -> torch.Tensor:
    """(B, 3, H, W) float32 log luminance and log chroma ratios (R/G, B/G) of (B, H, W, 3) uint8 images."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).mul_(1 / 255.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    log_g = torch.log(g + eps)
    return torch.stack([torch.log((r + g + b) / 3 + eps), torch.log(r + eps) - log_g,
                        torch.log(b + eps) - log_g], dim=1)


def colour_contrast(images: np.ndarray, grid: int, config: ColourConfig = ColourConfig()) -> torch.Tensor:
    """(B, config.dim, grid, grid) float32 block (weighted) for (B, H, W, 3) uint8 images; per
    context scale the cell means of lum, rg, bg, then their maxima, then their minima."""
    v = log_colour(images, config.eps)
    b, c, h, w = v.shape
    flat = v.reshape(b * c, h, w)
    fine = _normalised_blur(flat, config.fine_sigma_px)
    blocks = []
    for sigma in config.context_sigmas_px:
        d = pooling.local_average((fine - _normalised_blur(flat, sigma)).reshape(b, c, h, w))
        blocks += [pooling.to_grid(d, grid), F.adaptive_max_pool2d(d, grid), -F.adaptive_max_pool2d(-d, grid)]
    return torch.cat(blocks, dim=1).mul_(config.weight)
