"""The CPU cores this process may run on: the one owner of that count (thread limits while
reading ahead, core.prefetch; the FPFH loops' threads, core.features.fpfh)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
