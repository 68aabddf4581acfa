"""The per-user cache folder of LSFA Inspector (preprocessed samples, demo data, compiled code)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """``$LSFA_CACHE_DIR``, else ``$XDG_CACHE_HOME/lsfa-inspector`` or ~/.cache/lsfa-inspector."""
    env = os.environ.get("LSFA_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lsfa-inspector"
