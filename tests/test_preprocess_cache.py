"""The preprocessing cache stays under its size limit: the least recently used entries go first,
a hit counts as a use, nothing but its own entries is touched (core.data.preprocess_cache)."""

import logging
import os

import numpy as np
import pytest

from core.data import preprocess_cache as cache
from core.data.dataset import open_dataset
from core.data.preprocess import preprocess


def _entries(folder, n, side=64):
    """``n`` entries written through the cache, the i-th last used at time 1000 + i (seconds)."""
    paths = []
    for i in range(n):
        keep = np.random.default_rng(i).random((side, side)) > 0.5
        path = folder / f"{i:040x}.npz"
        cache.write(path, keep, {"kept_points": int(keep.sum())})
        os.utime(path, (1000 + i, 1000 + i))
        paths.append(path)
    return paths


def test_prune_removes_the_least_recently_used_entries_down_to_the_kept_share(tmp_path):
    paths = _entries(tmp_path, 10)
    other = tmp_path / "notes.txt"
    other.write_bytes(b"x" * 100_000)  # not an entry: never counted, never removed
    size = paths[0].stat().st_size
    limit = 5 * size
    assert cache.prune(tmp_path, 20 * size) == 0  # under the limit: nothing goes
    removed = cache.prune(tmp_path, limit)
    left = [p for p in paths if p.exists()]
    assert removed == 10 - len(left) > 0
    assert left == paths[-len(left):]  # the oldest went first
    assert sum(p.stat().st_size for p in left) <= cache.KEEP_FRACTION * limit + size // 10
    assert other.exists()


def test_a_hit_counts_as_a_use(tmp_path):
    paths = _entries(tmp_path, 6)
    hit = cache.read(paths[0], (64, 64))  # the oldest entry, read again
    assert hit is not None and hit[1]["kept_points"] == int(hit[0].sum())
    cache.prune(tmp_path, 3 * paths[0].stat().st_size)
    assert paths[0].exists() and not paths[1].exists()


def test_scoring_many_new_parts_keeps_the_folder_under_the_limit(tiny_xyz_model, tmp_path, monkeypatch):
    """Every cloud preprocessed is a new entry (as on a line where every part is new); with a
    limit of three entries the folder never holds more, and the newest is a hit."""
    root, _ = tiny_xyz_model
    refs = open_dataset(root).samples("cookie", "train") + open_dataset(root).samples("cookie", "test")
    folder = tmp_path / "cache"
    first = preprocess(refs[0].load(), cache_dir=folder)
    entry = next(folder.glob("*.npz")).stat().st_size
    monkeypatch.setenv(cache.MAX_MB_VARIABLE, str(3.5 * entry / 2**20))
    monkeypatch.setattr(cache, "PRUNE_EVERY", 1)
    sizes = []
    for ref in refs[1:]:
        out = preprocess(ref.load(), cache_dir=folder)
        assert out.meta["preprocess"]["cached"] is False
        sizes.append(sum(p.stat().st_size for p in folder.glob("*.npz")))
    assert len(refs) > 5 and max(sizes) <= 3.5 * entry
    assert preprocess(refs[-1].load(), cache_dir=folder).meta["preprocess"]["cached"] is True
    assert first.meta["preprocess"]["cached"] is False


@pytest.mark.parametrize("value", ["", "0", "-5", "lots", "inf"])
def test_the_limit_falls_back_to_the_default_on_a_bad_value(value, monkeypatch, caplog):
    monkeypatch.setenv(cache.MAX_MB_VARIABLE, value)
    monkeypatch.setattr(cache, "_warned", set())
    caplog.set_level(logging.WARNING)
    assert cache.max_bytes() == cache.DEFAULT_MAX_MB * 2**20
    assert (cache.MAX_MB_VARIABLE in caplog.text) == bool(value)  # unset is no mistake


def test_the_limit_is_read_in_megabytes(monkeypatch):
    monkeypatch.setenv(cache.MAX_MB_VARIABLE, "2.5")
    assert cache.max_bytes() == int(2.5 * 2**20)
