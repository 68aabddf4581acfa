"""Headless rendering of anomaly maps: colormap, overlay PNGs (used by the CLI and exports)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def turbo(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to uint8 RGB with the Turbo colormap (polynomial approximation)."""
    x = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    r = 0.13572138 + x * (4.61539260 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))))
    g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))))
    b = 0.10667330 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))))
    return (np.clip(np.stack([r, g, b], axis=-1), 0, 1) * 255).astype(np.uint8)


def normalise(amap: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Raw scores -> [0, 1] over the fixed display range [lo, hi]."""
    return np.clip((amap - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def overlay(rgb: np.ndarray | None, amap: np.ndarray, lo: float, hi: float, alpha: float = 0.5,
            outline: np.ndarray | None = None) -> np.ndarray:
    """uint8 H×W×3: heatmap of ``amap`` (fixed range lo..hi) blended over ``rgb``; ``outline``
    (H×W bool region) is drawn in white on its border."""
    heat = turbo(normalise(amap, lo, hi)).astype(np.float32)
    base = heat if rgb is None else (1 - alpha) * rgb.astype(np.float32) + alpha * heat
    out = np.clip(base, 0, 255).astype(np.uint8)
    if outline is not None and outline.any():
        from scipy.ndimage import binary_erosion

        edge = outline & ~binary_erosion(outline)
        out[edge] = 255
    return out


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Atomic PNG write."""
    import io

    from PIL import Image

    from core.model_file import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
