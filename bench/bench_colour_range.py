"""Where real defects land on the heatmap's fixed colour range, per rule for its top end.

For each dataset of the evaluation suite (bench/bench_suite.py's groups and data), one fit with
the given settings; the colour range's inputs (held-out good maps, pixel threshold, and the
hottest map value inside each of the self-check's synthetic defects) are captured from the fit
and each rule is applied to them:

* ``good tail``  core/colour_range.py, the default: twice the distance from the good median up
  to max(pixel threshold, q99.9 of good);
* ``synthetic``  the median of the synthetic defects' peaks (measured, not adopted);
* ``synth q90``  their 90th percentile (measured, not adopted).

The colours run from the pixel threshold to the top end (the viewers' default). Printed per rule:
``defect pos``, the median over defective test parts of where the hottest ground-truth pixel lies
on that ramp (0 = at the threshold or below, 1 = top colour or above); ``top``, the share of
defective parts reaching the top colour; ``none``, the share with no ground-truth pixel coloured;
``good top``, the share of good test parts with some pixel at the top colour.

    python bench/bench_colour_range.py [--group tuning|confirmation|all] [--data DIR] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_suite import datasets, parse_overrides, select  # noqa: E402

from core import colour_range, self_check  # noqa: E402
from core.config import FitConfig  # noqa: E402
from core.pipeline import evaluate, fit  # noqa: E402
from core.render import range_from_threshold  # noqa: E402


def rules(captured: dict) -> dict[str, tuple[float, float]]:
    """{rule: (low, high)} of the captured fit (the synthetic rules only when the self-check ran
    and their top lies above the pixel threshold; otherwise they fall back to ``good tail``)."""
    good, thr, q = captured["good"], captured["thr"], captured["q"]
    lo, hi = colour_range.fitted_colour_range(good, thr, q)
    out = {"good tail": (lo, hi)}
    check = captured.get("check")
    if check is not None:
        peaks = [float(np.max(a[m])) for a, m in zip(check.chosen.pseudo_maps, check.masks) if np.any(m)]
        for rule, share in (("synthetic", 0.5), ("synth q90", 0.9)):
            top = float(np.quantile(peaks, share)) if peaks else float("nan")
            out[rule] = (lo, top) if top > max(thr, lo) else (lo, hi)
    return out


def placement(results, rng: tuple[float, float], thr: float) -> dict[str, float]:
    lo, hi = range_from_threshold(rng, thr)
    pos, good_top = [], []
    for r in results:
        amap = np.asarray(r.anomaly_map, np.float64)
        if r.is_defect and r.mask is not None and np.any(r.mask):
            peak = float(amap[np.asarray(r.mask, bool)].max())
            pos.append(float(np.clip((peak - lo) / (hi - lo), 0.0, 1.0)))
        elif r.is_defect is False:
            good_top.append(float(amap.max()) >= hi)
    p = np.asarray(pos)
    return {"defect_pos": float(np.median(p)) if p.size else float("nan"),
            "top": float(np.mean(p >= 1.0)) if p.size else float("nan"),
            "none": float(np.mean(p <= 0.0)) if p.size else float("nan"),
            "good_top": float(np.mean(good_top)) if good_top else float("nan"), "hi": hi, "lo": lo}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", default="tuning", choices=["tuning", "confirmation", "all"])
    ap.add_argument("--data", type=Path, default=Path.home() / ".cache" / "lsfa-inspector" / "suite")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", help="comma list of dataset names (or their first word) to run")
    args = ap.parse_args()
    config = FitConfig(**parse_overrides(args.set))
    rows = datasets(args.group, args.data)
    if args.only:
        rows = select(rows, args.only, ap)
    real, real_check = colour_range.fitted_colour_range, self_check.run_self_check
    table: dict[str, list[dict]] = {}
    print(f"{'dataset':<28} {'rule':<10} | {'defect pos':>10} {'top':>5} {'none':>5} {'good top':>8} | range")
    for group, name, root, category in rows:
        captured: dict = {}

        def capture(good, thr, q):
            captured.update(good=np.asarray(good), thr=float(thr), q=float(q))
            return real(good, thr, q)

        def capture_check(*a, **k):
            captured["check"] = real_check(*a, **k)
            return captured["check"]

        colour_range.fitted_colour_range, self_check.run_self_check = capture, capture_check
        try:
            model = fit(root, category, config)
        finally:
            colour_range.fitted_colour_range, self_check.run_self_check = real, real_check
        rep = evaluate(model, root, category)
        for rule, rng in rules(captured).items():
            row = placement(rep.results, rng, captured["thr"])
            table.setdefault(rule, []).append(row)
            print(f"{name + ' ' + category:<28} {rule:<10} | {row['defect_pos']:>10.2f} {row['top']:>5.2f} "
                  f"{row['none']:>5.2f} {row['good_top']:>8.2f} | {row['lo']:.3g}..{row['hi']:.3g}", flush=True)
    for rule, rows in table.items():
        mean = {k: float(np.nanmean([r[k] for r in rows])) for k in ("defect_pos", "top", "none", "good_top")}
        print(f"{'MEAN (' + str(len(rows)) + ')':<28} {rule:<10} | {mean['defect_pos']:>10.2f} {mean['top']:>5.2f} "
              f"{mean['none']:>5.2f} {mean['good_top']:>8.2f}")


if __name__ == "__main__":
    main()
