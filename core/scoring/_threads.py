"""A cap on torch's threads for a block (scoring while a background thread prepares the next
sample, core.prefetch; every fit, core.pipeline). Single-threaded BLAS for a block is
:func:`core.cpu.single_thread_blas`."""

from __future__ import annotations

from contextlib import contextmanager


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
