"""Memory bank of nominal patch features with exact (faiss IndexFlatL2) or, where the fit-time
check allowed it, approximate IVF-Flat nearest-neighbour search (core.scoring.ann)."""

from __future__ import annotations

import numpy as np

from core.progress import Progress, ensure
from core.scoring._faiss import faiss_module as _faiss, faiss_threads
from core.scoring.ann import SearchChoice, ivf_index
from core.scoring.coreset import as_feature_matrix, greedy_coreset


class MemoryBank:
    """Coreset of nominal feature vectors (M, D) float32, an exact L2 index over them and, when
    ``search`` says so, an IVF-Flat index used by :meth:`knn` (``exact=True`` bypasses it).

    Distances returned are raw Euclidean distances in feature units (not squared). For query sets
    of more than a few vectors faiss computes them as sqrt(|q|^2 - 2 q.b + |b|^2) in float32, so a
    query equal to a bank vector gets ~1e-3 x its norm instead of exactly 0.
    """

    def __init__(self, vectors: np.ndarray):
        v = as_feature_matrix(vectors, "memory bank vectors")
        self.vectors = v
        self.index = _faiss().IndexFlatL2(v.shape[1])
        self.index.add(v)
        self.search = SearchChoice()
        self.centroids: np.ndarray | None = None
        self._ivf = None
        self._spread: np.ndarray | None = None
        self.rows: np.ndarray | None = None  # (M,) rows of the features :meth:`build` kept (not stored)
        self.owners: np.ndarray | None = None  # (M,) training sample of each row, -1 unknown (set by the fit; not stored)

    def use_search(self, choice: SearchChoice, centroids: np.ndarray | None = None) -> None:
        """Search with ``choice``: exact, or IVF-Flat over the cells ``centroids`` (nlist, D) float32."""
        if choice.kind == "exact":
            self.search, self.centroids, self._ivf = choice, None, None
            return
        c = np.asarray(centroids) if centroids is not None else None
        if c is None or c.dtype != np.float32 or c.ndim != 2 or c.shape != (choice.nlist, self.dim):
            got = None if c is None else (c.shape, c.dtype)
            raise ValueError(f"IVF search needs ({choice.nlist}, {self.dim}) float32 centroids, got {got}")
        if not np.isfinite(c).all():
            raise ValueError("IVF centroids hold non-finite values")
        self._ivf = ivf_index(self.vectors, c, choice.nprobe)
        self.search, self.centroids = choice, np.ascontiguousarray(c)

    def choose_search(self, query_sets: list[np.ndarray], seed: int = 0, **kwargs) -> SearchChoice:
        """Pick exact or IVF-Flat search by checking it on held-out good patches (one (Q_i, D)
        array per sample; core.scoring.ann.choose_search) and use it."""
        from core.scoring.ann import choose_search

        choice, centroids = choose_search(self, query_sets, seed, **kwargs)
        self.use_search(choice, centroids)
        return choice

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
            bank = cls(x)
            bank.rows = np.arange(len(x), dtype=np.int64)
            return bank
        idx = greedy_coreset(x, coreset_ratio, proj_dim, seed, ensure(progress))
        bank = cls(x[idx])
        bank.rows = np.asarray(idx, np.int64)
        return bank

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

    def knn(self, queries: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Distances (Q, k') float32 (Euclidean, ascending) and bank indices (Q, k') int64 of the
        k nearest bank vectors, k' = min(k, bank size); approximate when the bank's search is
        IVF-Flat unless ``exact`` (queries whose probed cells hold fewer than k' vectors are
        searched exactly)."""
        q = self._queries(queries)
        k = max(1, min(int(k), self.size))
        if len(q) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        with faiss_threads():
            if self._ivf is not None and not exact:
                d2, idx = self._ivf.search(q, k)
                short = (idx < 0).any(axis=1)
                if short.any():
                    d2[short], idx[short] = self.index.search(np.ascontiguousarray(q[short]), k)
            else:
                d2, idx = self.index.search(q, k)
        np.maximum(d2, 0.0, out=d2)
        return np.sqrt(d2, out=d2), idx.astype(np.int64, copy=False)

    def spread(self) -> np.ndarray:
        """(M,) float32: each bank vector's mean Euclidean distance to its SPREAD_K nearest other
        bank vectors (exact search), floored at the bank's median of that value — how far the
        training patches around it vary, never below the bank's typical spacing (so duplicates do
        not divide by 0). Computed once (about 0.6 s for 10 000 × 152 on 2 cores), then kept and
        stored with the bank."""
        if self._spread is None:
            self._spread = bank_spread(self)
        return self._spread

    def relative(self, dist: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Raw kNN distances ``dist`` to bank vectors ``idx`` divided by those vectors' spread:
        dimensionless, 1 = as far as the training patches there lie from each other."""
        return (np.asarray(dist, np.float32) / self.spread()[np.asarray(idx)]).astype(np.float32, copy=False)

    def nearest(self, queries: np.ndarray, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Euclidean distance (Q,) float32 and index (Q,) int64 of each query's nearest bank vector."""
        dist, idx = self.knn(queries, 1, exact)
        return dist[:, 0], idx[:, 0]

    def nearest_excluding(self, queries: np.ndarray, own: int) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`nearest`, with the bank's own search (IVF-Flat where chosen, else exact), but
        never returning a bank vector whose :attr:`owners` entry is ``own``: how a training sample
        scores against the bank as if it had been held out (its own patches left out; the bank's
        spread stays that of the whole bank). Distances (Q,) float32 (Euclidean) and bank indices
        (Q,) int64. ValueError without owners or when every row is ``own``'s."""
        if self.owners is None or len(self.owners) != self.size:
            raise ValueError("the memory bank does not know which training sample each row came from")
        q = self._queries(queries)
        faiss = _faiss()
        mine = self.owners == own
        if mine.all():
            raise ValueError(f"every memory bank row belongs to training sample {own}")
        dist = np.full(len(q), -1.0, np.float32)
        idx = np.full(len(q), -1, np.int64)
        with faiss_threads():
            if self._ivf is not None and len(q):
                others = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.flatnonzero(mine)))
                d2, found = self._ivf.search(q, 1, params=faiss.SearchParametersIVF(sel=others, nprobe=self._ivf.nprobe))
                dist, idx = d2[:, 0], found[:, 0].astype(np.int64)
            short = idx < 0  # every query without IVF; with it, those whose probed cells held only own rows
            if short.any():  # exact among the other rows: one k=1 search (faster than a long k-search)
                rest = np.flatnonzero(~mine)
                index = faiss.IndexFlatL2(self.dim)
                index.add(np.ascontiguousarray(self.vectors[rest]))
                d2, sub = index.search(np.ascontiguousarray(q[short]), 1)
                dist[short], idx[short] = d2[:, 0], rest[sub[:, 0]]
        return np.sqrt(np.maximum(dist, 0.0)).astype(np.float32), idx

    # ---------------------------------------------------------------- persistence
    def state(self) -> dict[str, np.ndarray]:
        """Arrays only: {"vectors": (M, D) float32} plus, for IVF search, "ivf_centroids" (nlist, D)
        float32 (the search choice itself is :attr:`search`, stored in the manifest) and, once
        computed, "spread" (M,) float32 (:meth:`spread`)."""
        out = {"vectors": self.vectors}
        if self.centroids is not None:
            out["ivf_centroids"] = self.centroids
        if self._spread is not None:
            out["spread"] = self._spread
        return out

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], search: dict | None = None) -> MemoryBank:
        """Inverse of :meth:`state` with the manifest's ``search`` entry (None: exact search, as in
        model files written before approximate search); ValueError if anything is malformed."""
        if "vectors" not in state:
            raise ValueError("memory bank state has no 'vectors' array")
        v = np.asarray(state["vectors"])
        if v.dtype != np.float32:
            raise ValueError(f"memory bank vectors must be float32, got {v.dtype}")
        bank = cls(v)
        choice = (SearchChoice.from_dict(search) if search is not None
                  else SearchChoice(reason="the model file predates approximate search"))
        if choice.kind == "exact" and "ivf_centroids" in state:
            raise ValueError("memory bank has IVF centroids but its search is exact")
        bank.use_search(choice, state.get("ivf_centroids"))
        if "spread" in state:
            spread = np.asarray(state["spread"])
            if (spread.dtype != np.float32 or spread.shape != (bank.size,)
                    or not (np.isfinite(spread) & (spread > 0)).all()):
                raise ValueError(f"memory bank spread must be ({bank.size},) finite positive float32, "
                                 f"got {spread.shape} {spread.dtype}")
            bank._spread = spread
        return bank

    def __repr__(self) -> str:
        return f"MemoryBank(size={self.size}, dim={self.dim}, search={self.search.kind})"


SPREAD_K = 3  # neighbours averaged by MemoryBank.spread (PatchCore's re-weighting also uses 3)


def bank_spread(bank: MemoryBank, k: int = SPREAD_K) -> np.ndarray:
    """See :meth:`MemoryBank.spread`; a bank of one vector has spread 1 (no neighbours)."""
    if bank.size < 2:
        return np.ones(bank.size, np.float32)
    dist, _ = bank.knn(bank.vectors, k + 1, exact=True)
    spread = dist[:, 1:].mean(axis=1)  # column 0 is the vector itself (or a duplicate of it)
    floor = float(np.median(spread))
    if not floor > 0:  # more than half the bank duplicated: fall back to the largest spread
        floor = float(spread.max()) or 1.0
    return np.maximum(spread, floor).astype(np.float32)


__all__ = ["MemoryBank", "SPREAD_K", "bank_spread"]
