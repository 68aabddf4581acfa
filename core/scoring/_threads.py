"""Thread limits for scoring: single-threaded BLAS (numpy's OpenBLAS) for a block, and a cap on
torch's threads while a background thread prepares the next sample (core.prefetch).

The scoring code issues many small matrix products. On a busy or small CPU, OpenBLAS's
worker-thread hand-off makes each of them cost milliseconds instead of microseconds
(measured: 28x28 -> 224x224 map 0.08 ms single-threaded vs 3-9 ms with 2 threads on a shared
2-core machine). The limit is process-wide while any thread runs such a block, then restored.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from core.cpu import threadpool_controller


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def single_thread_blas():
    """One BLAS thread while any thread is inside such a block (an ensemble's members score side
    by side, core.ensemble): the first to enter sets the limit, the last to leave restores it, so
    one thread's exit never lifts the limit under another's products."""
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = threadpool_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


@contextmanager
def torch_threads_at_most(n: int):
    """Run a block with at most ``n`` (>= 1) torch intra-op threads in the calling thread, then
    restore its previous count. With torch's OpenMP backend the count is per calling thread."""
    import torch

    before = torch.get_num_threads()
    if before > max(1, n):
        torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
