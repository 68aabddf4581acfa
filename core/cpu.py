"""The CPU cores this process may run on: the one owner of that count (thread limits while
reading ahead, core.prefetch; the FPFH loops' threads, core.features.fpfh; an ensemble's members
scored side by side, core.ensemble), the OpenMP thread limit of a block (faiss searches) and single-threaded BLAS for a block."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, TypeVar

T = TypeVar("T")

# torch's intra-op threads for the engine's work (fits and scoring, core.pipeline.fit and
# core.scoring_loop): the other cores go to the FPFH threads and the read-ahead thread, and one
# fixed count gives the same bits in every path (torch's sums depend on its thread count). At 2
# threads torch took 2.5-3.7x the CPU time of 1 on a busy 2-core machine (its threads spin for a
# taken core); on an idle one, fits showed no consistent difference (docs/evaluation.md, fifteenth
# session: "Fixed: a search left torch on one thread").
ENGINE_TORCH_THREADS = 1

_lock = threading.Lock()
_controller = None


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_budget() -> int:
    """Threads one piece of engine work may spread over: the usable cores, and at most
    ``$OMP_NUM_THREADS`` when that is set to a whole number (Ray sets it to a task's CPUs, so a
    one-CPU worker stays on one thread)."""
    cores = usable_cores()
    try:
        omp = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        omp = 0
    return max(1, min(cores, omp) if omp > 0 else cores)


_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
SIDE_THREADS = 3  # threads of the pool calls run on beside the caller (an ensemble has 2 members)


def _pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The process's pool ``name`` (threads named after it), made on first use."""
    with _pools_lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(workers, thread_name_prefix=name)
        return _pools[name]


def _forget_pools_after_fork() -> None:
    """A forked child has none of the parent's threads: a pool inherited from the parent would
    take its calls and never run them. The child starts its own."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)


def in_parallel(calls: list[Callable[[], T]], pool: str = "lsfa-side", workers: int = SIDE_THREADS) -> list[T]:
    """The results of ``calls``: the first in the calling thread, the others on the process's pool
    ``pool`` of ``workers`` threads. Returns when every call is done (even after an error), then
    raises the first error in list order. Each call sets its own thread limits (torch's and
    OpenMP's counts are per thread)."""
    futures = [_pool(pool, workers).submit(call) for call in calls[1:]]
    try:
        first = [calls[0]()] if calls else []
    finally:
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return first + [f.result() for f in futures]


def side_by_side(calls: list[Callable[[], T]]) -> list[T]:
    """The results of ``calls``, run at once (:func:`in_parallel`), or one after the other when
    the :func:`thread_budget` is 1."""
    if len(calls) <= 1 or thread_budget() <= 1:
        return [call() for call in calls]
    return in_parallel(calls)


def threadpool_controller():
    """The process's threadpoolctl controller (made once: it scans the loaded libraries)."""
    global _controller
    with _lock:
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        return _controller


@contextmanager
def openmp_threads(n: int):
    """Run a block with ``n`` OpenMP threads in the calling thread, then restore the thread's
    previous count (~16 µs). OpenMP's count is per calling thread and shared by every OpenMP
    library of the process: faiss and torch's CPU ops read the same one, so a count set for faiss
    and left behind made every later torch op of that thread (RGB features, adaptor training) run
    on one thread, and a fit's results depend on whether a search ran before it."""
    with threadpool_controller().limit(limits=max(1, int(n)), user_api="openmp"):
        yield


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def single_thread_blas():
    """One BLAS thread (numpy's and scipy's OpenBLAS) while any thread is inside such a block.

    The engine issues many small matrix products (maps, coreset, the plane fit of background
    removal). On a busy or small CPU, OpenBLAS's worker-thread hand-off makes each of them cost
    milliseconds instead of microseconds (28x28 -> 224x224 map 0.08 ms single-threaded vs 3-9 ms
    with 2 threads on a shared 2-core machine), and its idle workers spin: background removal of a
    400x400 cloud took 73 ms of wall time either way but 143-148 ms of CPU with 2 threads against
    71-73 ms with one. The limit is process-wide while any thread runs such a block (an
    ensemble's members score side by side, core.ensemble; the read-ahead thread prepares a
    sample): the first to enter sets it, the last to leave restores it, so one thread's exit never
    lifts it under another's products."""
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
