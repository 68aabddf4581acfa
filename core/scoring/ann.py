"""Approximate nearest-neighbour search for large memory banks, chosen at fit time.

A bank of at least ``ANN_MIN_BANK`` vectors gets a faiss IVF-Flat index: the bank is split into
``nlist`` k-means cells (seeded, so a refit gives the same cells) and a query scans only the
``nprobe`` cells whose centroids are nearest. The smallest ``nprobe`` of ``NPROBE_CHOICES`` is
kept whose results on held-out good patches match exact search: the 1-NN distance equal to the
exact one for at least ``MIN_RECALL`` of the patches, and every sample's image score (its largest
patch distance) within ``MAX_SCORE_REL_ERR`` of the exact one. Otherwise exact search stays.
IVF-Flat never underestimates a distance (it returns a real bank vector, the exact 1-NN or a
farther one), so a miss can only raise a patch's score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

SEARCH_KINDS = ("exact", "ivf_flat")
# Below this bank size exact search is kept: one image's exact search is then a few ms unloaded and
# IVF gained nothing in measurements at 2048 (see MAX_DISTANCE_SHARE).
ANN_MIN_BANK = 4096
NPROBE_CHOICES = (1, 2, 4, 8, 16, 32)
MIN_RECALL = 0.995  # share of check patches whose 1-NN distance must equal exact search's
MAX_SCORE_REL_ERR = 1e-3  # largest relative difference of a check sample's image score
MAX_CHECK_QUERIES = 20000  # check patches used at most (whole samples, in order)
# IVF is kept only where a query computes at most this share of the exact search's distances
# (nlist centroid distances + nprobe cells of M/nlist vectors): faiss' IVF scan costs several times
# more per distance than the exact search's BLAS product. Measured for 784 queries (one image),
# single-threaded on a loaded 2-core machine: 152-d, M=10 000, 400 cells: exact 259 ms, nprobe 4/8/16
# 53/85/133 ms; M=2048, 181 cells: exact 58 ms, nprobe 8 55 ms (no gain at 18 % of the distances).
MAX_DISTANCE_SHARE = 0.1
_SAME_DISTANCE_RTOL = 1e-4  # IVF and flat search round distances differently
KMEANS_ITERATIONS = 20


@dataclass(frozen=True)
class SearchChoice:
    """How a memory bank is searched, and what the fit-time check measured.

    kind: "exact" or "ivf_flat"; nlist: IVF cells; nprobe: cells scanned per query;
    recall: share of check patches whose 1-NN distance equals exact search's (0-1);
    max_score_rel_err: largest relative image-score difference of a check sample;
    n_check: check patches; reason: one phrase on why this kind was chosen.
    """

    kind: str = "exact"
    nlist: int = 0
    nprobe: int = 0
    recall: float | None = None
    max_score_rel_err: float | None = None
    n_check: int = 0
    reason: str = "exact search"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SearchChoice:
        """A choice read from a manifest; ValueError naming the first bad entry."""
        if not isinstance(d, dict):
            raise ValueError(f"search entry must be a mapping, got {type(d).__name__}")
        kind = d.get("kind")
        if kind not in SEARCH_KINDS:
            raise ValueError(f"search kind must be one of {', '.join(SEARCH_KINDS)}, got {kind!r}")
        ints = {}
        for key in ("nlist", "nprobe", "n_check"):
            v = d.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"search {key} must be a whole number ≥ 0, got {v!r}")
            ints[key] = v
        if kind == "ivf_flat" and not 1 <= ints["nprobe"] <= ints["nlist"]:
            raise ValueError(f"search nprobe must be in 1..nlist ({ints['nlist']}), got {ints['nprobe']}")
        floats = {}
        for key in ("recall", "max_score_rel_err"):
            v = d.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise ValueError(f"search {key} must be a finite number, got {v!r}")
            floats[key] = None if v is None else float(v)
        reason = d.get("reason", "")
        if not isinstance(reason, str):
            raise ValueError("search reason must be text")
        return cls(kind, ints["nlist"], ints["nprobe"], floats["recall"], floats["max_score_rel_err"],
                   ints["n_check"], reason)

    def describe(self) -> str:
        """One line for ``lsfa info``."""
        if self.kind == "exact":
            return f"exact ({self.reason})"
        return (f"IVF-Flat approximate, {self.nlist} cells, {self.nprobe} probed; on {self.n_check} "
                f"held-out good patches the 1-NN distance equals exact search for {100 * self.recall:.2f} %, "
                f"image scores within {100 * self.max_score_rel_err:.2g} %")


def default_nlist(bank_size: int) -> int:
    """IVF cells for a bank of ``bank_size`` vectors: about 4·sqrt(M), at least 8 vectors a cell."""
    return int(max(1, min(round(4 * math.sqrt(bank_size)), bank_size // 8)))


def train_centroids(vectors: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """(nlist, D) float32 k-means centroids of the bank, deterministic for a given seed."""
    from core.scoring._faiss import faiss_threads

    with faiss_threads() as faiss:
        km = faiss.Kmeans(vectors.shape[1], int(nlist), niter=KMEANS_ITERATIONS, seed=int(seed),
                          min_points_per_centroid=1, max_points_per_centroid=1 << 20, verbose=False)
        km.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def ivf_index(vectors: np.ndarray, centroids: np.ndarray, nprobe: int):
    """faiss IndexIVFFlat over ``vectors`` with the given cells (no training at load time)."""
    from core.scoring._faiss import faiss_threads

    with faiss_threads() as faiss:
        d = vectors.shape[1]
        quantizer = faiss.IndexFlatL2(d)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        index = faiss.IndexIVFFlat(quantizer, d, len(centroids), faiss.METRIC_L2)
        index.is_trained = True
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    index.nprobe = int(nprobe)
    index.parallel_mode = 0
    # faiss' Python wrapper keeps the quantizer alive with the index (index.referenced_objects)
    return index


def check_queries(query_sets: list[np.ndarray], limit: int = MAX_CHECK_QUERIES) -> list[np.ndarray]:
    """Whole samples' patch sets, in order, up to ``limit`` patches in all (at least one sample)."""
    out, n = [], 0
    for q in query_sets:
        if len(q) == 0:
            continue
        if out and n + len(q) > limit:
            break
        out.append(np.ascontiguousarray(q, dtype=np.float32))
        n += len(q)
    return out


def compare(exact: tuple[np.ndarray, np.ndarray], approx: tuple[np.ndarray, np.ndarray],
            sizes: list[int]) -> tuple[float, float]:
    """(recall, largest relative image-score error) of approximate vs exact 1-NN results.

    Each argument is (distances (Q,), indices (Q,)); ``sizes`` splits the Q patches into samples,
    whose image score is their largest patch distance."""
    de, ie = exact
    da, ia = approx
    same = (ia == ie) | (np.abs(da - de) <= _SAME_DISTANCE_RTOL * np.maximum(de, 1e-12))
    recall = float(same.mean()) if len(same) else 1.0
    worst, start = 0.0, 0
    for n in sizes:
        se, sa = float(de[start:start + n].max()), float(da[start:start + n].max())
        worst = max(worst, abs(sa - se) / max(abs(se), 1e-12))
        start += n
    return recall, worst


def distance_share(bank_size: int, nlist: int, nprobe: int) -> float:
    """Distances an IVF query computes (centroids + probed cells, cells of equal size assumed)
    as a share of the exact search's ``bank_size``."""
    return (nlist + nprobe * bank_size / nlist) / bank_size


def choose_search(bank, query_sets: list[np.ndarray], seed: int = 0, min_bank: int | None = None,
                  nprobes: tuple[int, ...] = NPROBE_CHOICES, nlist: int | None = None,
                  max_share: float | None = None):
    """(SearchChoice, centroids or None) for ``bank`` (a MemoryBank), checked on ``query_sets``:
    one (Q_i, D) array of held-out good patch features per sample. Banks smaller than
    ``min_bank`` (default ``ANN_MIN_BANK``) keep exact search, and so do probe counts that would
    compute more than ``max_share`` (default ``MAX_DISTANCE_SHARE``) of the exact search's distances."""
    m = bank.size
    min_bank = ANN_MIN_BANK if min_bank is None else int(min_bank)
    max_share = MAX_DISTANCE_SHARE if max_share is None else float(max_share)
    if m < min_bank:
        return SearchChoice(reason=f"bank of {m} patches, below {min_bank}"), None
    nlist = int(nlist or default_nlist(m))
    nprobes = tuple(p for p in sorted(nprobes) if p <= nlist and distance_share(m, nlist, p) <= max_share)
    if not nprobes:
        return SearchChoice(reason=f"IVF with {nlist} cells would not save enough distance computations "
                                   f"on a bank of {m} patches"), None
    sets = check_queries(query_sets)
    if not sets:
        return SearchChoice(reason="no held-out good patches to check approximate search on"), None
    q = np.concatenate(sets)
    sizes = [len(s) for s in sets]
    exact = bank.nearest(q, exact=True)
    centroids = train_centroids(bank.vectors, nlist, seed)
    index = ivf_index(bank.vectors, centroids, 1)
    recall = err = None
    for nprobe in nprobes:
        index.nprobe = int(nprobe)
        d2, idx = index.search(q, 1)
        miss = idx[:, 0] < 0
        da = np.sqrt(np.maximum(d2[:, 0], 0.0))
        da[miss] = np.inf
        recall, err = compare(exact, (da, idx[:, 0].astype(np.int64)), sizes)
        if recall >= MIN_RECALL and err <= MAX_SCORE_REL_ERR:
            return SearchChoice("ivf_flat", nlist, int(nprobe), recall, err, len(q),
                                f"IVF-Flat matched exact search at nprobe {nprobe}"), centroids
    return SearchChoice(
        "exact", nlist, 0, recall, err, len(q),
        f"IVF-Flat did not match exact search at up to {max(nprobes)} of {nlist} cells probed "
        f"(1-NN recall {recall:.3f}, image-score error {err:.2%})",
    ), None


__all__ = ["ANN_MIN_BANK", "SEARCH_KINDS", "SearchChoice", "choose_search", "default_nlist", "distance_share",
           "ivf_index", "train_centroids"]
