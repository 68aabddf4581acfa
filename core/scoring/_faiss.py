"""The faiss module, set up for this engine's searches (BLAS threshold, one OpenMP thread)."""

from __future__ import annotations

from contextlib import contextmanager

# faiss picks its own SIMD loop instead of BLAS when (queries x dims) < this threshold (128 000 by
# default). For one image's 784 queries against a 10k bank that loop took 24 ms (33-d) and 48 ms
# (152-d) of CPU, the BLAS path 6 ms and 21 ms (single-threaded; bench/bench_coreset.py "faiss").
# Tiny query sets (< ~15 at 152-d) keep the SIMD loop, which is exact for near-zero distances.
_FAISS_BLAS_THRESHOLD = 2048
# faiss' OpenMP threads (its bundled OpenBLAS follows them). A search of one image's patches is a
# few ms of work: with 2 threads on a busy 2-core machine it took 3-5x longer (thread hand-off).
SEARCH_THREADS = 1


def faiss_module():
    """faiss, with the BLAS threshold above applied. Run its searches and training inside
    :func:`faiss_threads`."""
    import faiss

    if faiss.cvar.distance_compute_blas_threshold != _FAISS_BLAS_THRESHOLD:
        faiss.cvar.distance_compute_blas_threshold = _FAISS_BLAS_THRESHOLD
    return faiss


@contextmanager
def faiss_threads():
    """A block of faiss work on SEARCH_THREADS OpenMP threads; the calling thread's count (which
    torch shares) is restored after it (core.cpu.openmp_threads)."""
    from core.cpu import openmp_threads

    faiss = faiss_module()
    with openmp_threads(SEARCH_THREADS):
        yield faiss


__all__ = ["SEARCH_THREADS", "faiss_module", "faiss_threads"]
