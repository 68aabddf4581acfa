"""CPU per sample of the stages rewritten for speed in issue 11, old against new, in one process.

The old implementations (tests/_reference_speed.py, plus ``F.avg_pool2d`` for the 3×3 average
and the dense-map pooling of FPFH) are patched in and out sample by sample, alternating which goes first, so both see the same
load. Stages (thread CPU ms per sample, one torch thread): the load-time unit check
(``core.data.units.point_spacing``), preprocessing + resizing to 224 (no cache) and the default
3D features (``fpfh_surface``). Prints median and best per stage as JSON, with the load average.
The results are the same either way (tests/test_fast_paths.py; FPFH to float rounding).

    python bench/bench_fast_paths.py [--data DIR --category C] [--samples 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import _reference_speed as ref  # noqa: E402
import core.data.preprocess as pre  # noqa: E402
import core.data.units as units  # noqa: E402
import core.features.fpfh as fpfh  # noqa: E402
import core.features.pooling as pooling  # noqa: E402
import core.features.surface as surface  # noqa: E402
from core.data.dataset import open_dataset  # noqa: E402
from core.prepare import prepare_sample  # noqa: E402

def dense_pool(features, pixels, valid, grid):
    """The FPFH pooling before pool_point_features: scatter to a (C, H, W) map, then pool."""
    h, w = valid.shape
    dense = torch.zeros(features.shape[1], h * w, dtype=features.dtype)
    dense[:, pixels] = features.T
    return pooling.pool_pixel_features(dense.view(-1, h, w), valid, grid)


OLD = {
    (pooling, "local_average"): lambda maps: F.avg_pool2d(maps, 3, stride=1, padding=1, count_include_pad=True),
    (surface, "fpfh_points"): ref.fpfh_points,  # torch FPFH (before the numba loops)
    (pooling, "pool_point_features"): dense_pool,
    (pre, "_flying_in_box"): ref.flying_in_box,
    (pre, "pixel_angle"): ref.pixel_angle,
    (pre, "largest_cluster"): ref.largest_cluster,
    (units, "point_spacing"): ref.point_spacing,
    (fpfh, "median_spacing"): ref.median_spacing,
    (surface, "median_spacing"): ref.median_spacing,
}
NEW = {key: getattr(*key) for key in OLD}


def use(table: dict) -> None:
    for (module, name), function in table.items():
        setattr(module, name, function)


def stages(sample, extractor, out: dict) -> None:
    t0 = time.thread_time()
    units.point_spacing(sample.xyz)
    t1 = time.thread_time()
    prepared = prepare_sample(sample, 224, True, None)
    t2 = time.thread_time()
    extractor.extract([prepared.xyz], 28)
    t3 = time.thread_time()
    for key, s in (("unit_check", t1 - t0), ("preprocess_and_resize", t2 - t1), ("features_xyz", t3 - t2),
                   ("sum", t3 - t0)):
        out.setdefault(key, []).append(1000 * s)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, help="dataset with xyz (default: 8 generated demo samples)")
    ap.add_argument("--category", default="puck")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.data:
        samples = [r.load() for r in open_dataset(args.data).samples(args.category, "test")[: args.samples]]
    else:
        from core.demo.sample import render_sample

        samples = [render_sample(7, args.category, "test/dent", i, size=400) for i in range(args.samples)]
    extractor = surface.FPFHSurfaceFeatures()
    use(NEW)
    stages(samples[0], extractor, {})  # warm-up
    times: dict = {"old": {}, "new": {}}
    for r in range(args.rounds):
        for i, sample in enumerate(samples):
            for name in (("old", "new") if (i + r) % 2 == 0 else ("new", "old")):
                use(OLD if name == "old" else NEW)
                stages(sample, extractor, times[name])
    use(NEW)
    print(json.dumps({
        "cpu_ms_per_sample": {name: {k: {"median": round(float(np.median(v)), 1), "best": round(min(v), 1)}
                                     for k, v in d.items()} for name, d in times.items()},
        "samples": len(samples), "rounds": args.rounds,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }, indent=1))


if __name__ == "__main__":
    main()
