"""How far any fusion of the two branches could go: hindsight oracles over suite runs.

Not a detector. For each row of a suite ``--json`` file that kept its test parts' image scores
(bench/bench_suite.py, since the twenty-ninth session) it chooses, on that row's own test labels:

* oracle (a): the best of the fused score, the RGB branch alone and the 3D branch alone;
* oracle (b): the best weighted sum (weights 0, 0.025, ..., 1) or weighted maximum (weights 0.05,
  ..., 0.95) of the two branches' image scores, each put first in units of its good test parts'
  spread ((score - median) / (90th percentile - median) of the good parts), or the fused score
  where that is higher.

If oracle (b) stays below a target, no rule that weights the two branches' image scores, however
it is chosen, reaches that target on those parts: what is missing is in the branches' features.

    python bench/fusion_oracle.py RUN.json [MORE.json ...]

Prints one line per row (I-AUROC: fused, (a), (b), best single branch; fused AUPRO@0.3) and each
file's mean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite_stats import auroc_rows  # noqa: E402  (bench/suite_stats.py, beside this script)

SUM_WEIGHTS = np.linspace(0.0, 1.0, 41)
MAX_WEIGHTS = np.linspace(0.05, 0.95, 19)


def good_units(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``scores`` in units of the good parts' spread: (s - median) / (90th percentile - median)."""
    good = scores[~labels]
    median, q90 = np.median(good), np.quantile(good, 0.9)
    return (scores - median) / max(q90 - median, 1e-12)


def oracles(samples: dict) -> dict[str, float]:
    """I-AUROC of the fused score, each branch, and oracles (a) and (b) for one row's ``samples``."""
    labels = np.asarray(samples["defect"], bool)
    fused, rgb, xyz = (np.asarray(samples[k], np.float64) for k in ("fused", "rgb", "xyz"))
    r, x = good_units(rgb, labels), good_units(xyz, labels)
    weighted = [w * r + (1 - w) * x for w in SUM_WEIGHTS] + [np.maximum(w * r, (1 - w) * x) for w in MAX_WEIGHTS]
    aurocs = auroc_rows(labels, np.stack([fused, rgb, xyz, *weighted]))  # ties count half
    out = {k: float(v) for k, v in zip(("fused", "rgb", "xyz"), aurocs[:3])}
    out["a"] = max(out.values())
    out["b"] = max(out["fused"], float(aurocs[3:].max()))
    return out


def rows_with_branches(path: Path) -> list[dict]:
    """The rows of one suite JSON file that kept image scores of both branches."""
    rows = json.loads(path.read_text())["rows"]
    return [r for r in rows if all(k in r.get("samples", {}) for k in ("defect", "fused", "rgb", "xyz"))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="suite --json files")
    args = ap.parse_args(argv)
    print(f"{'dataset':28s} {'category':9s} | {'fused':>6s} {'(a)':>6s} {'(b)':>6s} {'best1':>6s} | AUPRO@0.3")
    for path in args.runs:
        rows = rows_with_branches(path)
        if not rows:
            print(f"{path}: no row kept both branches' image scores (a suite run since the twenty-ninth session?)")
            continue
        found = []
        for row in rows:
            o = oracles(row["samples"])
            found.append((o, row["fused"]["PRO"]))
            print(f"{row['name']:28s} {row['category']:9s} | {o['fused']:.3f}  {o['a']:.3f}  {o['b']:.3f}  "
                  f"{max(o['rgb'], o['xyz']):.3f} | {row['fused']['PRO']:.3f}")
        mean = {k: np.mean([o[k] for o, _ in found]) for k in ("fused", "a", "b")}
        best1 = np.mean([max(o["rgb"], o["xyz"]) for o, _ in found])
        print(f"{'MEAN ' + path.name:38s} | {mean['fused']:.3f}  {mean['a']:.3f}  {mean['b']:.3f}  {best1:.3f} | "
              f"{np.mean([p for _, p in found]):.3f}  ({len(found)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
