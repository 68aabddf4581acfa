"""Separable Gaussian blur of dense (C, H, W) maps, shared by the weight-free feature blocks
(:mod:`core.features.surface`, :mod:`core.features.colour`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian taps (float32) reaching 3 σ (pixels), at least one tap each side."""
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(torch.float32)


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (σ in pixels) of (C, H, W) maps with zero padding (= nothing
    outside the map), as shifted whole-map additions."""
    k = gaussian_kernel(sigma)
    r = len(k) // 2
    h, w = maps.shape[-2:]
    padded = F.pad(maps, (r, r))
    out = padded[..., 0:w] * k[0]
    for i in range(1, len(k)):
        out.add_(padded[..., i : i + w], alpha=float(k[i]))
    padded = F.pad(out, (0, 0, r, r))
    out = padded[..., 0:h, :] * k[0]
    for i in range(1, len(k)):
        out.add_(padded[..., i : i + h, :], alpha=float(k[i]))
    return out
