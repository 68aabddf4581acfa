"""Greedy k-centre coreset selection (PatchCore's "approximate greedy coreset").

The selection is the classic farthest-point traversal on randomly projected features: start from
a seeded random vector, then repeatedly add the vector whose distance to the nearest selected
one is largest. The result is exactly what the naive loop (one full distance pass per pick)
returns, up to float rounding on near-ties, but it is computed much faster:

1. The vectors are grouped into compact cells (farthest-point seeds on a small random
   subsample, each vector labelled with its nearest seed), and cell by cell into contiguous
   blocks of at most ``block_size`` rows with a centre and a radius each.
2. Each block keeps the largest of its (possibly stale) nearest-pick distances, an upper bound on
   its true maximum. The farthest vector overall is found by bringing only the block with the
   largest bound up to date (a small matrix product with the picks it has not seen yet); once
   the top block is current, its maximum is exact and no other block can exceed it.
3. A pending pick is skipped for a block when the triangle inequality shows it cannot be
   nearer to any of the block's vectors than their current distances.

Distances are squared Euclidean in float32 via ||x||^2 - 2 x.c + ||c||^2.
"""

from __future__ import annotations

import math

import numpy as np

from core.progress import Progress, ensure
from core.cpu import single_thread_blas

DEFAULT_BLOCK_SIZE = 512


def greedy_coreset(
    features: np.ndarray,
    ratio: float = 0.1,
    proj_dim: int | None = 128,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> np.ndarray:
    """Indices (int64, in selection order) of a greedy k-centre coreset of ``features``.

    ``features`` (N, D) is projected to ``proj_dim`` dims by a seeded Gaussian random matrix
    (skipped when D <= proj_dim or proj_dim is None/0). ``round(ratio * N)`` indices are returned
    (at least 1); ``ratio >= 1`` keeps every row (``arange(N)``). Deterministic for a given seed.
    Reports ``progress.update("Coreset selection", picked, total)`` about every 1 %.
    """
    x = as_feature_matrix(features)
    n = len(x)
    if not ratio > 0:
        raise ValueError(f"coreset ratio must be > 0, got {ratio}")
    n_pick = n if ratio >= 1 else min(n, max(1, int(round(ratio * n))))
    if n_pick >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    start = int(rng.integers(n))
    p = ensure(progress)
    # Single-threaded BLAS: the loop issues thousands of small products, where thread hand-off
    # costs more than it saves and a busy second core makes it erratic.
    with single_thread_blas():
        xp = _project(x, proj_dim, rng)
        return _farthest_point_traversal(xp, n_pick, start, max(16, int(block_size)), rng, p)


def as_feature_matrix(features: np.ndarray, what: str = "features") -> np.ndarray:
    """Validated C-contiguous float32 (N, D) matrix, N and D > 0, all values finite."""
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty (N, D) array, got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return x


def _project(x: np.ndarray, proj_dim: int | None, rng: np.random.Generator) -> np.ndarray:
    """Johnson-Lindenstrauss Gaussian projection to ``proj_dim`` dims (distances preserved in
    expectation); the input itself when it is already that narrow."""
    d = x.shape[1]
    if not proj_dim or d <= proj_dim:
        return x
    mat = rng.standard_normal((d, int(proj_dim)), dtype=np.float32)
    mat *= np.float32(1.0 / math.sqrt(proj_dim))
    return np.ascontiguousarray(x @ mat)


def _farthest_point_traversal(
    x: np.ndarray, n_pick: int, start: int, block_size: int, rng: np.random.Generator, p: Progress
) -> np.ndarray:
    n, d = x.shape
    stage = "Coreset selection"
    report_every = max(1, n_pick // 100)
    p.update(stage, 0, n_pick)
    sq = np.einsum("ij,ij->i", x, x)

    # Regroup the vectors cell by cell into contiguous blocks of at most block_size rows.
    cell = _compact_cells(x, sq, -(-n // block_size), rng)
    order = np.argsort(cell, kind="stable")
    counts = np.bincount(cell)
    edges = [0]
    for c in counts[counts > 0]:
        pieces = -(-int(c) // block_size)
        cuts = np.linspace(edges[-1], edges[-1] + c, pieces + 1).round().astype(np.int64)
        edges.extend(cuts[1:].tolist())
    lo = np.asarray(edges[:-1], np.int64)
    hi = np.asarray(edges[1:], np.int64)
    xs = np.ascontiguousarray(x[order])
    sqs = sq[order]
    sizes = (hi - lo).astype(np.float32)
    centre = (np.add.reduceat(xs, lo, axis=0) / sizes[:, None]).astype(np.float32)
    centre_sq = np.einsum("ij,ij->i", centre, centre)
    radius = np.array(
        [math.sqrt(float(((xs[a:e] - c) ** 2).sum(1).max())) for a, e, c in zip(lo, hi, centre)],
        np.float32,
    )
    # Slack for float error of the expanded squared distances (0.1 % of the data scale).
    slack = 1e-3 * math.sqrt(float(sq.max())) + 1e-12

    mins = np.full(n, np.inf, np.float32)  # squared distance to the nearest pick; -inf = picked
    top = np.full(len(lo), np.inf, np.float32)  # upper bound of mins per block
    arg = lo.copy()  # row of the block's largest mins (valid once the block is up to date)
    seen = np.zeros(len(lo), np.int64)  # picks already applied to each block
    picks = np.empty((n_pick, d), np.float32)
    picks_sq = np.empty(n_pick, np.float32)
    sel = np.empty(n_pick, np.int64)
    row_of = np.empty(n, np.int64)
    row_of[order] = np.arange(n)

    for t in range(n_pick):
        if t == 0:
            j = int(row_of[start])
            b = int(np.searchsorted(hi, j, side="right"))
        else:
            while True:  # bring the block with the largest bound up to date until it stays on top
                b = int(top.argmax())
                u = int(seen[b])
                if u == t:
                    j = int(arg[b])
                    break
                seen[b] = t
                a, e = lo[b], hi[b]
                cand = picks[u:t]
                cand_sq = picks_sq[u:t]
                # keep picks closer to the block centre than radius + the block's largest distance
                reach = radius[b] + math.sqrt(max(float(top[b]), 0.0)) + slack
                gap = cand @ centre[b]
                gap *= -2.0
                gap += cand_sq
                gap += centre_sq[b]
                near = gap < reach * reach
                if not near.all():
                    if not near.any():
                        continue
                    cand = cand[near]
                    cand_sq = cand_sq[near]
                prod = xs[a:e] @ cand.T
                prod *= -2.0
                prod += cand_sq
                new = prod.min(axis=1)
                new += sqs[a:e]
                blk = mins[a:e]
                np.minimum(blk, new, out=blk)
                k = int(blk.argmax())
                top[b] = blk[k]
                arg[b] = a + k
        sel[t] = order[j]
        picks[t] = xs[j]
        picks_sq[t] = sqs[j]
        mins[j] = -np.inf
        a, e = lo[b], hi[b]
        k = int(mins[a:e].argmax())
        top[b] = mins[a + k]
        arg[b] = a + k
        if (t + 1) % report_every == 0:
            p.update(stage, t + 1, n_pick)
    p.update(stage, n_pick, n_pick)
    return sel


def _compact_cells(x: np.ndarray, sq: np.ndarray, n_cells: int, rng: np.random.Generator) -> np.ndarray:
    """Cell label (int) per row: farthest-point seeds picked on a random subsample of 16 rows per
    cell, every row labelled with its nearest seed. Such cells have a small radius."""
    n = len(x)
    if n_cells <= 1:
        return np.zeros(n, np.int64)
    sub = x[rng.choice(n, min(n, 16 * n_cells), replace=False)]
    sub_sq = np.einsum("ij,ij->i", sub, sub)
    mind = np.full(len(sub), np.inf, np.float32)
    seeds = np.empty(n_cells, np.int64)
    i = 0
    for t in range(n_cells):
        seeds[t] = i
        np.minimum(mind, sub_sq - 2.0 * (sub @ sub[i]) + sub_sq[i], out=mind)
        i = int(mind.argmax())
    cent = sub[seeds]
    cent_sq = np.einsum("ij,ij->i", cent, cent)
    label = np.empty(n, np.int64)
    step = 16384
    for a in range(0, n, step):
        g = x[a : a + step] @ cent.T
        g *= -2.0
        g += cent_sq
        label[a : a + step] = g.argmin(axis=1)
    return label


__all__ = ["greedy_coreset", "DEFAULT_BLOCK_SIZE"]
