"""Scoring library: greedy coreset, memory bank, PatchCore image score, anomaly maps."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from core.progress import Cancelled, Progress
from core.scoring import (
    MemoryBank,
    greedy_coreset,
    max_image_score,
    reweighted_image_score,
    upsample_and_blur,
    upsample_and_blur_batch,
)


# ------------------------------------------------------------------ helpers
def brute_force_greedy(x: np.ndarray, n_pick: int, start: int) -> np.ndarray:
    """Textbook farthest-point traversal in float64 with direct distances."""
    x = x.astype(np.float64)
    mind = np.full(len(x), np.inf)
    sel = [start]
    for _ in range(n_pick - 1):
        mind = np.minimum(mind, ((x - x[sel[-1]]) ** 2).sum(1))
        sel.append(int(mind.argmax()))
    return np.array(sel)


def covering_radius(x: np.ndarray, centres: np.ndarray) -> float:
    """Largest distance from a point of x to its nearest centre."""
    x = x.astype(np.float64)
    c = x[centres]
    d2 = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None]
    return float(np.sqrt(np.maximum(d2.min(1), 0)).max())


def clustered(n: int, d: int, seed: int, n_clusters: int = 12, latent: int = 4) -> np.ndarray:
    """Points near a low-dimensional manifold: a few blobs in a `latent`-dim space, embedded in d."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (n_clusters, latent))
    z = centres[rng.integers(n_clusters, size=n)] + rng.normal(0, 1, (n, latent))
    emb = rng.normal(0, 1, (latent, d))
    return (np.tanh(z @ emb / 3) + rng.normal(0, 0.02, (n, d))).astype(np.float32)


# ------------------------------------------------------------------ coreset
@pytest.mark.parametrize("data", ["gaussian", "clustered"])
def test_coreset_equals_brute_force_greedy_without_projection(data):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 8)).astype(np.float32) if data == "gaussian" else clustered(3000, 8, 1)
    # small blocks so the lazy / pruned phase does most of the 300 picks
    idx = greedy_coreset(x, ratio=0.1, proj_dim=128, seed=3, block_size=64)
    assert idx.dtype == np.int64 and len(idx) == 300
    ref = brute_force_greedy(x, 300, int(idx[0]))
    np.testing.assert_array_equal(idx, ref)


def test_coreset_covering_radius_close_to_brute_force_with_projection():
    x = clustered(4000, 64, 2)
    idx = greedy_coreset(x, ratio=0.05, proj_dim=16, seed=0)
    assert len(idx) == 200 and len(np.unique(idx)) == 200
    r_ours = covering_radius(x, idx)
    r_greedy = covering_radius(x, brute_force_greedy(x, 200, 0))
    r_random = covering_radius(x, np.random.default_rng(0).choice(len(x), 200, replace=False))
    assert r_ours <= 2 * r_greedy
    assert r_ours < 0.8 * r_random  # well spread, unlike a random subset


def test_coreset_deterministic_per_seed_and_seed_matters():
    x = clustered(2000, 40, 3)
    a = greedy_coreset(x, 0.1, proj_dim=16, seed=5)
    b = greedy_coreset(x, 0.1, proj_dim=16, seed=5)
    c = greedy_coreset(x, 0.1, proj_dim=16, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_coreset_sizes_and_duplicates():
    x = clustered(1000, 16, 4)
    np.testing.assert_array_equal(greedy_coreset(x, 1.0), np.arange(1000))
    assert len(greedy_coreset(x, 0.001)) == 1
    assert len(greedy_coreset(x[:1], 0.1)) == 1
    # half of the rows identical (zero features of empty cells): still unique indices
    dup = x.copy()
    dup[::2] = 0
    idx = greedy_coreset(dup, 0.8, block_size=32)
    assert len(idx) == 800 and len(np.unique(idx)) == 800
    with pytest.raises(ValueError):
        greedy_coreset(x, 0.0)
    with pytest.raises(ValueError):
        greedy_coreset(np.zeros((0, 4), np.float32), 0.1)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        greedy_coreset(bad, 0.1)


def test_coreset_progress_and_cancellation():
    x = clustered(3000, 16, 5)
    events = []
    greedy_coreset(x, 0.2, progress=Progress(events.append), block_size=64)
    done = [e.done for e in events]
    assert events[-1].done == events[-1].total == 600
    assert done == sorted(done) and 50 <= len(events) <= 110

    def cancel_midway(event):
        if event.done >= 300:
            prog.cancel()

    prog = Progress(cancel_midway)
    with pytest.raises(Cancelled):
        greedy_coreset(x, 0.2, progress=prog, block_size=64)


# ------------------------------------------------------------------ memory bank
def test_memory_bank_nearest_matches_numpy():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((600, 152)).astype(np.float32)
    queries = rng.standard_normal((800, 152)).astype(np.float32)  # > faiss BLAS threshold
    bank = MemoryBank.build(feats, coreset_ratio=1.0)
    dist, idx = bank.nearest(queries)
    q64, f64 = queries.astype(np.float64), feats.astype(np.float64)
    d2 = (q64**2).sum(1)[:, None] - 2 * q64 @ f64.T + (f64**2).sum(1)[None]
    np.testing.assert_array_equal(idx, d2.argmin(1))
    np.testing.assert_allclose(dist, np.sqrt(d2.min(1)), rtol=1e-4)
    assert dist.dtype == np.float32 and idx.dtype == np.int64 and dist.shape == (800,)
    kd, ki = bank.knn(queries[:5], 4)
    np.testing.assert_array_equal(ki, np.argsort(d2[:5], axis=1)[:, :4])
    assert (np.diff(kd, axis=1) >= 0).all()
    # an exact bank vector is at distance 0 (clamped, never NaN)
    d0, i0 = bank.nearest(feats[[7]])
    assert i0[0] == 7 and d0[0] == 0.0


def test_memory_bank_build_state_and_small_banks():
    x = clustered(2000, 33, 6)
    bank = MemoryBank.build(x, coreset_ratio=0.1, seed=1)
    assert bank.vectors.shape == (200, 33) and bank.vectors.flags.c_contiguous
    # every bank vector is one of the training rows
    assert (bank.vectors[:, None, :] == x[None]).all(-1).any(1).all()
    # BLAS-path distances of exact matches are ~0 up to float32 rounding of the expansion
    dist, _ = MemoryBank(x).nearest(bank.vectors)
    assert dist.max() < 1e-2 * np.linalg.norm(x, axis=1).mean()
    again = MemoryBank.from_state({k: np.array(v) for k, v in bank.state().items()})
    q = clustered(50, 33, 7)
    np.testing.assert_array_equal(again.nearest(q)[1], bank.nearest(q)[1])
    tiny = MemoryBank(x[:2])
    kd, ki = tiny.knn(q, 5)
    assert kd.shape == ki.shape == (50, 2)
    with pytest.raises(ValueError):
        bank.nearest(np.zeros((3, 32), np.float32))
    with pytest.raises(ValueError):
        MemoryBank.from_state({})
    with pytest.raises(ValueError):
        MemoryBank.from_state({"vectors": np.zeros((4, 3), np.float64)})


# ------------------------------------------------------------------ PatchCore image score
def test_reweighted_score_matches_hand_computation():
    bank = MemoryBank(np.array([[0, 0], [1, 0], [0, 2], [10, 10]], np.float32))
    patches = np.array([[0.2, 0.1], [0.8, -1.0]], np.float32)
    dist, idx = bank.nearest(patches)
    # worst patch (0.8, -1): nearest bank vector (1, 0) at sqrt(1.04); that vector's two nearest
    # other bank vectors are (0, 0) and (0, 2), at sqrt(1.64) and sqrt(9.64) from the patch.
    s = math.sqrt(1.04)
    r = math.sqrt(2.0)
    w = 1 - math.exp(s / r) / (math.exp(math.sqrt(1.64) / r) + math.exp(math.sqrt(9.64) / r))
    assert reweighted_image_score(patches, dist, idx, bank) == pytest.approx(w * s, rel=1e-6)
    assert max_image_score(dist) == pytest.approx(s, rel=1e-6)


def test_reweighted_score_stable_and_degenerate_banks():
    # s* = 2000 in 4-d: exp(s*/sqrt(4)) = exp(1000) overflows float64, yet w is far from 1
    bank_vecs = np.array([[0, 0, 0, 0], [0, 40, 0, 0], [0, 0, 60, 0], [-5000, 0, 0, 0]], np.float32)
    patches = np.array([[1, 1, 0, 0], [2000, 0, 0, 0]], np.float32)
    bank = MemoryBank(bank_vecs)
    dist, idx = bank.nearest(patches)
    assert idx[1] == 0 and dist[1] == pytest.approx(2000.0)
    d1, d2 = math.hypot(2000, 40), math.hypot(2000, 60)
    w = 1 - 1 / (math.exp((d1 - 2000) / 2) + math.exp((d2 - 2000) / 2))  # exp(1000) divided out
    score = reweighted_image_score(patches, dist, idx, bank)
    assert math.isfinite(score) and score == pytest.approx(w * 2000, rel=1e-4)
    assert 0.6 < w < 0.7

    one = MemoryBank(bank_vecs[:1])
    patches = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    d1, i1 = one.nearest(patches)
    assert reweighted_image_score(patches, d1, i1, one) == pytest.approx(float(d1.max()))
    two = MemoryBank(np.array([[0, 0], [3, 0]], np.float32))
    p = np.array([[0, 1]], np.float32)
    d2, i2 = two.nearest(p)
    expected = (1 - math.exp(1 / math.sqrt(2)) / math.exp(math.sqrt(10) / math.sqrt(2))) * 1.0
    assert reweighted_image_score(p, d2, i2, two) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError):
        reweighted_image_score(patches[:0], d1[:0], i1[:0], one)


# ------------------------------------------------------------------ maps
def test_map_of_a_delta_peaks_at_its_cell_centre():
    patch = np.zeros((28, 28), np.float32)
    patch[10, 17] = 1.0
    out = upsample_and_blur(patch, size=224, sigma=4.0)
    assert out.shape == (224, 224) and out.dtype == np.float32
    r, c = np.unravel_index(out.argmax(), out.shape)
    assert abs(r - 83.5) <= 0.5 and abs(c - 139.5) <= 0.5  # cell (10, 17) spans 80-87 x 136-143
    assert out.sum() == pytest.approx(64.0, rel=1e-4)  # one cell's area, mass preserved
    assert out.max() < 1.0 and out.min() >= 0.0
    assert out[83, 139] == pytest.approx(out[84, 140], rel=1e-4)  # symmetric around the centre


def test_map_constant_stays_constant_and_matches_reference():
    const = upsample_and_blur(np.full((28, 28), 2.5, np.float32))
    np.testing.assert_allclose(const, 2.5, rtol=1e-6)
    rng = np.random.default_rng(0)
    m = rng.random((3, 28, 28)).astype(np.float32)
    up = torch.nn.functional.interpolate(
        torch.from_numpy(m)[:, None], size=224, mode="bilinear", align_corners=False
    )[:, 0].numpy()
    ref = gaussian_filter(up.astype(np.float64), (0, 4.0, 4.0), mode="nearest", truncate=4.0)
    batch = upsample_and_blur_batch(m, 224, 4.0)
    np.testing.assert_allclose(batch, ref, atol=1e-5)
    np.testing.assert_array_equal(upsample_and_blur(m[1]), batch[1])
    np.testing.assert_allclose(upsample_and_blur(m[0], 224, sigma=0), up[0], atol=1e-5)
    rect = upsample_and_blur(rng.random((56, 40)), size=(112, 80), sigma=2.0)
    assert rect.shape == (112, 80)
