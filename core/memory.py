"""Per-sample memory budget: inputs whose processing would need more memory than this machine
can give are refused with one line before they are decoded, instead of a MemoryError traceback
or the process being killed."""

from __future__ import annotations

import os

XYZ_BYTES_PER_PIXEL = 200  # decoded cloud (12 B) + preprocessing masks, graph and copies (~170 B)
_FALLBACK = 4 << 30


def memory_budget() -> int:
    """Bytes one sample (or one model file) may use: ``$LSFA_MEMORY_BUDGET_MB`` if set, else
    half of the memory available now."""
    env = os.environ.get("LSFA_MEMORY_BUDGET_MB")
    if env:
        try:
            return max(1, int(float(env) * (1 << 20)))
        except ValueError:
            pass
    try:
        import psutil

        return int(psutil.virtual_memory().available // 2)
    except Exception:  # psutil missing or no /proc: a fixed, modest budget
        return _FALLBACK


def gib(n: int | float) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 28 else f"{n / (1 << 20):.0f} MiB"
