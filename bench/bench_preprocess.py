"""Timing of the data path: PCD loading and preprocessing of an 800×800 scene. Prints JSON.

Run: .venv/bin/python bench/bench_preprocess.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.preprocess import preprocess  # noqa: E402
from core.data.resize import resize_sample  # noqa: E402
from core.data.sample import Sample  # noqa: E402

PCL_DIR = ROOT.parent / "shared" / "data" / "pcl_organized"


def synthetic_scene(size: int = 800, seed: int = 0) -> Sample:
    """Tilted table plane at ~0.6 m, a 4 cm dome object, 3 % dropouts and two floating specks."""
    rng = np.random.default_rng(seed)
    pitch = 0.00015  # metres per pixel, like MVTec 3D-AD
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    x = (u - size / 2) * pitch
    y = (v - size / 2) * pitch
    z = 0.6 + 0.05 * x + 0.03 * y
    r2 = x**2 + y**2
    dome = np.clip(0.02 * (1 - r2 / 0.03**2), 0, None)
    z = z - dome + rng.normal(0, 0.0002, z.shape)
    xyz = np.stack([x, y, z], axis=-1).astype(np.float32)
    xyz[rng.random((size, size)) < 0.03] = 0
    for cy, cx in ((100, 650), (700, 120)):  # floating specks 3 cm above the table
        xyz[cy : cy + 6, cx : cx + 6, 2] -= 0.03
    rgb = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    return Sample(name="bench", rgb=rgb, xyz=xyz, mask=np.zeros((size, size), bool), label="good")


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out: dict = {"machine": platform.processor() or platform.machine(), "repeat": args.repeat}

    sample = synthetic_scene(800)
    result = preprocess(sample)
    out["preprocess_800x800_s"] = round(best_of(lambda: preprocess(sample), args.repeat), 4)
    out["preprocess_800x800_kept_points"] = result.meta["preprocess"]["kept_points"]
    with tempfile.TemporaryDirectory() as cache:
        preprocess(sample, cache_dir=cache)
        out["preprocess_800x800_cached_s"] = round(
            best_of(lambda: preprocess(sample, cache_dir=cache), args.repeat), 4
        )
    out["resize_800_to_224_s"] = round(best_of(lambda: resize_sample(result, 224), args.repeat), 4)

    pcds = sorted(PCL_DIR.glob("*.pcd"))
    if pcds:
        from core.data.dataset import load_inputs

        for ref in load_inputs(pcds):
            out[f"pcd_load_s[{ref.xyz_path.name}]"] = round(best_of(ref.load, args.repeat), 4)
            loaded = ref.load()
            out[f"pcd_preprocess_s[{ref.xyz_path.name}]"] = round(
                best_of(lambda: preprocess(loaded), args.repeat), 4
            )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
