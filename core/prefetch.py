"""Prepare the next items of a batch in one background thread while the caller works on the current one.

Scoring a batch alternates reading + preprocessing a sample (file decoding, numpy) with its
features and nearest-neighbour search (torch, faiss). Both release the GIL in their heavy
operations, so on two free cores the two stages of consecutive samples overlap. Items come back
in input order; an exception raised while preparing an item is raised again when the caller
asks for that item's value, where the sequential loop would have raised it. At most ``depth``
items are prepared ahead of the current one (memory: ``depth + 1`` prepared items).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from functools import partial
from typing import Callable, Iterator, Sequence, TypeVar

from core.progress import Progress, ensure

Item = TypeVar("Item")
Value = TypeVar("Value")

# Items prepared ahead of the one being scored. One is enough to keep the second core busy
# (preparing a 400x400 RGB + xyz sample takes less CPU than scoring it); more only holds memory.
PREFETCH_DEPTH = 1
MAX_DEPTH = 2
DEPTH_ENV = "LSFA_PREFETCH"  # 0 turns reading ahead off (e.g. on a machine whose cores are all taken)


def default_depth() -> int:
    """``$LSFA_PREFETCH`` (0 to MAX_DEPTH) or PREFETCH_DEPTH; UserError for another value."""
    import os

    from core.errors import UserError

    value = os.environ.get(DEPTH_ENV, "").strip()
    if not value:
        return PREFETCH_DEPTH
    if value not in {str(d) for d in range(MAX_DEPTH + 1)}:
        raise UserError(f"{DEPTH_ENV}={value!r}: give a number from 0 (no reading ahead) to {MAX_DEPTH}")
    return int(value)


def prefetched(items: Sequence[Item], prepare: Callable[[Item], Value], depth: int = PREFETCH_DEPTH,
               progress: Progress | None = None) -> Iterator[tuple[Item, Callable[[], Value]]]:
    """Yield (item, value) per item, in order; ``value()`` returns ``prepare(item)`` or raises
    what it raised. With ``depth`` >= 1 (and more than one item) ``prepare`` runs in one
    background thread up to ``depth`` items ahead; with 0 it runs when ``value()`` is called.

    Cancellation (``progress``) stops the background thread before it starts another item;
    closing the iterator (the caller stopped, raised, or was cancelled) drops the items not
    started and waits for the one being prepared, so no preparation outlives the loop."""
    if depth < 1 or len(items) < 2:
        for item in items:
            yield item, partial(prepare, item)
        return
    p = ensure(progress)

    def job(item: Item) -> Value:
        p.check()  # cancelled: start nothing more
        return prepare(item)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsfa-prefetch")
    pending: deque = deque()
    submitted = 0
    try:
        for i, item in enumerate(items):
            while submitted < len(items) and submitted <= i + depth:
                pending.append(pool.submit(job, items[submitted]))
                submitted += 1
            yield item, pending.popleft().result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def prefetching(items: Sequence[Item], prepare: Callable[[Item], Value], depth: int | None = None,
                progress: Progress | None = None) -> Iterator[Iterator[tuple[Item, Callable[[], Value]]]]:
    """:func:`prefetched` for a ``with`` block, which also shares the cores: torch runs one thread
    in the background thread and in the calling thread (:data:`core.cpu.ENGINE_TORCH_THREADS`; at 2
    threads torch took 2.5-3.7x the CPU time of 1 on a busy 2-core machine: its threads spin for a
    taken core), read ahead or not, so both give the same bits; restored, and the background
    thread joined, on exit. ``depth`` None: :func:`default_depth`."""
    from core.cpu import ENGINE_TORCH_THREADS
    from core.scoring._threads import torch_threads_at_most

    depth = default_depth() if depth is None else depth
    def limited(item: Item) -> Value:  # the background thread's own count; in the caller a no-op
        with torch_threads_at_most(ENGINE_TORCH_THREADS):
            return prepare(item)

    loaded = prefetched(items, limited, depth, progress)
    with torch_threads_at_most(ENGINE_TORCH_THREADS), closing(loaded):
        yield loaded


__all__ = ["DEPTH_ENV", "PREFETCH_DEPTH", "default_depth", "prefetched", "prefetching"]
