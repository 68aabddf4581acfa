"""Per-sample random streams and tileable noise textures of the demo generator."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def _key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _sample_streams(seed: int, category: str, folder: str, index: int) -> dict[str, np.random.Generator]:
    """Independent generators for one sample: pose/appearance, defect, sensor noise, and the print
    variation's (a seed of its own, so drawing it changes none of the others)."""
    key = (_key(category), _key(folder), int(index))
    pose, defect, noise = np.random.SeedSequence(entropy=int(seed), spawn_key=key).spawn(3)
    print_ = np.random.SeedSequence(entropy=int(seed), spawn_key=(*key, _key("print")))
    return {
        "scene": np.random.default_rng(pose),
        "defect": np.random.default_rng(defect),
        "noise": np.random.default_rng(noise),
        "print": np.random.default_rng(print_),
    }


def _periodic_noise(rng: np.random.Generator, n: int, beta: float, lowpass: float) -> np.ndarray:
    """n×n tileable noise with a 1/f^beta spectrum, zero mean, unit std (float32)."""
    white = rng.standard_normal((n, n))
    f = np.fft.fftfreq(n)
    fr = np.hypot(f[:, None], f[None, :])
    fr[0, 0] = 1.0
    amp = fr ** (-beta / 2) * np.exp(-((fr / lowpass) ** 2))
    amp[0, 0] = 0.0
    out = np.fft.ifft2(np.fft.fft2(white) * amp).real
    out -= out.mean()
    out /= out.std() + 1e-12
    return out.astype(np.float32)


@dataclass(frozen=True)
class _Textures:
    """Tileable noise textures of one (seed, category); sampled with a per-sample offset."""

    coarse: np.ndarray  # smooth blotches
    fine: np.ndarray  # grain
    belt: np.ndarray  # table/conveyor texture


@lru_cache(maxsize=8)
def _textures(seed: int, category: str) -> _Textures:
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(_key(category), _key("textures")))
    r = [np.random.default_rng(s) for s in ss.spawn(3)]
    return _Textures(
        coarse=_periodic_noise(r[0], 256, 2.5, 0.08),
        fine=_periodic_noise(r[1], 256, 1.0, 0.45),
        belt=_periodic_noise(r[2], 256, 1.6, 0.3),
    )


def _sample_wrapped(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a tileable texture at float texel coordinates (any shape)."""
    from scipy.ndimage import map_coordinates

    return map_coordinates(tex, np.stack([y, x]), order=1, mode="grid-wrap", prefilter=False)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)
