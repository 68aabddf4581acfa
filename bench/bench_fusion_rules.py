"""Fusion-weight rules compared on the same frozen fits (docs/evaluation.md, "Tried and not adopted").

For each dataset/category: fit with suite defaults (frozen features), evaluate, then fuse the
same per-modality test maps with each rule and print fused I-AUROC / AUPRO@0.3 per rule:

* current: the fit's own fusion (the self-check's 0/1 weights, core.self_check.shrink_uninformative);
* equal: equal weights; linear / square: w = max(0, informativeness - 0.5), scaled so the largest
  is 1 (squared for *square*); rgb_only / xyz_only: the single modalities; modality_topk_sum: the
current fused map, but the image score is the sum of each modality's own top-k score in tail units.

    python bench/bench_fusion_rules.py ROOT:CATEGORY [ROOT:CATEGORY ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import tv_shim  # noqa: E402

tv_shim.install()

from core.config import FitConfig  # noqa: E402
from core.metrics import aupro, image_auroc  # noqa: E402
from core.pipeline import evaluate, fit  # noqa: E402


def rules_for(model) -> dict:
    """{rule name: LateFusion} for a fitted two-modality model with tail fusion."""
    base, mods = model.pixel_fusion, model.modalities
    check = model.info.get("self_check") or {}
    chosen = [c for c in check.get("candidates", []) if c["variant"] == check.get("variant")]
    info = chosen[0].get("modality_informativeness", {}) if chosen else {}
    inf = np.array([1.0 if info.get(m) is None else info[m] for m in mods])
    out = {"current": base, "equal": base.with_weights(np.ones(len(mods)))}
    lin = np.clip(inf - 0.5, 0, None)
    if lin.max() > 0:
        out["linear"] = base.with_weights(lin / lin.max())
        out["square"] = base.with_weights((lin / lin.max()) ** 2)
    for i, m in enumerate(mods):
        out[f"{m}_only"] = base.with_weights(np.eye(len(mods))[i])
    return out, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="+", help="ROOT:CATEGORY")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = {}
    for spec in args.specs:
        root, cat = spec.rsplit(":", 1)
        model = fit(root, cat, FitConfig(adapt=False))
        if len(model.modalities) < 2:
            print(f"{spec}: one modality, nothing to fuse", file=sys.stderr)
            continue
        rep = evaluate(model, root, cat)
        lab = [r for r in rep.results if r.label is not None]
        y = np.array([r.is_defect for r in lab])
        maps = {m: np.stack([r.modality_maps[m] for r in lab]) for m in model.modalities}
        with_mask = [i for i, r in enumerate(lab) if r.mask is not None]
        rules, info = rules_for(model)
        row = {"informativeness": info, "rules": {}}
        for name, fusion in rules.items():
            img, pix = model.fuse_maps(maps, fusion)
            pro = aupro([lab[i].mask for i in with_mask], [pix[i] for i in with_mask], 0.3, 100)
            row["rules"][name] = {"I": round(float(image_auroc(y, img)), 4), "PRO": round(float(pro), 4)}
        # image score = sum over modalities of each one's own top-k score in tail units (the
        # current weights); the fused map (localisation) stays the current one
        per = [model._map_image_scores(model.fuse_maps(maps, rules["current"].with_weights(
            np.eye(len(model.modalities))[i] * (1.0 if rules["current"].weights is None else rules["current"].weights[i])))[1])
            for i in range(len(model.modalities))]
        row["rules"]["modality_topk_sum"] = {"I": round(float(image_auroc(y, np.sum(per, axis=0))), 4),
                                             "PRO": row["rules"]["current"]["PRO"]}
        results[spec] = row
        print(spec, " ".join(f"{k} {v['I']:.3f}/{v['PRO']:.3f}" for k, v in row["rules"].items()), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    names = sorted({k for r in results.values() for k in r["rules"]})
    for name in names:
        vals = [r["rules"][name] for r in results.values() if name in r["rules"]]
        print(f"MEAN {name:9s} I {np.mean([v['I'] for v in vals]):.3f}  AUPRO {np.mean([v['PRO'] for v in vals]):.3f}")


if __name__ == "__main__":
    main()
