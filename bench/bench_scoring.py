"""Scoring and fit benchmark (issue 3 and issue 11 targets), exact vs approximate search in one run.

Fits one category (generated demo data, or an existing dataset with ``--data DIR --category C``),
then scores its test samples twice, interleaved sample by sample: with the banks' search as fitted
(IVF-Flat where the fit-time check chose it) and with exact search. Prints JSON: median seconds per
sample for each stage (preprocess, RGB features, 3D features, kNN, maps, fusion) and in total, the
kNN and total ratios approximate/exact, I-AUROC / P-AUROC / AUPRO@0.3 of both, fit seconds, bank
sizes and search choices, peak RSS. Those are per-sample latencies of samples already read from
disk. ``batch`` then scores the test files end to end (read, preprocess, score) as ``lsfa score``
and ``lsfa eval`` do (core.model.Model.score_each), one after the other and with the next sample
read, preprocessed and (RGB + xyz models) its RGB features extracted in a background thread
(core.prefetch), alternating over ``--rounds``: wall seconds per sample (throughput) of each, the
process's CPU seconds per sample, and whether both gave identical maps and scores. Those samples
were preprocessed before (the interleaved runs above), so their background removal comes from the
preprocessing cache; ``--new-parts`` gives every end-to-end run an empty cache of its own, as for
parts a line has never seen.
Targets on a 2-core CPU: scoring <= 0.1 s/sample with I-AUROC and AUPRO within 0.005 of exact
search, fit (200 samples, no adaptation) <= 60 s, peak RSS <= 2.5 GB.

    python bench/bench_scoring.py [--train 200] [--test 20] [--size 224]
    python bench/bench_scoring.py --data DIR --category C [--test N] [--rounds 2] [--threads 1] [--new-parts]
    python bench/bench_scoring.py --tire-fullres [--train 200]

With ``--data`` the preprocessing cache is ``$LSFA_CACHE_DIR`` (or the per-user one).
``--tire-fullres``: an RGB-only case at 600×800 pixels (W×H, MVTec 3D-AD's full resolution) built
from the shared half-resolution MVTec 3D-AD ``tire`` (300×400): every image upsampled 2× (bicubic,
masks nearest) into a temporary MVTec layout, the train folder filled to ``--train`` images with
left-right, top-bottom and both-ways flipped copies of its 60 images; all 43 test images scored.
The images are real but upsampled (their detail is that of 300×400): this measures the cost of
reading and scoring 600×800 files with a ``--train``-image bank, not the accuracy at full resolution.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
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
from core.model_io import load_model  # noqa: E402
from core.pipeline import fit, metrics_for  # noqa: E402
from core.scoring.memory_bank import MemoryBank  # noqa: E402

SHARED_TIRE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mvtec3d_tire_rgb"


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def exact_twin(model):
    """The same model with exact-search copies of its banks (an ensemble's: each member's)."""
    twin = copy.copy(model)
    if hasattr(model, "members"):
        twin.members = [exact_twin(m) for m in model.members]
        return twin
    twin.banks = {m: MemoryBank(b.vectors) for m, b in model.banks.items()}
    return twin


def make_fullres_tire(root: Path, n_train: int, source: Path = SHARED_TIRE) -> Path:
    """MVTec layout of the shared half-resolution tire at 600×800 in ``root`` (see the module
    docstring); returns ``root``, category "tire"."""
    from PIL import Image

    src = source / "tire"
    if not src.is_dir():
        raise SystemExit(f"--tire-fullres needs the shared MVTec 3D-AD tire in {source}")
    flips = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180)

    def up(path: Path, dest: Path, flip=None) -> None:
        with Image.open(path) as im:
            mask = im.mode == "L"
            im = im.resize((im.width * 2, im.height * 2), Image.NEAREST if mask else Image.BICUBIC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        (im if flip is None else im.transpose(flip)).save(dest, compress_level=1)  # fast to write; decoding costs about the same

    train = sorted((src / "train" / "good" / "rgb").glob("*.png"))
    if n_train > len(train) * len(flips):
        raise SystemExit(f"--tire-fullres: at most {len(train) * len(flips)} train images")
    for i in range(n_train):
        up(train[i % len(train)], root / "tire" / "train" / "good" / "rgb" / f"{i:03d}.png", flips[i // len(train)])
    for path in sorted(src.glob("validation/*/rgb/*.png")) + sorted(src.glob("test/*/*/*.png")):
        up(path, root / "tire" / path.relative_to(src))
    return root


def summarise(results, totals, modalities) -> dict:
    per_stage: dict[str, list[float]] = {}
    for r in results:
        for k, v in r.timings.items():
            per_stage.setdefault(k, []).append(v)
    met = metrics_for(results, modalities)
    return {
        "score_total_median_s": round(float(np.median(totals)), 4),
        "score_median_s_per_sample": {k: round(float(np.median(v)), 4) for k, v in per_stage.items()},
        "knn_median_ms": round(1000 * float(np.median(per_stage.get("knn", [0.0]))), 2),
        "image_auroc": met["image_auroc"],
        "pixel_auroc": met["pixel_auroc"],
        "aupro_30": met["aupro_30"],
    }


def use_cache_folder(model, folder: Path) -> None:
    """Point the model's (and an ensemble's members') preprocessing cache at ``folder``."""
    for m in [model, *getattr(model, "members", [])]:
        m.config = dataclasses.replace(m.config, cache_dir=str(folder))


def batch_throughput(model, refs, rounds: int, new_parts: Path | None = None) -> dict:
    """Wall seconds per sample scoring ``refs`` end to end, sequential vs prefetched, alternating
    which goes first; each with the 1-minute load average at its end; the process's CPU seconds per
    sample in every run (all threads: steadier than wall time on a machine whose speed varies), and
    in the prefetched runs those of the calling thread and of the rest of the process (the
    background thread and FPFH's helpers; on free cores their maximum bounds the throughput); and
    whether every round gave the same image scores and maps (bit for bit) as the first sequential
    one. ``new_parts``: a folder under which every run gets an empty preprocessing cache of its own,
    so that each sample costs what a part never seen before costs (background removal included,
    its cache entry written)."""
    from core.prefetch import PREFETCH_DEPTH

    modes = {"sequential": 0, "prefetch": PREFETCH_DEPTH}
    out: dict = {f"{name}_s_per_sample": [] for name in modes}
    out["load_average_1min"] = []
    reference, identical, metrics = None, True, None
    for r in range(rounds):
        for name in (list(modes) if r % 2 == 0 else list(modes)[::-1]):
            if new_parts is not None:
                use_cache_folder(model, new_parts / f"round{r}-{name}")
            t, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            results = [res for _i, _ref, res in model.score_each(refs, prefetch=modes[name])]
            out[f"{name}_s_per_sample"].append(round((time.perf_counter() - t) / len(refs), 4))
            main, cpu = time.thread_time() - main, time.process_time() - cpu
            out.setdefault("process_cpu_s_per_sample", {}).setdefault(name, []).append(round(cpu / len(refs), 4))
            if name == "prefetch":
                out.setdefault("prefetch_cpu_s_per_sample", []).append(
                    {"calling_thread": round(main / len(refs), 4), "background": round((cpu - main) / len(refs), 4)})
            out["load_average_1min"].append(round(os.getloadavg()[0], 2))
            got = [(res.image_score, res.anomaly_map) for res in results]
            if name == "prefetch" and metrics is None:
                met = metrics_for(results, model.modalities)
                metrics = {k: met[k] for k in ("image_auroc", "pixel_auroc", "aupro_30")}
            if reference is None:
                reference = got
            else:
                identical &= len(got) == len(reference) and all(
                    a == c and np.array_equal(b, d) for (a, b), (c, d) in zip(got, reference))
    out["prefetch_depth"] = PREFETCH_DEPTH
    out["identical_results"] = bool(identical)
    out["prefetch_metrics"] = metrics
    out["speedup_median"] = round(float(np.median(out["sequential_s_per_sample"]))
                                  / float(np.median(out["prefetch_s_per_sample"])), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--test", type=int, help="test samples to score (default: 20 generated, all of --data)")
    ap.add_argument("--size", type=int, default=224, help="demo image size in pixels")
    ap.add_argument("--category", default="puck")
    ap.add_argument("--adapt", action="store_true")
    ap.add_argument("--data", type=Path, help="existing dataset (else demo data is generated)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the end-to-end batch timing (0: skip it)")
    ap.add_argument("--model", type=Path, help="a saved model of --data/--category instead of fitting")
    ap.add_argument("--new-parts", action="store_true",
                    help="end-to-end runs each start with an empty preprocessing cache (a line's never-seen parts)")
    ap.add_argument("--threads", type=int, help="torch threads while scoring (default: as the process has them)")
    ap.add_argument("--tire-fullres", action="store_true",
                    help="RGB-only 600×800 case from the shared tire upsampled 2× (see the module docstring)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    root = args.data
    n_test = args.test if args.test is not None else (None if root is not None or args.tire_fullres else 20)
    t0 = time.perf_counter()
    if args.tire_fullres:
        root, args.category = make_fullres_tire(Path(tmp.name) / "tire600x800", args.train), "tire"
    elif root is None:
        root = Path(tmp.name) / "demo"
        generate_demo_dataset(
            root, seed=123, categories=[args.category], size=args.size, n_train=args.train,
            n_validation=10, n_test_good=max(n_test // 2, 1), n_test_per_defect=max(n_test // 10, 1),
        )
    gen_s = time.perf_counter() - t0
    cache = None if args.data is not None else str(Path(tmp.name) / "cache")
    config = FitConfig(cache_dir=cache, adapt=args.adapt)  # --adapt: LSFA on

    t0 = time.perf_counter()
    model = load_model(args.model) if args.model else fit(root, args.category, config)
    fit_s = None if args.model else round(time.perf_counter() - t0, 2)
    exact = exact_twin(model)

    if args.threads:
        __import__("torch").set_num_threads(args.threads)
    refs = open_dataset(root).samples(args.category, "test")[:n_test]
    t0 = time.perf_counter()
    samples = [r.load() for r in refs]
    read_s = (time.perf_counter() - t0) / len(refs)
    model.score(samples[0]), exact.score(samples[0])  # warm-up
    runs = {"approximate": (model, [], []), "exact": (exact, [], [])}
    for i, s in enumerate(samples):  # interleaved, alternating order: both see the same load
        order = ("approximate", "exact") if i % 2 == 0 else ("exact", "approximate")
        for name in order:
            m, results, totals = runs[name]
            t = time.perf_counter()
            r = m.score(s)
            totals.append(time.perf_counter() - t)
            r.rgb = r.xyz = None
            results.append(r)
    out_runs = {name: summarise(res, tot, model.modalities) for name, (_, res, tot) in runs.items()}
    a, e = out_runs["approximate"], out_runs["exact"]
    del samples, runs
    fresh = Path(tmp.name) / "new-parts" if args.new_parts else None
    batch = batch_throughput(model, refs, args.rounds, fresh) if args.rounds else None

    def diff(key):
        return None if a[key] is None or e[key] is None else round(a[key] - e[key], 5)

    singles = getattr(model, "members", [model])  # an ensemble (the default on data without point clouds)
    out = {
        "data": str(args.data or ("tire upsampled to 600x800 (W×H)" if args.tire_fullres else "generated demo")),
        "image_shape_hw": list(refs[0].load().shape),
        "category": args.category,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch_threads": __import__("torch").get_num_threads(),
        "demo_generation_s": round(gen_s, 2),
        "models": [f"{m.config.image_size} px" for m in singles],
        "n_train": singles[0].info["n_train"],
        "n_test": len(refs),
        "fit_s": fit_s,
        "search_check_s": [m.info.get("search_check_seconds") for m in singles],
        "fit_target_s": 60,
        "bank_sizes": [m.info["bank_sizes"] for m in singles] if len(singles) > 1 else model.info["bank_sizes"],
        "search": [{k: b.search.describe() for k, b in m.banks.items()} for m in singles],
        "read_mean_s_per_sample": round(read_s, 4),
        "runs": out_runs,
        "batch": batch,
        "ratio_total_approx_over_exact": round(a["score_total_median_s"] / e["score_total_median_s"], 3),
        "ratio_knn_approx_over_exact": round(a["knn_median_ms"] / max(e["knn_median_ms"], 1e-9), 3),
        "delta_approx_minus_exact": {k: diff(k) for k in ("image_auroc", "pixel_auroc", "aupro_30")},
        "metric_tolerance": 0.005,
        "score_target_s": 0.1,
        "peak_rss_gb": round(peak_rss_gb(), 3),
        "rss_target_gb": 2.5,
        "adapted": [m.adapted for m in singles],
        "adaptation_notes": [n for m in singles for n in m.info.get("adaptation_notes", [])],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
