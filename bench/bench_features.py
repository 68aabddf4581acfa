"""Speed of the frozen feature extractors at 224 px on synthetic inputs; prints JSON.

Reports the median wall-clock and process-CPU milliseconds per sample for EfficientNet-Lite0
(batch 1 and 8) and FPFH (an object-only cloud and a full frame). On a shared machine wall
times are noisy: compare medians, and CPU times (which other processes do not inflate).

    python bench/bench_features.py [--repeat 15] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.data.sample import valid_points  # noqa: E402
from core.features import create_extractor  # noqa: E402

SIZE = 224


def synthetic_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour textures, S×S×3 uint8."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        low = rng.random((SIZE // 8, SIZE // 8, 3))
        img = np.kron(low, np.ones((8, 8, 1))) * 200 + rng.random((SIZE, SIZE, 3)) * 55
        out.append(img.astype(np.uint8))
    return out


def synthetic_cloud(full_frame: bool, seed: int = 0) -> np.ndarray:
    """A bumpy dome ~0.45 mm/px seen from 0.3 m; without ``full_frame`` the background is
    invalid (0), as after background removal."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    x, y = (xs - SIZE / 2) * 0.00045, (ys - SIZE / 2) * 0.00045
    r2 = (x * x + y * y) / 0.03**2
    bumps = 0.0005 * np.sin(xs / 3) * np.cos(ys / 5)
    dome = 0.3 - 0.012 * np.sqrt(np.clip(1 - r2, 0, None)) - bumps
    z = np.where(r2 < 1, dome, 0.3) + rng.normal(0, 2e-5, xs.shape)
    xyz = np.stack([x * z / 0.3, y * z / 0.3, z], -1).astype(np.float32)
    if not full_frame:
        xyz[r2 >= 1] = 0
    return xyz


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``fn()`` after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads for the measurement (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"size": SIZE, "torch_threads": torch.get_num_threads(), "repeat": args.repeat}

    t0 = time.perf_counter()
    rgb = create_extractor("efficientnet_lite0")
    result["rgb_create_s"] = round(time.perf_counter() - t0, 3)
    images = synthetic_images(8)
    for batch in (1, 8):
        wall, cpu = timed(lambda: rgb.extract(images[:batch]), args.repeat)
        result[f"rgb_batch{batch}_ms_per_image"] = round(wall / batch, 2)
        result[f"rgb_batch{batch}_cpu_ms_per_image"] = round(cpu / batch, 2)

    fpfh = create_extractor("fpfh")
    for label, full in (("object", False), ("full_frame", True)):
        cloud = synthetic_cloud(full)
        wall, cpu = timed(lambda: fpfh.extract([cloud]), max(3, args.repeat // 2))
        result[f"fpfh_{label}_points"] = int(valid_points(cloud).sum())
        result[f"fpfh_{label}_ms"] = round(wall, 1)
        result[f"fpfh_{label}_cpu_ms"] = round(cpu, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
