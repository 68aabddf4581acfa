"""Ablation table on the built-in demo data: fit variants, evaluate each category, print a table.

Variants are FitConfig overrides. The default set compares late-fusion modes and single
modalities (issue 3) and, with --adaptation, LSFA adaptation with each loss group (issue 4).
Data seeds used for tuning and held-out seeds are kept apart: pass --seeds to choose.

    python bench/bench_ablation.py [--seeds 101,102] [--adaptation] [--train 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import tv_shim  # noqa: E402

tv_shim.install()

from core.config import FitConfig  # noqa: E402
from core.demo import DEMO_CATEGORIES, generate_demo_dataset  # noqa: E402
from core.metrics import image_auroc  # noqa: E402
from core.pipeline import evaluate, fit  # noqa: E402

BASE_VARIANTS = {  # frozen features (adapt=False) so that only the scoring choices vary
    "rgb only": dict(modalities="rgb"),
    "xyz only": dict(modalities="xyz"),
    "fused (sum, map max)": dict(fusion="sum", fused_image_score="map_max"),
    "fused (ocsvm, map max)": dict(fusion="ocsvm", fused_image_score="map_max"),
    "fused (sum, max)": dict(fusion="sum", image_score="max", fused_image_score="late"),
    "fused (ocsvm, max)": dict(fusion="ocsvm", image_score="max", fused_image_score="late"),
    "fused (sum, reweighted)": dict(fusion="sum", image_score="reweighted", fused_image_score="late"),
    "fused (ocsvm, reweighted)": dict(fusion="ocsvm", image_score="reweighted", fused_image_score="late"),
}
ADAPT_VARIANTS = {
    "frozen (no adaptation)": dict(adapt=False),
    "LSFA intra-modal only (lc,gc)": dict(adapt=True, adaptation={"losses": ["lc", "gc"]}),
    "LSFA cross-modal only (la,ga)": dict(adapt=True, adaptation={"losses": ["la", "ga"]}),
    "LSFA full (la,ga,lc,gc)": dict(adapt=True, adaptation={"losses": ["la", "ga", "lc", "gc"]}),
    "LSFA cross-modal only, tau 0.1": dict(adapt=True, adaptation={"losses": ["la", "ga"], "tau": 0.1}),
    "LSFA full, tau 0.1": dict(adapt=True, adaptation={"losses": ["la", "ga", "lc", "gc"], "tau": 0.1}),
    "LSFA full, reference schedule (lr 3e-4, 100 steps)": dict(adapt=True, adaptation={"lr": 3e-4, "min_steps": 100}),
    "LSFA full, mlp adaptor": dict(adapt=True, adaptation={"adaptor": "mlp"}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="101", help="demo-data seeds (comma list)")
    ap.add_argument("--categories", default=",".join(DEMO_CATEGORIES))
    ap.add_argument("--train", type=int, default=60)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--test-per-defect", type=int, default=6)
    ap.add_argument("--test-good", type=int, default=12)
    ap.add_argument("--adaptation", action="store_true", help="run the LSFA ablation instead")
    ap.add_argument("--variants", help="variant names to run, separated by | (default all)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    variants = ADAPT_VARIANTS if args.adaptation else BASE_VARIANTS
    if args.variants:
        variants = {k: v for k, v in variants.items() if k in args.variants.split("|")}
    categories = args.categories.split(",")
    tmp = tempfile.TemporaryDirectory()
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        root = Path(tmp.name) / f"demo{seed}"
        generate_demo_dataset(
            root, seed=seed, categories=categories, size=args.size, n_train=args.train,
            n_validation=8, n_test_good=args.test_good, n_test_per_defect=args.test_per_defect,
        )
        for name, overrides in variants.items():
            for cat in categories:
                base = {} if args.adaptation else {"adapt": False}
                cfg = FitConfig(cache_dir=str(Path(tmp.name) / "cache"), seed=0, **{**base, **overrides})
                t0 = time.perf_counter()
                model = fit(root, cat, cfg)
                fit_s = time.perf_counter() - t0
                rep = evaluate(model, root, cat, keep_results=True)
                labels = np.array([r.is_defect for r in rep.results])
                mods = model.modalities
                late = model.image_fusion.transform(
                    np.array([[r.modality_scores[m] for m in mods] for r in rep.results]))
                map_max = np.array([r.anomaly_map.max() for r in rep.results])
                rows.append({
                    "seed": seed, "variant": name, "category": cat,
                    "image_auroc": rep.image_auroc, "pixel_auroc": rep.pixel_auroc, "aupro_30": rep.aupro_30,
                    "image_auroc_map_max": image_auroc(labels, map_max),
                    "image_auroc_late": image_auroc(labels, late),
                    "per_type": rep.defect_type_image_auroc, "fit_s": round(fit_s, 1),
                    "notes": model.info.get("adaptation_notes", []),
                })
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    def fmt(v):
        return "  -  " if v is None else f"{v:.3f}"

    keys = ("image_auroc", "image_auroc_map_max", "image_auroc_late", "pixel_auroc", "aupro_30", "fit_s")
    print("I-AUROC = the model's image score; 'map max' and 'late' = the two fused image scores")
    print(f"{'variant':32s} {'category':8s} {'I-AUROC':>7s} {'mapmax':>7s} {'late':>7s} {'P-AUROC':>7s} {'AUPRO':>7s} {'fit s':>6s}")

    def line(name, cat, sel):
        m = {k: float(np.mean([r[k] for r in sel])) for k in keys}
        print(f"{name:32s} {cat:8s} {fmt(m['image_auroc']):>7s} {fmt(m['image_auroc_map_max']):>7s} "
              f"{fmt(m['image_auroc_late']):>7s} {fmt(m['pixel_auroc']):>7s} {fmt(m['aupro_30']):>7s} {m['fit_s']:6.1f}")

    for name in variants:
        sel = [r for r in rows if r["variant"] == name]
        for cat in categories:
            line(name, cat, [r for r in sel if r["category"] == cat])
        line(name, "MEAN", sel)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
