"""PatchCore image scores from per-patch nearest-neighbour distances (raw Euclidean units)."""

from __future__ import annotations

import math

import numpy as np

from core.scoring.memory_bank import MemoryBank


def max_image_score(patch_dists: np.ndarray) -> float:
    """Largest patch distance s* (raw kNN distance)."""
    d = np.asarray(patch_dists, dtype=np.float64).reshape(-1)
    if d.size == 0:
        raise ValueError("no patch distances to score (empty foreground)")
    return float(d.max())


def reweighted_image_score(
    patch_feats: np.ndarray,
    patch_dists: np.ndarray,
    patch_idx: np.ndarray,
    bank: MemoryBank,
    k: int = 3,
    relative: bool = False,
) -> float:
    """PatchCore's re-weighted image score w * s* (in the units of ``patch_dists``).

    s* is the largest patch distance, m_test that patch's feature and m* its nearest bank vector.
    With n_j the k nearest bank vectors of m*, itself excluded (k - 1 of them),
    w = 1 - exp(s*/sqrt(D)) / sum_j exp(||m_test - n_j|| / sqrt(D)), evaluated as
    1 - exp(s*/sqrt(D) - logsumexp_j(...)). Every ||m_test - n_j|| >= s*, so w lies in
    [1 - 1/(k-1), 1); with k = 3 (PatchCore, BTF, M3DM, LSFA) w is in [0.5, 1).
    A bank of a single vector has no neighbours: the score is s* unweighted.
    ``relative``: ``patch_dists`` are relative distances (MemoryBank.relative); w is computed
    from the raw distances and applied to the relative s*.
    """
    feats = np.asarray(patch_feats, dtype=np.float32)
    dists = np.asarray(patch_dists, dtype=np.float64).reshape(-1)
    idx = np.asarray(patch_idx).reshape(-1)
    if dists.size == 0:
        raise ValueError("no patch distances to score (empty foreground)")
    if feats.ndim != 2 or len(feats) != dists.size or idx.size != dists.size:
        raise ValueError(
            f"patch_feats {feats.shape}, patch_dists {dists.shape} and patch_idx {idx.shape} disagree"
        )
    a = int(dists.argmax())
    s_star = float(dists[a])
    m_star = int(idx[a])
    unit = float(bank.spread()[m_star]) if relative else 1.0  # raw distance per unit of s*
    _, nn = bank.knn(bank.vectors[m_star : m_star + 1], k, exact=True)
    nn = nn[0]
    own = np.flatnonzero(nn == m_star)
    # Drop m* itself; if a duplicate of m* came first, drop the last (farthest) entry instead.
    neighbours = np.delete(nn, own[0] if own.size else len(nn) - 1)
    if neighbours.size == 0:
        return s_star
    scale = math.sqrt(feats.shape[1])
    diffs = bank.vectors[neighbours].astype(np.float64) - feats[a].astype(np.float64)
    logits = np.sqrt((diffs * diffs).sum(axis=1)) / scale
    top = logits.max()
    log_den = top + math.log(np.exp(logits - top).sum())
    w = 1.0 - math.exp(s_star * unit / scale - log_den)
    return float(w * s_star)


__all__ = ["max_image_score", "reweighted_image_score"]
