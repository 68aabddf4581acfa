"""Time LSFA adaptor training on synthetic tokens of the real shapes; prints JSON.

Default case: 200 training images × 784 tokens (28×28), RGB 152-d (EfficientNet-Lite0),
xyz 33-d (FPFH, empty cells = 0), ~45 % foreground, default AdaptConfig.
Budget (issue 4): ≤ 180 s and peak RSS ≤ 3 GB on the 2-core CPU.

Measured, seventh round (default config: token dropout to 128 tokens per image, LC on 32,
200 micro-batches of 8; idle machine, load < 1):
  --threads 1: 16.4 s wall, 16.3 s CPU, peak RSS 511 MB
  --threads 2: 11.4 s wall, 21.5 s CPU, peak RSS 515 MB
Before (400 micro-batches over every foreground token, 100 of them timed, shared machine):
  --threads 1, load ≈ 1.8: 34.8 s wall per 100 micro-batches; --threads 2, load ≈ 4.8: 110.8 s

    python bench/bench_adaptation_speed.py [--images 200] [--adaptor block] [--epochs N] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.adaptation import AdaptConfig, TokenCache, train_adaptors  # noqa: E402


def synthetic_cache(n: int, grid: int = 28, c_rgb: int = 152, c_xyz: int = 33, seed: int = 0) -> TokenCache:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    cache = TokenCache()
    for i in range(n):
        r = 0.3 + 0.08 * torch.rand((), generator=g)
        fg = (((yy - grid / 2 + 0.5) / grid) ** 2 + ((xx - grid / 2 + 0.5) / grid) ** 2 < r * r).reshape(-1)
        rgb = torch.rand(grid * grid, c_rgb, generator=g) * 3.0
        xyz = torch.rand(grid * grid, c_xyz, generator=g) * 30.0
        xyz[~fg] = 0
        cache.add(rgb, xyz, fg, 0, f"img{i}")
    return cache


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--set", nargs="*", default=[], help="AdaptConfig overrides key=json_value")
    args = ap.parse_args()
    overrides = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        overrides[k] = json.loads(v)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = AdaptConfig.from_dict({**AdaptConfig().to_dict(), **overrides})
    cache = synthetic_cache(args.images)
    t0, c0 = time.perf_counter(), time.process_time()
    res = train_adaptors(cache, cfg)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    load = os.getloadavg()[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    h = res.history
    print(json.dumps({
        "images": args.images, "tokens": cache.num_tokens,
        "threads": torch.get_num_threads(),
        "overrides": overrides, "adaptor": cfg.adaptor, "epochs": cfg.epochs, "micro_batches": len(h),
        "seconds": round(secs, 1), "cpu_seconds": round(cpu, 1),
        "load_avg_1min_after": round(load, 2),  # other jobs on the machine inflate "seconds"
        "seconds_per_micro_batch": round(secs / max(1, len(h)), 3),
        "peak_rss_mb": round(peak_mb), "within_budget": secs <= 180 and peak_mb <= 3072,
        "first": h[0] if h else None, "last": h[-1] if h else None, "notes": res.notes,
    }, indent=1))


if __name__ == "__main__":
    main()
