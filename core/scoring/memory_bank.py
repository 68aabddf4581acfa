"""Memory bank of nominal patch features with exact nearest-neighbour search (faiss IndexFlatL2)."""

from __future__ import annotations

import numpy as np

from core.progress import Progress, ensure
from core.scoring.coreset import as_feature_matrix, greedy_coreset

# faiss picks its own SIMD loop instead of BLAS when (queries x dims) < this threshold (128 000 by
# default). For one image's 784 queries against a 10k bank that loop took 24 ms (33-d) and 48 ms
# (152-d) of CPU, the BLAS path 6 ms and 21 ms (single-threaded; bench/bench_coreset.py "faiss").
# Tiny query sets (< ~15 at 152-d) keep the SIMD loop, which is exact for near-zero distances.
_FAISS_BLAS_THRESHOLD = 2048
# faiss' OpenMP threads (its bundled OpenBLAS follows them). A search of one image's patches is a
# few ms of work: with 2 threads on a busy 2-core machine it took 3-5x longer (thread hand-off).
SEARCH_THREADS = 1


def _faiss():
    import faiss

    if faiss.cvar.distance_compute_blas_threshold != _FAISS_BLAS_THRESHOLD:
        faiss.cvar.distance_compute_blas_threshold = _FAISS_BLAS_THRESHOLD
    faiss.omp_set_num_threads(SEARCH_THREADS)  # per calling thread in libgomp; faiss' own copy
    return faiss


class MemoryBank:
    """Coreset of nominal feature vectors (M, D) float32 and an exact L2 index over them.

    Distances returned are raw Euclidean distances in feature units (not squared). For query sets
    of more than a few vectors faiss computes them as sqrt(|q|^2 - 2 q.b + |b|^2) in float32, so a
    query equal to a bank vector gets ~1e-3 x its norm instead of exactly 0.
    """

    def __init__(self, vectors: np.ndarray):
        v = as_feature_matrix(vectors, "memory bank vectors")
        self.vectors = v
        self.index = _faiss().IndexFlatL2(v.shape[1])
        self.index.add(v)

    @classmethod
    def build(
        cls,
        features: np.ndarray,
        coreset_ratio: float = 0.1,
        seed: int = 0,
        progress: Progress | None = None,
        proj_dim: int | None = 128,
    ) -> MemoryBank:
        """Bank of a greedy k-centre coreset of ``features`` (N, D); ratio >= 1 keeps all rows."""
        x = as_feature_matrix(features)
        if coreset_ratio >= 1:
            return cls(x)
        idx = greedy_coreset(x, coreset_ratio, proj_dim, seed, ensure(progress))
        return cls(x[idx])

    # ---------------------------------------------------------------- queries
    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return self.size

    def _queries(self, queries: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be (Q, {self.dim}), got shape {q.shape}")
        return q

    def knn(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances (Q, k') float32 (Euclidean, ascending) and bank indices (Q, k') int64 of the
        k nearest bank vectors, k' = min(k, bank size)."""
        q = self._queries(queries)
        k = max(1, min(int(k), self.size))
        if len(q) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        _faiss()
        d2, idx = self.index.search(q, k)
        np.maximum(d2, 0.0, out=d2)
        return np.sqrt(d2, out=d2), idx.astype(np.int64, copy=False)

    def nearest(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Euclidean distance (Q,) float32 and index (Q,) int64 of each query's nearest bank vector."""
        dist, idx = self.knn(queries, 1)
        return dist[:, 0], idx[:, 0]

    # ---------------------------------------------------------------- persistence
    def state(self) -> dict[str, np.ndarray]:
        """Arrays only: {"vectors": (M, D) float32}."""
        return {"vectors": self.vectors}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> MemoryBank:
        """Inverse of :meth:`state`; ValueError if the arrays are missing or malformed."""
        if "vectors" not in state:
            raise ValueError("memory bank state has no 'vectors' array")
        v = np.asarray(state["vectors"])
        if v.dtype != np.float32:
            raise ValueError(f"memory bank vectors must be float32, got {v.dtype}")
        return cls(v)

    def __repr__(self) -> str:
        return f"MemoryBank(size={self.size}, dim={self.dim})"


__all__ = ["MemoryBank"]
