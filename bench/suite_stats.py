"""How far a suite figure could move with other test samples: bootstrap intervals of image AUROC.

The suite's test sets are small (12 good and 30 defective parts per generated category), so an
I-AUROC, and a difference of two, carries sampling noise of a few hundredths. These intervals
resample each dataset's test parts (good and defective parts apart, so each replicate keeps the
set's make-up) and recompute the AUROC. Paired: the same resampled parts score in both detectors
being compared (two modalities of one fit, or two runs on the same test set), so what the two
have in common cancels. Only the test parts are resampled; the fit's own randomness (coreset,
self-check, adaptation: ``--set seed=1``) comes on top (docs/evaluation.md, "how much the fit
seed alone moves the suite").

Run as a script on suite JSON files (one run, or several runs on other sets pooled, e.g. the
confirmation group at five parts seeds), it prints each row's fused I-AUROC with its interval, the
gap to the best single modality with its paired interval, and each group's mean with its interval:

    python bench/suite_stats.py RUN.json [MORE.json ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPLICATES = 2000
LEVEL = 0.9  # two-sided: the 5th and 95th percentiles


def auroc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row of ``scores`` (R, N) against boolean ``labels`` (N,) (ties count half)."""
    pos, neg = scores[:, labels], scores[:, ~labels]
    greater = (pos[:, :, None] > neg[:, None, :]).mean(axis=(1, 2))
    ties = (pos[:, :, None] == neg[:, None, :]).mean(axis=(1, 2))
    return greater + 0.5 * ties


def resampled_aurocs(labels, score_sets, replicates: int = REPLICATES, seed: int = 0) -> np.ndarray:
    """(len(score_sets), replicates) AUROCs of each score set (each (N,), the same N parts) on
    the same bootstrap resamples of the parts (good and defective resampled apart)."""
    labels = np.asarray(labels, bool)
    scores = np.asarray(score_sets, np.float64)
    good, bad = np.flatnonzero(~labels), np.flatnonzero(labels)
    if not len(good) or not len(bad):
        raise ValueError("AUROC needs good and defective parts")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([good[rng.integers(len(good), size=(replicates, len(good)))],
                          bad[rng.integers(len(bad), size=(replicates, len(bad)))]], axis=1)
    lab = np.r_[np.zeros(len(good), bool), np.ones(len(bad), bool)]
    return np.stack([auroc_rows(lab, s[idx]) for s in scores])


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Central ``level`` interval (low, high) of bootstrap replicates."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_difference(labels, a, b, replicates: int = REPLICATES, seed: int = 0) -> tuple[float, float]:
    """Interval of AUROC(a) − AUROC(b) over the same resampled parts."""
    ra, rb = resampled_aurocs(labels, [a, b], replicates, seed)
    return interval(ra - rb)


def mean_difference(pairs, replicates: int = REPLICATES, seed: int = 0) -> tuple[float, float]:
    """Interval of the mean over datasets of AUROC(a) − AUROC(b); ``pairs``: (labels, a, b) per
    dataset, each dataset resampled on its own (seed + its position)."""
    diffs = [np.subtract(*resampled_aurocs(lab, [a, b], replicates, seed + i)) for i, (lab, a, b) in enumerate(pairs)]
    return interval(np.mean(diffs, axis=0))


def mean_auroc(sets, replicates: int = REPLICATES, seed: int = 0) -> tuple[float, float]:
    """Interval of the mean over datasets of one detector's AUROC; ``sets``: (labels, scores) each."""
    runs = [resampled_aurocs(lab, [s], replicates, seed + i)[0] for i, (lab, s) in enumerate(sets)]
    return interval(np.mean(runs, axis=0))


def kept(row: dict) -> bool:
    """Whether a suite row kept its test parts' scores, good and defective among them."""
    s = row.get("samples")
    return bool(s) and 0 < sum(s["defect"]) < len(s["defect"])


def single_gap(row: dict):
    """(best single modality − fused I-AUROC, that modality, its paired interval) of a suite row
    that kept its scores for both modalities; None otherwise. The best modality is the one with
    the higher point estimate."""
    s = row.get("samples") or {}
    if not kept(row) or not all(m in s and (row.get(m) or {}).get("I") is not None for m in ("rgb", "xyz")):
        return None
    best = max(("rgb", "xyz"), key=lambda m: row[m]["I"])
    return row[best]["I"] - row["fused"]["I"], best, paired_difference(s["defect"], s[best], s["fused"])


def group_mean(rows: list[dict]):
    """(mean fused I-AUROC, its interval, rows counted) over the rows that kept their scores."""
    rows = [r for r in rows if kept(r)]
    if not rows:
        return None
    ci = mean_auroc([(r["samples"]["defect"], r["samples"]["fused"]) for r in rows])
    return float(np.mean([r["fused"]["I"] for r in rows])), ci, len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="suite JSON files (bench/bench_suite.py --json)")
    args = ap.parse_args()
    rows = [r for p in args.runs for r in json.loads(p.read_text())["rows"]]
    rows = [r for r in rows if kept(r)]
    if not rows:
        ap.error("no row kept its test parts' scores (suite JSON written before the twenty-ninth session)")
    print(f"{'group':12s} {'dataset':18s} {'category':9s} | fused I (90 % interval) | best single - fused (90 % interval)")
    for r in rows:
        s = r["samples"]
        low, high = interval(resampled_aurocs(s["defect"], [s["fused"]])[0])
        line = f"{r['group']:12s} {r['name']:18s} {r['category']:9s} | {r['fused']['I']:.3f} ({low:.3f}-{high:.3f})"
        gap = single_gap(r)
        if gap is not None:
            line += f" | {gap[0]:+.3f} ({gap[2][0]:+.3f} to {gap[2][1]:+.3f}, {gap[1]})"
        print(line)
    for group in sorted({r["group"] for r in rows}):
        mean, (low, high), n = group_mean([r for r in rows if r["group"] == group])
        print(f"{group:12s} MEAN ({n:2d})          | {mean:.3f} ({low:.3f}-{high:.3f})")


if __name__ == "__main__":
    main()
