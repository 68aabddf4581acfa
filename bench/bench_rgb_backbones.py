"""Per-image feature time of the EfficientNet-Lite0/1/2 RGB backbones at 224 px; prints figures.

A name with ``+colour`` (the default list has ``efficientnet_lite0+colour``, the fit's default RGB
features) appends the colour-contrast block (core.features.colour), timed as the engine extracts it.

For each thread count (default 1 and 2 torch intra-op threads) every backbone extracts features
of one 224 px image at a time (the engine's micro-batch), interleaved round by round so that load
from other processes falls on all backbones alike. Reports the median wall-clock and process-CPU
milliseconds per image (and the fastest call), and the 1-minute load average before and after (on
a shared machine wall times are noisy: compare medians, minima and CPU times; the ratio column is
the median wall time relative to the first backbone).

    python bench/bench_rgb_backbones.py [--repeat 30] [--threads 1,2] [--backbones ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.features import create_extractor  # noqa: E402
from core.features.colour import ColourConfig  # noqa: E402

SIZE = 224
BACKBONES = ("efficientnet_lite0", "efficientnet_lite0+colour", "efficientnet_lite1", "efficientnet_lite2")


def test_image(seed: int = 0) -> np.ndarray:
    """A real 224 px photo (scikit-learn's sample image, centre crop) or a smooth random texture."""
    try:
        from PIL import Image
        from sklearn.datasets import load_sample_image

        img = load_sample_image("china.jpg")
        h, w = img.shape[:2]
        s = min(h, w)
        crop = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        return np.asarray(Image.fromarray(crop).resize((SIZE, SIZE), Image.BICUBIC))
    except Exception:  # noqa: BLE001 - any failure: fall back to synthetic
        rng = np.random.default_rng(seed)
        low = rng.random((SIZE // 8, SIZE // 8, 3))
        img = np.kron(low, np.ones((8, 8, 1))) * 200 + rng.random((SIZE, SIZE, 3)) * 55
        return img.astype(np.uint8)


def measure(extractors: dict, image: np.ndarray, threads: int, repeat: int) -> dict:
    torch.set_num_threads(threads)
    wall = {n: [] for n in extractors}
    cpu = {n: [] for n in extractors}
    for ex in extractors.values():  # warm-up at this thread count
        for _ in range(3):
            ex.extract([image])
    for _ in range(repeat):
        for name, ex in extractors.items():
            t, c = time.perf_counter(), time.process_time()
            ex.extract([image])
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return {
        name: {
            "wall_ms": round(statistics.median(wall[name]) * 1e3, 2),
            "wall_min_ms": round(min(wall[name]) * 1e3, 2),
            "cpu_ms": round(statistics.median(cpu[name]) * 1e3, 2),
        }
        for name in extractors
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30, help="timed calls per backbone and thread count")
    ap.add_argument("--threads", default="1,2", help="comma list of torch thread counts (default 1,2)")
    ap.add_argument("--backbones", default=",".join(BACKBONES))
    ap.add_argument("--stride4", action="store_true", help="time the stride-4 variants")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()

    image = test_image()
    extractors, info = {}, {}
    for name in args.backbones.split(","):
        t0 = time.perf_counter()
        backbone, _, colour = name.partition("+")
        kwargs = {"colour_weight": ColourConfig().weight} if colour == "colour" else {}
        ex = create_extractor(backbone, stride4=args.stride4, **kwargs)
        info[name] = {"dim": ex.dim, "create_s": round(time.perf_counter() - t0, 2)}
        extractors[name] = ex
    result = {
        "size": SIZE,
        "grid": 28,
        "stride4": args.stride4,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "load_avg_before": round(os.getloadavg()[0], 2),
        "backbones": info,
        "threads": {},
    }
    for threads in (int(t) for t in args.threads.split(",")):
        result["threads"][threads] = measure(extractors, image, threads, args.repeat)
    result["load_avg_after"] = round(os.getloadavg()[0], 2)

    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{SIZE} px image, 28×28 grid, stride4={args.stride4}, one image per call, "
          f"median of {args.repeat}; {result['cpus']} CPUs, torch {result['torch']}, "
          f"load average {result['load_avg_before']} -> {result['load_avg_after']}")
    base = next(iter(extractors))
    header = f"{'backbone':<27}{'dim':>5}"
    for threads in result["threads"]:
        header += f"{f'{threads} thr wall ms':>16}{'min':>7}{'cpu ms':>9}{'× ' + base[-5:]:>10}"
    print(header)
    for name in extractors:
        row = f"{name:<27}{info[name]['dim']:>5}"
        for threads, figures in result["threads"].items():
            f = figures[name]
            ratio = f["wall_ms"] / figures[base]["wall_ms"]
            row += f"{f['wall_ms']:>16.1f}{f['wall_min_ms']:>7.1f}{f['cpu_ms']:>9.1f}{ratio:>10.2f}"
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
