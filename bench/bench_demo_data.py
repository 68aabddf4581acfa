"""Demo-data generator figures (prints JSON).

* timing of the default set (2 categories, default counts, 256 px): wall and CPU seconds,
  per-sample milliseconds, files and megabytes written;
* defect sanity check: per defect type, mean |Δz| (mm) and mean |Δrgb| (0-255) between the
  written sample and its defect-free render, inside and outside the GT mask;
* with ``--detector``: image AUROC of a plain PatchCore-style kNN (no coreset, max patch
  distance; EfficientNet-Lite0 RGB and FPFH xyz features on preprocessed 224 px inputs),
  per modality and defect type, to check the default ``defect_strength`` is findable but
  not trivial. Slow on a shared CPU (minutes).

Usage: python bench/bench_demo_data.py [--workers N] [--strength X] [--detector]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.sample import valid_points  # noqa: E402
from core import demo as S  # noqa: E402


def timing(out: Path, workers: int, strength: float) -> dict:
    def children_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    t0, c0, k0 = time.perf_counter(), time.process_time(), children_cpu()
    S.generate_demo_dataset(out, workers=workers, defect_strength=strength)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0 + children_cpu() - k0
    files = [p for p in out.rglob("*") if p.is_file()]
    n = sum(1 for p in files if p.suffix == ".tiff")
    return {
        "samples": n,
        "workers": workers,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_sample": round(1000 * cpu / n, 1),
        "files": len(files),
        "megabytes": round(sum(p.stat().st_size for p in files) / 1e6, 1),
    }


def defect_contrast(strength: float) -> dict:
    params = S.demo_parameters(defect_strength=strength)
    out = {}
    for kind in params["defect_types"]:
        acc = {k: [] for k in ("dz_in", "dz_out", "drgb_in", "drgb_out", "area", "lost_in")}
        for cat in params["categories"]:
            for i in range(params["n_test_per_defect"]):
                clean, dirty = S.render_sample_pair(params["seed"], cat, f"test/{kind}", i,
                                                    params["size"], strength)
                m = dirty.mask
                both = valid_points(clean.xyz) & valid_points(dirty.xyz)
                dz = np.abs(dirty.xyz[..., 2].astype(np.float64) - clean.xyz[..., 2]) * 1000
                drgb = np.abs(dirty.rgb.astype(np.float64) - clean.rgb).mean(-1)
                on = clean.render.on_object.reshape(m.shape)
                acc["dz_in"].append(dz[m & both].mean() if (m & both).any() else 0.0)
                acc["dz_out"].append(dz[~m & both].mean())
                acc["drgb_in"].append(drgb[m].mean())
                acc["drgb_out"].append(drgb[~m].mean())
                acc["area"].append(m.sum() / on.sum())
                lost = valid_points(clean.xyz) & ~valid_points(dirty.xyz)
                acc["lost_in"].append(lost[m].mean())
        out[kind] = {
            "modality": S.DEFECT_TYPES[kind],
            "mean_abs_dz_mm_in_mask": round(float(np.mean(acc["dz_in"])), 3),
            "mean_abs_dz_mm_outside": round(float(np.mean(acc["dz_out"])), 3),
            "mean_abs_drgb_in_mask": round(float(np.mean(acc["drgb_in"])), 2),
            "mean_abs_drgb_outside": round(float(np.mean(acc["drgb_out"])), 2),
            "points_lost_in_mask": round(float(np.mean(acc["lost_in"])), 3),
            "mask_percent_of_object": round(100 * float(np.mean(acc["area"])), 2),
        }
    return out


def detector(strength: float, seed: int = 11, workers: int = 0) -> dict:
    """Image AUROC of a plain kNN detector on a fresh set (more test samples than default)."""
    import torch
    from sklearn.metrics import roc_auc_score

    from core import tv_shim

    tv_shim.install()
    from core.data.dataset import open_dataset
    from core.data.preprocess import preprocess
    from core.data.resize import resize_sample
    from core.features import pooling
    from core.features.registry import create_extractor

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = S.generate_demo_dataset(
            Path(tmp) / "d", seed=seed, n_train=30, n_validation=0, n_test_good=12,
            n_test_per_defect=8, defect_strength=strength, workers=workers,
        )
        ds = open_dataset(root)
        extractors = {"rgb": create_extractor("efficientnet_lite0"), "xyz": create_extractor("fpfh")}
        for cat in ds.categories:
            train = [resize_sample(preprocess(r.load()), 224) for r in ds.samples(cat, "train")]
            test = [resize_sample(preprocess(r.load()), 224) for r in ds.samples(cat, "test")]
            labels = np.array([s.label for s in test])
            y = (labels != "good").astype(int)
            scores = {}
            for mod, ex in extractors.items():
                with torch.no_grad():
                    f_tr = torch.cat([ex.extract([getattr(s, mod) for s in train[i:i + 8]]) for i in range(0, len(train), 8)])
                    f_te = torch.cat([ex.extract([getattr(s, mod) for s in test[i:i + 8]]) for i in range(0, len(test), 8)])
                fg_tr = torch.from_numpy(np.stack([pooling.foreground_cells(s.valid, 28) for s in train]))
                fg_te = np.stack([pooling.foreground_cells(s.valid, 28) for s in test])
                bank = f_tr.permute(0, 2, 3, 1)[fg_tr]
                q = f_te.permute(0, 2, 3, 1)
                d = torch.cdist(q.reshape(-1, q.shape[-1]), bank).min(1).values.reshape(q.shape[:3]).numpy()
                scores[mod] = np.where(fg_te, d, 0).reshape(len(test), -1).max(1)
            good = y == 0
            scores["rgb+xyz"] = sum((s - s[good].mean()) / (s[good].std() + 1e-9) for s in scores.values())
            res = {}
            for name, sc in scores.items():
                res[name] = {"all": round(float(roc_auc_score(y, sc)), 3)}
                for kind in S.DEFECT_TYPES:
                    m = good | (labels == kind)
                    res[name][kind] = round(float(roc_auc_score(y[m], sc[m])), 3)
            results[cat] = res
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=0, help="0 = automatic")
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--detector", action="store_true", help="also run the kNN difficulty check")
    args = ap.parse_args()
    report = {"defect_strength": args.strength}
    with tempfile.TemporaryDirectory() as tmp:
        report["default_set"] = timing(Path(tmp) / "demo", args.workers, args.strength)
        if args.workers != 1:
            report["default_set_1_worker"] = timing(Path(tmp) / "demo1", 1, args.strength)
    report["defects"] = defect_contrast(args.strength)
    if args.detector:
        report["knn_image_auroc"] = detector(args.strength, workers=args.workers)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
