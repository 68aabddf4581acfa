"""Scoring and fit benchmark on the built-in demo data (issue 3 targets).

Prints JSON: median seconds per sample for each scoring stage (preprocess, RGB features,
3D features, kNN, maps, fusion) and in total, fit seconds for N training samples, peak RSS.
Targets on a 2-core CPU: scoring <= 0.1 s/sample, fit (200 samples, no adaptation) <= 60 s,
peak RSS <= 2.5 GB.

    python bench/bench_scoring.py [--train 200] [--test 20] [--size 224] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import tv_shim  # noqa: E402

tv_shim.install()

from core.config import FitConfig  # noqa: E402
from core.data.dataset import open_dataset  # noqa: E402
from core.demo import generate_demo_dataset  # noqa: E402
from core.pipeline import fit  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--test", type=int, default=20, help="test samples to time")
    ap.add_argument("--size", type=int, default=224, help="demo image size in pixels")
    ap.add_argument("--category", default="puck")
    ap.add_argument("--adapt", action="store_true")
    ap.add_argument("--data", type=Path, help="existing demo dataset (else generated)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    root = args.data
    t0 = time.perf_counter()
    if root is None:
        root = Path(tmp.name) / "demo"
        generate_demo_dataset(
            root, seed=123, categories=[args.category], size=args.size, n_train=args.train,
            n_validation=10, n_test_good=max(args.test // 2, 1), n_test_per_defect=max(args.test // 10, 1),
        )
    gen_s = time.perf_counter() - t0
    config = FitConfig(cache_dir=str(Path(tmp.name) / "cache"), adapt=args.adapt)  # --adapt: LSFA on

    t0 = time.perf_counter()
    model = fit(root, args.category, config)
    fit_s = time.perf_counter() - t0

    refs = open_dataset(root).samples(args.category, "test")[: args.test]
    samples = [r.load() for r in refs]
    model.score(samples[0])  # warm-up
    per_stage: dict[str, list[float]] = {}
    totals = []
    for s in samples:
        t = time.perf_counter()
        r = model.score(s)
        totals.append(time.perf_counter() - t)
        for k, v in r.timings.items():
            per_stage.setdefault(k, []).append(v)
    out = {
        "torch_threads": __import__("torch").get_num_threads(),
        "demo_generation_s": round(gen_s, 2),
        "n_train": model.info["n_train"],
        "fit_s": round(fit_s, 2),
        "fit_target_s": 60,
        "bank_sizes": model.info["bank_sizes"],
        "score_median_s_per_sample": {k: round(float(np.median(v)), 4) for k, v in per_stage.items()},
        "score_total_median_s": round(float(np.median(totals)), 4),
        "score_target_s": 0.1,
        "peak_rss_gb": round(peak_rss_gb(), 3),
        "rss_target_gb": 2.5,
        "adapted": model.adapter is not None,
        "adaptation_notes": model.info.get("adaptation_notes", []),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
