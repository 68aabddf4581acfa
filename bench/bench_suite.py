"""Evaluation suite: fit + evaluate a fixed list of datasets and print one table.

Two groups (see docs/evaluation.md):

* tuning: the built-in demo generator at eight seeds (two with other object scale, sensor noise
  and defect size, one with flying pixels at the objects' rims, one with dents and bumps that do
  not show in the RGB image, one with each part's colour varied), the shared real MVTec 3D-AD ``tire`` (half-resolution subset, RGB only) and
  the shared real MVTec AD ``bottle`` (2D layout). Defaults are chosen on these only.
* confirmation: the independently written "parts" generator (core/data/parts/: other shapes,
  materials, lighting, sensor noise; 0.2-1 mm dents and bumps), never used to choose anything.

Each row is one category: I-AUROC, P-AUROC and AUPRO@0.3 of the fused model, and I-AUROC /
AUPRO@0.3 of each modality's own map from the same fit with the same image-score rule (the
single-modality detectors; with adaptation their features are the adapted ones). Data are
generated once into ``--data`` (deterministic); fits use FitConfig defaults plus ``--set`` overrides.

    python bench/bench_suite.py [--group tuning|confirmation|all] [--set key=value ...] [--json out.json]

``--rgb-only`` runs every dataset as 2D data: the generated sets through copies that hold only their
``rgb/`` and ``gt/`` folders (symbolic links under ``--data``/rgb_only), so they are fitted as data
without point clouds are (not cropped unless ``--set rgb_object_crop=true``; two models by default);
the real sets are RGB only already.

Each group's MEAN line ends with 90 % bootstrap intervals over the test parts (bench/suite_stats.py:
the mean fused I-AUROC, and the largest gap to the best single modality, paired); the JSON rows keep
every test part's image scores for them. ``--test-scale K`` generates the sets with K times the test
parts on the same training parts (names ending in ``-testK``), for narrower intervals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import tv_shim  # noqa: E402

tv_shim.install()

from core.config import PRESETS, FitConfig  # noqa: E402
from core.metrics import aupro, image_auroc  # noqa: E402
from core.pipeline import evaluate, fit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite_stats  # noqa: E402  (bench/suite_stats.py, beside this script)

SHARED = ROOT.parent / "shared" / "data"
COUNTS = dict(n_train=60, n_validation=10, n_test_good=12, n_test_per_defect=6)
DEMO_SETS = {  # seed -> demo generator variation factors
    301: {},
    302: {},
    303: {},
    304: dict(object_scale=0.8, noise_scale=2.0, defect_scale=0.7),
    305: dict(object_scale=1.3, noise_scale=0.5, defect_scale=1.5),
    306: dict(flying_pixels=0.4),  # mixed ("flying") pixels at the objects' rims
    307: dict(dent_shading=0.0),  # dents and bumps geometry only: not in the RGB image
    308: dict(print_variation=0.3),  # each part's colour varies: the RGB image of good parts varies
}
PARTS_SEED = 901


def test_counts(test_scale: int = 1) -> dict:
    """The generated sets' counts with ``test_scale`` times the test parts (good and per defect
    type; the training and validation parts, and the first test parts, stay the same)."""
    return {**COUNTS, "n_test_good": COUNTS["n_test_good"] * test_scale,
            "n_test_per_defect": COUNTS["n_test_per_defect"] * test_scale}


def datasets(group: str, data_dir: Path, parts_seed: int = PARTS_SEED,
             parts_distance: float = 1.0, test_scale: int = 1, wanted=None,
             one_design: bool = False) -> list[tuple[str, str, Path, str]]:
    """(group, name, root, category) rows; generates synthetic data that is missing for the
    datasets whose name ``wanted(name)`` accepts (default: all; the others are listed, not
    generated). ``parts_seed``:
    the confirmation group's seed (another seed gives a fresh, never-seen confirmation set);
    ``parts_distance``: its camera distance as a multiple of the usual (2: parts half as wide in
    the frame); ``test_scale``: the generated sets with that many times the test parts (their
    folders and names end in ``-testK``), for figures with less sampling noise; ``one_design``:
    the parts with one design per category (one product, as on a line; folders and names end in
    ``onedesign``) instead of a new design per part."""
    rows = []
    counts = test_counts(test_scale)
    more = "" if test_scale == 1 else f"_test{test_scale}"
    if group in ("tuning", "all"):
        from core.demo import DEMO_CATEGORIES, generate_demo_dataset

        for seed, knobs in DEMO_SETS.items():
            root, name = data_dir / f"demo_{seed}{more}", f"demo-{seed}{more.replace('_', '-')}"
            if wanted is None or wanted(name):
                generate_demo_dataset(root, seed=seed, size=400, **counts, **knobs)
            rows += [("tuning", name, root, c) for c in DEMO_CATEGORIES]
        for name, root, cat in (("tire (real, RGB)", SHARED / "mvtec3d_tire_rgb", "tire"),
                                ("bottle (real, 2D)", SHARED / "mvtec_ad_bottle_small", "bottle")):
            if root.is_dir():
                rows.append(("tuning", name, root, cat))
            else:
                print(f"note: {root} missing; {name} skipped", file=sys.stderr)
    if group in ("confirmation", "all"):
        from core.data.parts import PARTS_CATEGORIES, generate_parts_dataset

        suffix = ("" if parts_distance == 1.0 else f"_far{parts_distance:g}") + ("_onedesign" if one_design else "") + more
        root = data_dir / f"parts_{parts_seed}{suffix}"
        name = ("parts" if parts_seed == PARTS_SEED else f"parts-{parts_seed}") + suffix.replace("_", "-")
        if wanted is None or wanted(name):
            generate_parts_dataset(root, seed=parts_seed, size=400, camera_distance=parts_distance,
                                   one_design=one_design, **counts)
        rows += [("confirmation", name, root, c) for c in PARTS_CATEGORIES]
    return rows


def without_point_clouds(root: Path, out: Path) -> Path:
    """``out``: a copy of the MVTec 3D-AD-layout dataset ``root`` without its point clouds, made of
    symbolic links to its ``<category>/<split>/<label>/{rgb,gt}`` folders (nothing is copied or
    rewritten); returns ``out``."""
    for leaf in sorted(root.glob("*/*/*")):
        for sub in ("rgb", "gt"):
            src, dst = leaf / sub, out / leaf.relative_to(root) / sub
            if src.is_dir() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src.resolve(), target_is_directory=True)
    return out


def rgb_only_rows(rows: list, data_dir: Path) -> list:
    """The rows of :func:`datasets` with every dataset read without its point clouds (generated
    sets through :func:`without_point_clouds` copies under ``data_dir/rgb_only``)."""
    out = []
    for group, name, root, cat in rows:
        if root.resolve().is_relative_to(data_dir.resolve()):
            root = without_point_clouds(root, data_dir / "rgb_only" / root.name)
            name = f"{name} (RGB)"
        out.append((group, name, root, cat))
    return out


def run_one(root: Path, category: str, config: FitConfig) -> dict:
    t0 = time.perf_counter()
    model = fit(root, category, config)
    fit_s = time.perf_counter() - t0
    rep = evaluate(model, root, category)
    labelled = [r for r in rep.results if r.label is not None]
    labels = np.array([r.is_defect for r in labelled])
    with_masks = [r for r in labelled if r.mask is not None]
    from core.thresholds import best_f1_threshold, confusion

    scores = np.array([r.image_score for r in labelled])
    check = model.info.get("self_check") or {}
    row = {
        "fused": {"I": rep.image_auroc, "P": rep.pixel_auroc, "PRO": rep.aupro_30},
        "estimate": check.get("estimate"),
        "f1_at_seeded": confusion(labels, scores, model.thresholds.image)["f1"],
        "f1_best": best_f1_threshold(labels, scores)[1] if labels.any() else None,
        "good_flagged_test": float(np.mean(scores[~labels] >= model.thresholds.image)) if (~labels).any() else None,
        "fit_s": round(fit_s, 1),
        "self_check_s": check.get("seconds"),
        "s_per_sample": round(rep.seconds_per_sample, 3),
        "defect_types": rep.defect_type_image_auroc,
        "calibration": model.info.get("calibration"),
        "self_check": check or None,
        "adapted": model.adapted,
    }
    # each test part's image score, for the bootstrap intervals (bench/suite_stats.py)
    row["samples"] = {"names": [r.name for r in labelled], "defect": labels.tolist(), "fused": scores.tolist()}
    if len(model.modalities) > 1:
        for m in model.modalities:
            # the single-modality detector: the same image-score rule on this modality's own map
            finest = getattr(model, "members", [model])[-1]  # an ensemble's per-modality maps: its finest member's
            own = finest._map_image_scores(np.stack([r.modality_maps[m] for r in labelled]))
            frames = [r.on_whole_frame(r.modality_maps[m]) for r in with_masks]  # as the fused AUPRO
            row[m] = {
                "I": image_auroc(labels, own),
                "PRO": aupro([mask for _, mask in frames], [amap for amap, _ in frames], 0.3, 100),
            }
            row["samples"][m] = np.asarray(own, float).tolist()
    return row


def uncertainty_line(rows: list[dict]) -> str:
    """' | …' text for a group's MEAN line: the bootstrap intervals (bench/suite_stats.py) of the
    mean fused I-AUROC and of the largest gap to the best single modality ('' without kept scores)."""
    mean = suite_stats.group_mean(rows)
    if mean is None:
        return ""
    text = f" | mean fused I-AUROC 90 % interval over test parts {mean[1][0]:.3f}-{mean[1][1]:.3f} ({mean[2]} sets)"
    gaps = [(g, r) for g, r in ((suite_stats.single_gap(r), r) for r in rows) if g is not None]
    if gaps:
        (gap, _, (low, high)), worst = max(gaps, key=lambda g: g[0][0])
        text += f"; largest gap {gap:+.3f} ({worst['name']} {worst['category']}: {low:+.3f} to {high:+.3f})"
    return text


def _seconds(v) -> str:
    return "   -   " if v is None else f"{v:7.1f}"


def _fmt(v) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def print_table(results: list[dict]) -> None:
    head = (f"{'group':12s} {'dataset':18s} {'category':9s} | fused I  P     PRO   | rgb I  PRO   | xyz I  PRO   "
            f"| est.I est.PRO | F1 seed/best | fit s  check s  s/smp")
    print(head)
    print("-" * len(head))
    for r in results:
        f = r["fused"]
        rgb, xyz = r.get("rgb", {}), r.get("xyz", {})
        print(f"{r['group']:12s} {r['name']:18s} {r['category']:9s} | {_fmt(f['I'])} {_fmt(f['P'])} {_fmt(f['PRO'])} "
              f"| {_fmt(rgb.get('I'))} {_fmt(rgb.get('PRO'))} | {_fmt(xyz.get('I'))} {_fmt(xyz.get('PRO'))} "
              f"| {_fmt((r['estimate'] or {}).get('image_auroc'))} {_fmt((r['estimate'] or {}).get('aupro_30'))}   "
              f"| {_fmt(r['f1_at_seeded'])}/{_fmt(r['f1_best'])}  | {r['fit_s']:5.1f} {_seconds(r.get('self_check_s'))} "
              f"{r['s_per_sample']:.3f}")
    for group in sorted({r["group"] for r in results}):
        rows = [r for r in results if r["group"] == group]
        mean = {k: float(np.mean([r["fused"][k] for r in rows if r["fused"][k] is not None])) for k in ("I", "P", "PRO")}
        gaps = [  # only rows with more than one modality have a fused result to compare
            max(r[m]["I"] for m in ("rgb", "xyz")) - r["fused"]["I"]
            for r in rows
            if all((r.get(m) or {}).get("I") is not None for m in ("rgb", "xyz")) and r["fused"]["I"] is not None
        ]
        est = [abs(r["estimate"]["image_auroc"] - r["fused"]["I"]) for r in rows if r.get("estimate") and r["fused"]["I"] is not None]
        intervals = [((r.get("estimate") or {}).get("image_auroc_interval"), r["fused"]["I"]) for r in rows]
        covered = [interval[0] <= real <= interval[1] for interval, real in intervals if interval and real is not None]
        f1 = [r["f1_at_seeded"] / r["f1_best"] for r in rows if r.get("f1_best")]
        share = [r["self_check_s"] / r["fit_s"] for r in rows if r.get("self_check_s") and r["fit_s"]]
        fr = [r["good_flagged_test"] for r in rows if r.get("good_flagged_test") is not None]
        print(f"{group:12s} {'MEAN':18s} {len(rows):3d} cats  | {mean['I']:.3f} {mean['P']:.3f} {mean['PRO']:.3f} "
              + (f"| largest (best single - fused) I-AUROC gap {max(gaps):+.3f}" if gaps else "| single-modality rows only")
              + (f" | mean |estimate - real| I-AUROC {np.mean(est):.3f}" if est else "")
              + (f" (real inside the estimate's bootstrap interval: {sum(covered)} of {len(covered)})" if covered else "")
              + (f" | F1 seeded/best: mean {np.mean(f1):.2f}, min {np.min(f1):.2f}" if f1 else "")
              + (f" | good test parts flagged: mean {np.mean(fr):.2f}" if fr else "")
              + (f" | self-check share of fit time: mean {np.mean(share):.0%}, max {np.max(share):.0%}" if share else "")
              + uncertainty_line(rows))


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _items(only: str) -> set[str]:
    return {k.strip() for k in only.split(",") if k.strip()}


def named(only: str | None):
    """``wanted(name)`` for :func:`datasets`: whether the comma list ``only`` (names or their first
    words) names a dataset; None (all wanted) without a list."""
    if not only:
        return None
    keep = _items(only)
    return lambda name: name in keep or name.split()[0] in keep


def select(rows: list, only: str, ap: argparse.ArgumentParser) -> list:
    """The rows of :func:`datasets` named in the comma list ``only`` (a name or its first word);
    an item that matches nothing is an argparse error."""
    unknown = sorted(k for k in _items(only) if not any(named(k)(r[1]) for r in rows))
    if unknown:
        ap.error(f"--only: no dataset named {', '.join(unknown)} (names: {', '.join(sorted({r[1] for r in rows}))})")
    wanted = named(only)
    return [r for r in rows if wanted(r[1])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", default="tuning", choices=["tuning", "confirmation", "all"])
    ap.add_argument("--data", type=Path, default=Path.home() / ".cache" / "lsfa-inspector" / "suite",
                    help="where generated datasets are kept")
    ap.add_argument("--preset", choices=sorted(PRESETS),
                    help="the resolution preset of lsfa fit --preset (accurate: the two-resolution ensemble); "
                         "--set overrides it")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="FitConfig overrides (JSON values)")
    ap.add_argument("--only", help="comma list of datasets to run, each a name or its first word "
                                   "(e.g. demo-301,tire); an item that matches nothing is an error")
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--parts-seed", type=int, default=PARTS_SEED,
                    help=f"seed of the confirmation group's parts (default {PARTS_SEED}); a new seed is a fresh "
                         "confirmation set for a decision whose seed-901 numbers were already seen")
    ap.add_argument("--parts-distance", type=float, default=1.0,
                    help="the confirmation parts' camera distance as a multiple of the usual 390-420 mm "
                         "(2: each part half as wide in the frame, as a wider view of a line shows it)")
    ap.add_argument("--test-scale", type=int, default=1, metavar="K",
                    help="generated sets with K times the test parts (K x 12 good, K x 6 per defect type; "
                         "the same training parts): narrower intervals, K times the scoring time")
    ap.add_argument("--parts-one-design", action="store_true",
                    help="the confirmation parts with one design per category (one product, as a line makes it; "
                         "each part keeps its own texture, pose, light, noise, defect) instead of a new design "
                         "per part")
    ap.add_argument("--rgb-only", action="store_true",
                    help="every dataset without its point clouds (the generated ones through symbolic-link "
                         "copies holding only rgb/ and gt/): fitted as 2D data is")
    args = ap.parse_args()
    overrides = {**(PRESETS[args.preset] if args.preset else {}), **parse_overrides(args.set)}
    config = FitConfig(**overrides)
    if args.test_scale < 1:
        ap.error("--test-scale must be a whole number ≥ 1")
    rows = datasets(args.group, args.data, args.parts_seed, args.parts_distance, args.test_scale, named(args.only),
                    args.parts_one_design)
    if args.rgb_only:
        rows = rgb_only_rows(rows, args.data)
    if args.only:
        rows = select(rows, args.only, ap)
    results = []
    t0 = time.perf_counter()
    for group, name, root, cat in rows:
        row = run_one(root, cat, config)
        row.update(group=group, name=name, category=cat)
        results.append(row)
        if args.json:  # written after every category, so a long run can be read while it goes
            args.json.write_text(json.dumps({"overrides": overrides, "rows": results}, indent=1, default=str))
        print(f"  done {name} {cat}: fused I {_fmt(row['fused']['I'])} PRO {_fmt(row['fused']['PRO'])}", file=sys.stderr, flush=True)
    print(f"config overrides: {overrides or 'none (defaults)'}; total {time.perf_counter() - t0:.0f} s")
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"overrides": overrides, "rows": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
