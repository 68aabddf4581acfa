"""File-name-safe versions of sample, dataset and category names (one rule for CLI and GUI)."""

from __future__ import annotations

import re

__all__ = ["safe_name", "sanitize"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize(text: str) -> str:
    """Every run of characters other than letters, digits, ``.``, ``_``, ``-`` becomes ``_``."""
    return _UNSAFE.sub("_", text)


def safe_name(text: str) -> str:
    """:func:`sanitize` without leading/trailing ``_``; "sample" when nothing is left."""
    return sanitize(text).strip("_") or "sample"
