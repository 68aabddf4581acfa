"""Threshold rules compared on the same fits (frozen, or ``--defaults``) (docs/evaluation.md, "Thresholds"); prints JSON
lines, one per dataset/category.

Image threshold rules, all from the self-check's held-out good samples and synthetic defects:
the seeded default (the model's threshold: the bagged best F1 since 2026-12-01), the single best-F1
cut (the rule before it), the bagged cut recomputed, best F1 with the good samples weighted up to the
defects' count (balanced F1), Youden's J, and the 0.99 quantile of the good scores; each reported on the test
set as the share of good parts flagged, the share of defective parts caught, and F1 (with the
best F1 any threshold reaches there). Pixel threshold rules: the best pixel F1 on the synthetic
defects vs the image threshold itself (the default since 2026-11-30), reported as the share of
flagged parts with an outline, the share of defective parts whose outline touches the ground
truth, and the share of outlined pixels on the ground truth. Uncertain bands above the seeded image
threshold (up to just above the highest held-out good score, or up to the Youden point): the
shares of good and defective test parts with verdict NG and UNCERTAIN.

    python bench/bench_threshold_rules.py ROOT:CATEGORY [ROOT:CATEGORY ...] [--json out.json]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core import tv_shim; tv_shim.install()
import core.self_check as sc
from core.config import FitConfig
from core.pipeline import fit, evaluate
from core.metrics import image_auroc
from core.thresholds import bagged_best_f1_threshold, best_f1_threshold, quantile_threshold

captured = {}
orig = sc.seeded_thresholds


def spy(chosen, masks, seed, pixel=True, training_good=None):
    """Keep the self-check's chosen candidate (good and synthetic-defect scores) of the fit and the
    scores of training parts scored leave-one-out, if any."""
    captured['chosen'], captured['masks'], captured['seed'] = chosen, masks, seed
    captured['training_good'] = training_good
    return orig(chosen, masks, seed, pixel, training_good)


sc.seeded_thresholds = spy

def youden(labels, scores):
    s = np.unique(scores)
    best, thr = -2, s[-1]
    for t in s[::-1]:
        pred = scores >= t
        j = pred[labels].mean() - pred[~labels].mean()
        if j > best: best, thr = j, t
    return float(thr)

def balanced_f1(labels, scores):
    w = labels.sum() / max(1, (~labels).sum())  # each good counts as many as a defect
    s = np.unique(scores); best, thr = -1, s[-1]
    for t in s[::-1]:
        pred = scores >= t
        tp = (pred & labels).sum(); fp = (pred & ~labels).sum() * w; fn = (~pred & labels).sum()
        f1 = 2 * tp / (2 * tp + fp + fn)
        if f1 > best + 1e-12: best, thr = f1, t
    return float(thr)

def rates(y, img, thr):
    pred = img >= thr
    tp = (pred & y).sum(); fp = (pred & ~y).sum(); fn = (~pred & y).sum()
    return dict(good_flagged=round(float(pred[~y].mean()), 3), defects_caught=round(float(pred[y].mean()), 3),
                f1=round(float(2 * tp / max(1, 2 * tp + fp + fn)), 3))

def band_rates(y, img, low, high):
    """Verdicts with an uncertain band [low, high): shares of good / defective test parts NG and UNCERTAIN."""
    ng, unc = img >= high, (img >= low) & (img < high)
    return dict(good_ng=round(float(ng[~y].mean()), 3), good_uncertain=round(float(unc[~y].mean()), 3),
                defects_ng=round(float(ng[y].mean()), 3), defects_uncertain=round(float(unc[y].mean()), 3))

def best_f1_test(y, img):
    _, f = best_f1_threshold(y, img); return round(f, 3)

def pixel_rates(lab, image_thr: float, pixel_thr: float) -> dict:
    """Outlines at ``pixel_thr``: share of parts flagged at ``image_thr`` with an outline, share of
    defective parts whose outline touches the ground truth, mean share of outlined pixels on it."""
    flagged = [r for r in lab if r.image_score >= image_thr]
    defective = [r for r in lab if r.is_defect and r.mask is not None and r.mask.any()]
    outlined = [(r, r.anomaly_map >= pixel_thr) for r in defective]
    on_gt = [(out & r.mask).sum() / out.sum() for r, out in outlined if out.any()]
    return dict(ng_with_outline=round(sum((r.anomaly_map >= pixel_thr).any() for r in flagged) / max(1, len(flagged)), 3),
                defects_outline_hits_gt=round(sum((out & r.mask).any() for r, out in outlined) / max(1, len(defective)), 3),
                outlined_px_on_gt=round(float(np.mean(on_gt)) if on_gt else 0.0, 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="+", help="ROOT:CATEGORY")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--defaults", action="store_true", help="fit with FitConfig() defaults (adaptation, the "
                    "suite's settings) instead of frozen features and exact search")
    ap.add_argument("--seed", type=int, default=0, help="the fit's seed (default 0)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="a FitConfig setting for every fit, e.g. --set threshold_training_parts=true "
                    "(then seeded_f1 is that rule and bagged_f1 the held-out-only one)")
    ap.add_argument("--dump", type=Path, help="folder for one .npz per dataset: calibration good / synthetic-defect "
                    "image scores and test image scores / labels (for offline threshold-rule studies)")
    ap.add_argument("--loo-every", type=int, default=0, metavar="N", help="with --dump: also score every N-th "
                    "training part leave-one-out (bench_leave_one_out.py) and store those scores (loo_train)")
    args = ap.parse_args()
    out = {}
    for spec in args.specs:
        root, cat = spec.rsplit(':', 1)
        captured.clear()
        overrides = {k: json.loads(v) for k, v in (item.split('=', 1) for item in args.set)}
        config = (FitConfig(seed=args.seed, **overrides) if args.defaults
                  else FitConfig(adapt=False, search='exact', seed=args.seed, **overrides))
        model = fit(root, cat, config)
        rep = evaluate(model, root, cat)
        lab = [r for r in rep.results if r.label is not None]
        y = np.array([r.is_defect for r in lab]); img = np.array([r.image_score for r in lab])
        ch = captured['chosen']
        gl = np.r_[np.zeros(len(ch.good_scores), bool), np.ones(len(ch.pseudo_scores), bool)]
        gs = np.r_[ch.good_scores, ch.pseudo_scores]
        rules = {'seeded_f1': model.thresholds.image, 'balanced_f1': balanced_f1(gl, gs), 'youden': youden(gl, gs),
                 'quantile99': quantile_threshold(ch.good_scores, 0.99), 'bagged_f1': bagged_best_f1_threshold(gl, gs, args.seed),
                 'single_f1': best_f1_threshold(gl, gs)[0]}
        row = {'best_f1_test': best_f1_test(y, img), 'i_auroc': round(float(image_auroc(y, img)), 4)}
        for k, t in rules.items():
            row[k] = rates(y, img, t)
        # uncertain band above the seeded image threshold (FitConfig.uncertain_band: band_max_good)
        low = model.thresholds.image
        for name, high in (('band_max_good', sc.seeded_uncertain_until(ch, low)), ('band_youden', max(low, rules['youden']))):
            row[name] = band_rates(y, img, low, low if high is None else high)
        pixel_f1 = orig(ch, captured['masks'], captured['seed'], True).pixel  # the previous rule: best pixel F1 on the synthetic defects
        row['pix_seeded'] = pixel_rates(lab, model.thresholds.image, pixel_f1)
        row['pix_eq_image'] = pixel_rates(lab, model.thresholds.image, model.thresholds.image)
        row['pix_model'] = pixel_rates(lab, model.thresholds.image, model.thresholds.pixel)  # the fit's own rule
        out[spec] = row
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            name = f"{Path(root).name}_{cat}".replace("/", "_")
            extra = {}
            if args.loo_every:
                from bench_leave_one_out import leave_one_out_score
                from core.data.dataset import open_dataset

                refs = open_dataset(root).samples(cat, "train")[::args.loo_every]
                extra["loo_train"] = np.array([leave_one_out_score(model, r, []) for r in refs])
            if captured.get('training_good') is not None:
                extra["training_good"] = np.asarray(captured['training_good'])
            np.savez(args.dump / f"{name}.npz", **extra, calib_good=ch.good_scores, calib_pseudo=ch.pseudo_scores,
                     test_scores=img, test_labels=y, seeded_image=model.thresholds.image)
        print(spec, json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
