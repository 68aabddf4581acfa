"""Timings of the scoring library; prints one JSON object.

- coreset: greedy k-centre (10 %, projection to 128 dims) for N in {20k, 100k} x D in {33, 152}
  on synthetic patch-like features (blobs on a 10-dim manifold, non-negative like ReLU features),
  wall and CPU seconds; the naive one-pass-per-pick loop as reference where it is quick.
- faiss: one image's 784 queries against a 10k bank: faiss' SIMD loop (its default below
  128 000 query x dims) vs its BLAS path, with 1 and 2 threads, and MemoryBank.nearest (BLAS path,
  1 thread).
- maps: 28x28 -> 224x224 upsample + blur per map.

Usage: python bench/bench_coreset.py [--features real.npy] [--naive-all] [--quick]
(--features: an (N, D) float32 .npy of real patch features to time as well.)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cpu import single_thread_blas  # noqa: E402
from core.scoring.coreset import _project, greedy_coreset  # noqa: E402
from core.scoring.maps import upsample_and_blur  # noqa: E402


def patch_like(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = 10
    centres = rng.normal(0, 3, (60, latent))
    z = centres[rng.integers(len(centres), size=n)] + rng.normal(0, 1, (n, latent))
    emb = rng.normal(0, 1, (latent, d)) / math.sqrt(latent)
    x = np.maximum(np.tanh(z @ emb) + 0.3, 0) + rng.gamma(1.0, 0.03, (n, d))
    return x.astype(np.float32)


def naive_greedy(x: np.ndarray, n_pick: int, proj_dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    i = int(rng.integers(len(x)))
    xp = _project(np.ascontiguousarray(x, np.float32), proj_dim, rng)
    sq = np.einsum("ij,ij->i", xp, xp)
    mind = np.full(len(xp), np.inf, np.float32)
    buf = np.empty(len(xp), np.float32)
    sel = np.empty(n_pick, np.int64)
    with single_thread_blas():
        for t in range(n_pick):
            sel[t] = i
            np.dot(xp, xp[i], out=buf)
            buf *= -2
            buf += sq
            buf += sq[i]
            np.minimum(mind, buf, out=mind)
            mind[i] = -np.inf
            i = int(mind.argmax())
    return sel


def timed(fn, *args, **kw):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, round(time.perf_counter() - w, 3), round(time.process_time() - c, 3)


def bench_coreset(name: str, x: np.ndarray, naive: bool) -> dict:
    idx, wall, cpu = timed(greedy_coreset, x, 0.1, 128, 0)
    row = {"data": name, "n": len(x), "d": x.shape[1], "picks": len(idx), "wall_s": wall, "cpu_s": cpu}
    if naive:
        ref, nwall, ncpu = timed(naive_greedy, x, len(idx), 128, 0)
        row.update(naive_wall_s=nwall, naive_cpu_s=ncpu, same_picks=float(np.isin(idx, ref).mean()))
    return row


def bench_faiss(d: int, bank_size: int = 10_000, queries: int = 784) -> dict:
    """Median wall / CPU ms of one image's search: faiss defaults vs MemoryBank's settings."""
    import faiss

    from core.scoring.memory_bank import MemoryBank

    x = patch_like(bank_size + queries, d, seed=1)
    bank, q = MemoryBank(x[:bank_size]), x[bank_size:]
    row = {"d": d, "bank": bank_size, "queries": queries}

    def median_ms(fn):
        fn()
        w, c = [], []
        for _ in range(9):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            w.append(time.perf_counter() - t0)
            c.append(time.process_time() - c0)
        return round(1e3 * float(np.median(w)), 2), round(1e3 * float(np.median(c)), 2)

    for threads in (1, 2):
        for label, thr in (("simd", 128_000), ("blas", 2048)):
            faiss.omp_set_num_threads(threads)
            faiss.cvar.distance_compute_blas_threshold = thr
            wall, cpu = median_ms(lambda: bank.index.search(q, 1))
            row[f"{label}_{threads}thr_wall_ms"], row[f"{label}_{threads}thr_cpu_ms"] = wall, cpu
    wall, cpu = median_ms(lambda: bank.nearest(q))
    row["memory_bank_nearest_wall_ms"], row["memory_bank_nearest_cpu_ms"] = wall, cpu
    return row


def bench_maps() -> dict:
    m = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    upsample_and_blur(m)
    n = 300
    t = time.perf_counter()
    for _ in range(n):
        upsample_and_blur(m)
    return {"map_28_to_224_sigma4_ms": round(1e3 * (time.perf_counter() - t) / n, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, help="(N, D) float32 .npy of real patch features")
    ap.add_argument("--naive-all", action="store_true", help="run the naive reference everywhere")
    ap.add_argument("--quick", action="store_true", help="only N = 20k")
    args = ap.parse_args()
    sizes = (20_000,) if args.quick else (20_000, 100_000)
    out = {"coreset": [], "faiss": [], "maps": bench_maps()}
    for n in sizes:
        for d in (33, 152):
            x = patch_like(n, d)
            out["coreset"].append(bench_coreset("synthetic", x, naive=args.naive_all or n <= 20_000))
    if args.features is not None:
        real = np.load(args.features, allow_pickle=False)
        out["coreset"].append(bench_coreset(args.features.name, real, naive=args.naive_all))
    for d in (33, 152):
        out["faiss"].append(bench_faiss(d))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
