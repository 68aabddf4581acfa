"""Scoring speed of one version of the engine against another, on the same data and machine.

Runs the engine found in ``--repo`` (this checkout by default; another version, e.g. a
``git worktree add ../old <commit>``) through the few calls every version since the engine's
first release has: ``core.pipeline.fit``, ``core.data.dataset.open_dataset``, ``Model.score``
(one loaded sample) and ``Model.score_refs`` (the files end to end, as ``lsfa score`` and
``lsfa eval`` score them: reading ahead where that version does). It fits one category frozen
(no adaptation; the same data for both versions), then per round, each with an empty
preprocessing cache (parts never seen): every test sample scored one at a time (already read
from disk) and all test files end to end. Prints one JSON line: wall seconds per sample (median
of one at a time; mean of end to end) and the process's CPU seconds per sample, per round, and
each scoring stage's median seconds one at a time (the results' ``timings``: preprocessing,
features per modality, search, ...) over all rounds.

    python bench/bench_score_versions.py --data DATA/demo_301 --category puck [--repo ../old] [--rounds 2]

Run the versions alternately on an idle machine, a few times each: one run's spread is as large
as the differences it measures (README, speed section).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1],
                    help="checkout whose engine is measured (default: this one)")
    ap.add_argument("--data", type=Path, required=True, help="dataset (MVTec 3D-AD layout)")
    ap.add_argument("--category", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    sys.path.insert(0, str(args.repo.resolve()))
    import numpy as np

    import core
    from core import tv_shim

    tv_shim.install()
    from core.config import FitConfig
    from core.data.dataset import open_dataset
    from core.pipeline import fit

    tmp = tempfile.TemporaryDirectory()
    caches = Path(tmp.name)
    t0 = time.perf_counter()
    model = fit(args.data, args.category, FitConfig(cache_dir=str(caches / "fit"), adapt=False))
    fit_s = time.perf_counter() - t0
    refs = open_dataset(args.data).samples(args.category, "test")
    samples = [r.load() for r in refs]

    def with_new_cache(name: str) -> None:
        model.config = dataclasses.replace(model.config, cache_dir=str(caches / name))

    one_at_a_time, end_to_end, stages = [], [], {}
    for k in range(args.rounds):
        with_new_cache(f"single{k}")
        walls, cpus = [], []
        for sample in samples:
            c0, t = time.process_time(), time.perf_counter()
            result = model.score(sample)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c0)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
        one_at_a_time.append({"median_s": round(float(np.median(walls)), 4),
                              "cpu_s": round(float(np.mean(cpus)), 4)})
        with_new_cache(f"files{k}")
        c0, t = time.process_time(), time.perf_counter()
        n = sum(1 for _ in model.score_refs(refs))
        end_to_end.append({"mean_s": round((time.perf_counter() - t) / n, 4),
                           "cpu_s": round((time.process_time() - c0) / n, 4)})
    print(json.dumps({
        "engine": str(Path(core.__file__).resolve().parents[1]), "samples": len(samples), "fit_s": round(fit_s, 1),
        "one_at_a_time": one_at_a_time, "end_to_end": end_to_end,
        "stage_median_s": {k: round(float(np.median(v)), 4) for k, v in stages.items()},
        "load_1min": round(os.getloadavg()[0], 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
    }))


if __name__ == "__main__":
    main()
