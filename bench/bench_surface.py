"""Speed of "fpfh" vs "fpfh_surface" at 224 px on generated clouds; prints JSON.

Reports median process-CPU milliseconds per sample for FPFH alone, FPFH plus the
surface-height block (default: FPFH on every pixel) and with FPFH on 2×2 block means
(``fpfh_stride=2``), the surface block alone (height maps + pooling), and the
median per-round difference fpfh_surface - fpfh, on an object-only cloud (background invalid)
and a full frame. One torch thread by default (the target is ≤ 30 ms extra per sample on one
core). The three run in turn in every round; on a shared machine the FPFH times still vary by
tens of ms, so the surface-only row is the steadier measure of the extra cost.

    python bench/bench_surface.py [--repeat 15] [--threads 1]
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

from core.features import create_extractor  # noqa: E402
from core.features.fpfh import median_spacing, valid_mask  # noqa: E402
from core.features.surface import pool_surface, surface_maps  # noqa: E402

SIZE = 224


def synthetic_cloud(full_frame: bool, seed: int = 0) -> np.ndarray:
    """A bumpy dome ~0.45 mm/px seen from 0.3 m with a 0.3 mm dent (as bench_features.py);
    without ``full_frame`` the background is invalid (0), as after background removal."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    x, y = (xs - SIZE / 2) * 0.00045, (ys - SIZE / 2) * 0.00045
    r2 = (x * x + y * y) / 0.03**2
    bumps = 0.0005 * np.sin(xs / 3) * np.cos(ys / 5)
    dent = 0.0003 * np.exp(-((x - 0.01) ** 2 + y**2) / (2 * 0.0015**2))
    dome = 0.3 - 0.012 * np.sqrt(np.clip(1 - r2, 0, None)) - bumps + dent
    z = np.where(r2 < 1, dome, 0.3) + rng.normal(0, 2e-5, xs.shape)
    xyz = np.stack([x * z / 0.3, y * z / 0.3, z], -1).astype(np.float32)
    if not full_frame:
        xyz[r2 >= 1] = 0
    return xyz


def interleaved(fns: dict, repeat: int) -> dict[str, list[float]]:
    """CPU milliseconds of each ``fns`` entry per round, the entries run in turn in every round
    (after one warm-up round) so that load changes on a shared machine hit them alike."""
    for fn in fns.values():
        fn()
    out = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            c = time.process_time()
            fn()
            out[name].append((time.process_time() - c) * 1e3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"size": SIZE, "torch_threads": torch.get_num_threads(), "repeat": args.repeat}
    fpfh = create_extractor("fpfh")
    both = create_extractor("fpfh_surface")
    blocks = create_extractor("fpfh_surface", fpfh_stride=2)
    result["fpfh_surface_dim"] = both.dim
    for label, full in (("object", False), ("full_frame", True)):
        cloud = synthetic_cloud(full)
        valid = valid_mask(cloud)
        spacing = median_spacing(cloud, valid)
        mask = torch.from_numpy(valid)

        def surface_only():
            pool_surface(surface_maps(cloud, spacing, both.surface_config, valid), mask, 28)

        result[f"{label}_points"] = int(valid.sum())
        cpu = interleaved(
            {
                "fpfh": lambda: fpfh.extract([cloud]),
                "fpfh_surface": lambda: both.extract([cloud]),
                "fpfh_surface_stride2": lambda: blocks.extract([cloud]),
                "surface_only": surface_only,
            },
            args.repeat,
        )
        for name, times in cpu.items():
            result[f"{label}_{name}_cpu_ms"] = round(statistics.median(times), 1)
        extra = [b - a for a, b in zip(cpu["fpfh"], cpu["fpfh_surface"])]
        result[f"{label}_extra_cpu_ms"] = round(statistics.median(extra), 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
