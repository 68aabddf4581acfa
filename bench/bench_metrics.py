"""Timing of the per-class metrics on one MVTec-sized class; prints JSON.

Default: 120 maps of 224x224 (float32, quantised to 256 levels like the reference's 8-bit
blurred maps; --continuous: no ties), 70 with 1-3 blob defects. Target: each metric well under 1 s.

    .venv/bin/python bench/bench_metrics.py [--images 120] [--size 224] [--repeat 3] [--continuous]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.metrics import aupro, image_auroc, pixel_auroc  # noqa: E402
from core.thresholds import best_f1_threshold, pixel_best_f1_threshold  # noqa: E402


def make_class(n_images: int, size: int, seed: int = 0, continuous: bool = False):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_images, size, size), bool)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n_images):
        if i % 12 < 5:  # ~40 % good images
            continue
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(0, size, 2)
            ry, rx = rng.integers(3, size // 8, 2)
            masks[i] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    maps = np.abs(rng.normal(size=masks.shape)) + masks * rng.uniform(0.5, 2.0, size=masks.shape)
    maps = maps.astype(np.float32) if continuous else (np.floor(maps / maps.max() * 255) / 255).astype(np.float32)
    labels = masks.any(axis=(1, 2))
    scores = maps.max(axis=(1, 2))
    return masks, maps, labels, scores


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--continuous", action="store_true", help="no 256-level quantisation (no ties)")
    args = ap.parse_args()
    masks, maps, labels, scores = make_class(args.images, args.size, continuous=args.continuous)
    runs = {
        "aupro_k100": lambda: aupro(masks, maps),
        "aupro_exact": lambda: aupro(masks, maps, num_thresholds=None),
        "pixel_auroc": lambda: pixel_auroc(masks, maps),
        "image_auroc": lambda: image_auroc(labels, scores),
        "best_f1_threshold": lambda: best_f1_threshold(labels, scores)[1],
        "pixel_best_f1_threshold_1M": lambda: pixel_best_f1_threshold(masks, maps)[1],
    }
    out = {
        "images": args.images, "size": args.size, "continuous": args.continuous, "pixels": int(masks.size),
        "defect_pixels": int(masks.sum()), "seconds": {}, "values": {},
    }
    for name, fn in runs.items():
        seconds, value = best_time(fn, args.repeat)
        out["seconds"][name] = round(seconds, 4)
        out["values"][name] = None if value is None else round(float(value), 5)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
