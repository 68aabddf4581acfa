"""The CPU cores this process may run on: the one owner of that count (thread limits while
reading ahead, core.prefetch; the FPFH loops' threads, core.features.fpfh), and the OpenMP thread
limit of a block (faiss searches)."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

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
