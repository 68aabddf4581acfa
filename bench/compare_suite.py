"""Compare evaluation-suite runs side by side (the ``--json`` files of bench/bench_suite.py).

One row per dataset present in every run: fused I-AUROC and AUPRO@0.3, each modality's own
I-AUROC, and the change of the last run against the first; then each group's means. This is how a
decision rule written before a run is checked ("tuning mean +0.010, confirmation not lower").

    python bench/compare_suite.py BASELINE.json CANDIDATE.json [MORE.json ...]

A run split over several files (e.g. ``--group tuning`` and ``--group confirmation`` run apart)
is given as one comma-separated argument: ``cand_tuning.json,cand_confirmation.json``.

Where both the first and the last run kept each test part's image score (suite JSON written since
the twenty-ninth session) on the same parts, each group's line also gives the 90 % bootstrap
interval of the mean change of fused I-AUROC, the test parts resampled and scored by both runs
(bench/suite_stats.py): a change whose interval holds 0 is within what other test parts could give.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite_stats  # noqa: E402  (bench/suite_stats.py, beside this script)


def load_rows(paths: str) -> dict[tuple[str, str, str], dict]:
    """{(group, dataset, category): row} of one run: a suite JSON, or several comma-separated."""
    out = {}
    for path in paths.split(","):
        out.update({(r["group"], r["name"], r["category"]): r for r in json.loads(Path(path).read_text())["rows"]})
    return out


def _get(row: dict, *keys):
    for k in keys:
        row = (row or {}).get(k)
    return row


def compare(runs: list[dict]) -> tuple[list[dict], dict[str, dict]]:
    """(per-dataset rows, {group: means}) over the datasets present in every run. Each row holds,
    per run, fused I-AUROC ("I"), AUPRO@0.3 ("PRO") and each modality's I-AUROC ("rgb", "xyz";
    None where the dataset has one modality); "dI" is the last run's fused I-AUROC minus the first's."""
    keys = [k for k in runs[0] if all(k in r for r in runs[1:])]
    rows = []
    for k in keys:
        per = [{"I": _get(r[k], "fused", "I"), "PRO": _get(r[k], "fused", "PRO"),
                "rgb": _get(r[k], "rgb", "I"), "xyz": _get(r[k], "xyz", "I")} for r in runs]
        d = None if per[0]["I"] is None or per[-1]["I"] is None else per[-1]["I"] - per[0]["I"]
        rows.append({"group": k[0], "name": k[1], "category": k[2], "runs": per, "dI": d})
    means = {}
    for group in sorted({r["group"] for r in rows}):
        g = [r for r in rows if r["group"] == group]
        means[group] = {
            "n": len(g),
            "I": [float(np.mean([r["runs"][i]["I"] for r in g])) for i in range(len(runs))],
            "PRO": [float(np.mean([r["runs"][i]["PRO"] for r in g])) for i in range(len(runs))],
            "higher": sum(r["dI"] > 0.0005 for r in g if r["dI"] is not None),
            "lower": sum(r["dI"] < -0.0005 for r in g if r["dI"] is not None),
        }
        pairs = [p for p in (_change_scores(runs[0][(group, r["name"], r["category"])],
                                            runs[-1][(group, r["name"], r["category"])]) for r in g) if p]
        if pairs:
            means[group]["dI_interval"] = suite_stats.mean_difference(pairs)
            means[group]["paired"] = len(pairs)
    return rows, means


def _change_scores(first: dict, last: dict):
    """(defect labels, last run's fused scores, first run's) of one dataset — the order
    :func:`suite_stats.mean_difference` takes for the change last − first — when both runs kept
    their scores (:func:`suite_stats.kept`) for the same test parts; else None."""
    if not (suite_stats.kept(first) and suite_stats.kept(last)):
        return None
    a, b = first["samples"], last["samples"]
    if a["names"] != b["names"] or a["defect"] != b["defect"]:
        return None
    return a["defect"], b["fused"], a["fused"]


def _f(v) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="suite JSON files (a run in several files: comma-separated); "
                                            "the first run is the baseline")
    args = ap.parse_args()
    if len(args.runs) < 2:
        ap.error("give at least two runs")
    rows, means = compare([load_rows(p) for p in args.runs])
    print("runs: " + "; ".join(f"[{i}] {p}" for i, p in enumerate(args.runs)))
    print(f"{'group':12s} {'dataset':18s} {'category':9s} | fused I / AUPRO@0.3 per run | rgb I per run | xyz I per run | dI (last - first)")
    for r in rows:
        runs = r["runs"]
        print(f"{r['group']:12s} {r['name']:18s} {r['category']:9s} | "
              + "  ".join(f"{_f(x['I'])}/{_f(x['PRO'])}" for x in runs) + " | "
              + " ".join(_f(x["rgb"]) for x in runs) + " | " + " ".join(_f(x["xyz"]) for x in runs)
              + f" | {'  -  ' if r['dI'] is None else format(r['dI'], '+.3f')}")
    for group, m in means.items():
        print(f"{group:12s} MEAN ({m['n']:2d})          | I " + " ".join(f"{v:.4f}" for v in m["I"])
              + " | AUPRO " + " ".join(f"{v:.4f}" for v in m["PRO"])
              + f" | last vs first: {m['higher']} higher, {m['lower']} lower (by more than 0.0005)"
              + (f" | mean change 90 % interval over test parts {m['dI_interval'][0]:+.4f} to {m['dI_interval'][1]:+.4f}"
                 f" ({m['paired']} of {m['n']} sets)" if "dI_interval" in m else ""))


if __name__ == "__main__":
    main()
