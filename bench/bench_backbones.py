"""Per-sample feature time of the paper's backbones (random weights); prints JSON.

DINO ViT-B/8 on S×S RGB images and Point-MAE (1024 groups × 128 points) on a synthetic
organized cloud of about --points valid points, with a stage breakdown for Point-MAE.
Seconds are the best of --repeat runs after one warm-up run.

    .venv/bin/python bench/bench_backbones.py [--device cpu|cuda] [--size 224] [--grid 56]
        [--points 20000] [--batch 1] [--repeat 2] [--only dino|pointmae]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.sample import valid_points  # noqa: E402
from core.features import point_ops  # noqa: E402
from core.features.dino_vit import DinoViTExtractor  # noqa: E402
from core.features.pointmae import PointMAEExtractor  # noqa: E402


def synthetic_cloud(size: int, points: int, seed: int = 0) -> np.ndarray:
    """size×size organized cloud (metres): a wavy dome with about ``points`` valid pixels."""
    rng = np.random.default_rng(seed)
    radius = min(np.sqrt(points / np.pi), size / 2 - 1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r2 = (yy - size / 2) ** 2 + (xx - size / 2) ** 2
    pitch = 0.0004  # metres per pixel: an object ~9 cm across at 224 px
    z = 0.5 + 0.01 * np.sqrt(np.maximum(1 - r2 / radius**2, 0)) + 0.0005 * np.sin(xx / 5)
    cloud = np.stack([xx * pitch, yy * pitch, z], -1) + rng.normal(0, 1e-5, (size, size, 3))
    cloud[r2 >= radius**2] = 0
    return cloud.astype(np.float32)


def timed(fn, device: torch.device, repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs after one warm-up (CUDA synchronised)."""
    def run():
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0, out

    run()
    best, out = float("inf"), None
    for _ in range(repeat):
        t, out = run()
        best = min(best, t)
    return best, out


def bench_dino(args, device) -> dict:
    ext = DinoViTExtractor(allow_random=True, device=str(device), batch_size=args.batch)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8) for _ in range(args.batch)]
    seconds, feats = timed(lambda: ext.extract(images, grid=args.grid), device, args.repeat)
    return {"per_sample_s": seconds / args.batch, "batch": args.batch,
            "output_shape": list(feats.shape)}


def bench_pointmae(args, device) -> dict:
    ext = PointMAEExtractor(allow_random=True, device=str(device))
    cloud = synthetic_cloud(args.size, args.points)
    n_valid = int(valid_points(cloud).sum())
    total, feats = timed(lambda: ext.extract([cloud], grid=args.grid), device, args.repeat)
    pts, pixels, valid = ext.valid_points(cloud)
    stages = {}
    stages["fps_s"], centre_idx = timed(
        lambda: point_ops.farthest_point_sample(pts, ext.num_groups), device, args.repeat)
    centres = pts[centre_idx.to(device)]
    stages["knn_group_s"], (_, nn_idx) = timed(
        lambda: point_ops.knn(centres, pts, ext.group_size), device, args.repeat)
    groups = pts[nn_idx] - centres[:, None]
    with torch.inference_mode():
        stages["token_encoder_s"], _ = timed(lambda: ext.model.encoder(groups), device, args.repeat)
        stages["encoder_total_s"], feats_g = timed(lambda: ext.model(groups, centres), device,
                                                   args.repeat)
        stages["interpolate_and_pool_s"], _ = timed(
            lambda: ext.to_grid(feats_g, centres, pts, pixels, valid, args.grid), device, args.repeat)
    stages["transformer_s"] = stages["encoder_total_s"] - stages["token_encoder_s"]
    return {"per_sample_s": total, "valid_points": n_valid, "groups": ext.num_groups,
            "group_size": ext.group_size, "output_shape": list(feats.shape),
            "stages": {k: round(v, 4) for k, v in stages.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--grid", type=int, default=56)
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=1, help="DINO images per forward")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--only", choices=["dino", "pointmae"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "size": args.size, "grid": args.grid,
    }
    if args.only in (None, "dino"):
        result["dino_vitb8"] = bench_dino(args, device)
    if args.only in (None, "pointmae"):
        result["pointmae"] = bench_pointmae(args, device)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
