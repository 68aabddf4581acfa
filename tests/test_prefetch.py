"""Batch scoring with the next sample prepared in a background thread (core.prefetch): same
results in the same order, errors at their sample, clean cancellation, bounded read-ahead."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.config import FitConfig
from core.data.dataset import open_dataset
from core.demo import generate_demo_dataset
from core.errors import UserError
from core.pipeline import fit
from core.prefetch import prefetched
from core.progress import Cancelled, Progress


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lsfa-prefetch")]


# ------------------------------------------------------------------ core.prefetch
def test_values_come_back_in_order_with_errors_at_their_item():
    def prepare(x):
        if x == 3:
            raise UserError(f"item {x} is bad")
        time.sleep(0.002 * (x % 3))  # uneven preparation times
        return x * 10

    got = []
    for item, value in prefetched(list(range(7)), prepare, depth=2):
        try:
            got.append((item, value()))
        except UserError as exc:
            got.append((item, str(exc)))
    assert got == [(0, 0), (1, 10), (2, 20), (3, "item 3 is bad"), (4, 40), (5, 50), (6, 60)]
    assert not prefetch_threads()


@pytest.mark.parametrize("depth", [1, 2])
def test_read_ahead_is_bounded_by_depth(depth):
    started = []

    def prepare(x):
        started.append(x)
        return x

    ahead = []
    for item, value in prefetched(list(range(8)), prepare, depth=depth):
        assert value() == item
        time.sleep(0.01)  # the background thread could run far ahead if nothing held it
        ahead.append(max(started) - item)
    assert max(ahead) == depth  # it did read ahead, and never more than depth items
    assert sorted(started) == list(range(8))


def test_depth_zero_prepares_in_the_calling_thread_when_asked():
    threads = []
    pairs = list(prefetched([1, 2], lambda x: threads.append(threading.current_thread()) or x, depth=0))
    assert threads == []  # nothing prepared until asked
    assert [v() for _i, v in pairs] == [1, 2] and threads == [threading.current_thread()] * 2


def test_cancel_stops_before_the_next_item_and_leaves_no_thread():
    progress = Progress()
    started = []

    def prepare(x):
        started.append(x)
        time.sleep(0.05)
        return x

    seen = []
    with pytest.raises(Cancelled):
        for item, value in prefetched(list(range(10)), prepare, depth=1, progress=progress):
            progress.check()
            seen.append(value())
            if item == 2:
                progress.cancel()
    assert seen == [0, 1, 2]
    assert max(started) <= 3  # at most the item already being prepared when cancel came
    assert not prefetch_threads()


def test_stopping_early_waits_for_the_running_preparation():
    finished = []

    def prepare(x):
        time.sleep(0.05)
        finished.append(x)
        return x

    for item, value in prefetched(list(range(5)), prepare, depth=1):
        value()
        break
    assert not prefetch_threads()  # the loop's close joined the background thread
    assert finished in ([0], [0, 1])


# ------------------------------------------------------------------ Model.score_each
@pytest.fixture(scope="module")
def scored_demo(tmp_path_factory):
    """(dataset root, frozen RGB + xyz model) on a tiny generated puck set (7 test samples)."""
    tmp = tmp_path_factory.mktemp("prefetch")
    root = generate_demo_dataset(tmp / "demo", seed=9, categories=["puck"], size=96, n_train=6,
                                 n_validation=3, n_test_good=3, n_test_per_defect=1)
    model = fit(root, "puck", FitConfig(cache_dir=str(tmp / "cache"), adapt=False, self_check=False))
    return root, model


def _results(model, refs, prefetch, **kw):
    errors = []
    out = [(i, ref.name, r) for i, ref, r in model.score_each(
        refs, prefetch=prefetch, on_error=lambda i, ref, exc: errors.append((i, str(exc))), **kw)]
    return out, errors


def test_prefetched_scoring_gives_identical_results_in_order(scored_demo):
    root, model = scored_demo
    refs = open_dataset(root).samples("puck", "test")
    assert len(refs) >= 5
    seq, _ = _results(model, refs, prefetch=0)
    pre, _ = _results(model, refs, prefetch=1, keep_original=True)
    assert [(i, n) for i, n, _ in pre] == [(i, ref.name) for i, ref in enumerate(refs)]
    for (_, _, a), (_, _, b) in zip(seq, pre):
        assert a.image_score == b.image_score and a.modality_scores == b.modality_scores
        assert np.array_equal(a.anomaly_map, b.anomaly_map)
        assert b.timings["preprocess"] > 0 and b.original is not None and a.original is None
    assert not prefetch_threads()


def test_a_corrupt_file_mid_batch_gives_its_message_and_the_rest_are_scored(scored_demo, tmp_path):
    import shutil

    root, model = scored_demo
    copy = Path(shutil.copytree(root, tmp_path / "demo"))
    refs = open_dataset(copy).samples("puck", "test")
    bad = len(refs) // 2
    refs[bad].rgb_path.write_bytes(b"not an image")
    seq, seq_errors = _results(model, refs, prefetch=0)
    pre, pre_errors = _results(model, refs, prefetch=1)
    assert [i for i, _ in pre_errors] == [bad] and str(refs[bad].rgb_path.name) in pre_errors[0][1]
    assert pre_errors == seq_errors  # the same message as one after the other
    assert [i for i, _, _ in pre] == [i for i in range(len(refs)) if i != bad]
    assert [r.image_score for *_, r in pre] == [r.image_score for *_, r in seq]


def test_an_error_without_handler_stops_the_batch_at_that_sample(scored_demo, tmp_path):
    import shutil

    root, model = scored_demo
    refs = open_dataset(Path(shutil.copytree(root, tmp_path / "demo"))).samples("puck", "test")
    refs[1].rgb_path.write_bytes(b"")
    got = []
    with pytest.raises(UserError, match=refs[1].rgb_path.name):
        for i, _ref, _r in model.score_each(refs, prefetch=1):
            got.append(i)
    assert got == [0] and not prefetch_threads()


def test_cancelling_during_a_prefetch_stops_cleanly(scored_demo):
    root, model = scored_demo
    refs = open_dataset(root).samples("puck", "test")
    events = []
    progress = Progress(lambda e: events.append(e.done))
    got = []
    with pytest.raises(Cancelled):
        for i, _ref, _r in model.score_each(refs, progress, prefetch=1):
            got.append(i)
            if i == 1:
                progress.cancel()  # sample 2 is being (or was) prepared in the background
    assert got == [0, 1] and max(events) == 1
    assert not prefetch_threads()
    # the model still scores normally afterwards
    again, _ = _results(model, refs[:2], prefetch=1)
    assert [i for i, _, _ in again] == [0, 1]


def test_scoring_runs_torch_on_one_thread_in_every_path_and_gives_the_threads_back(scored_demo):
    """Read ahead, one after the other or one sample alone: torch on ENGINE_TORCH_THREADS, so
    the same bits (its sums depend on its thread count); the caller's count restored after."""
    import torch

    from core.cpu import ENGINE_TORCH_THREADS
    from core.scoring._threads import torch_threads_at_most

    root, model = scored_demo
    refs = open_dataset(root).samples("puck", "test")[:3]
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with torch_threads_at_most(2):
            capped = torch.get_num_threads()
        with torch_threads_at_most(5):
            uncapped = torch.get_num_threads()
        during = {depth: [(torch.get_num_threads(), r) for _, _, r in model.score_each(refs, prefetch=depth)]
                  for depth in (1, 0)}
        after = torch.get_num_threads()
        alone = model.score(refs[1].load())
        after_alone = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert (capped, uncapped) == (2, 3)
    assert {n for rows in during.values() for n, _ in rows} == {ENGINE_TORCH_THREADS}
    assert after == after_alone == 3
    for (_, a), (_, b) in zip(during[1], during[0]):
        assert a.image_score == b.image_score and np.array_equal(a.anomaly_map, b.anomaly_map)
    assert alone.image_score == during[1][1][1].image_score
    assert np.array_equal(alone.anomaly_map, during[1][1][1].anomaly_map)


def test_reading_ahead_is_set_by_the_environment(monkeypatch):
    from core.prefetch import DEPTH_ENV, PREFETCH_DEPTH, default_depth

    monkeypatch.delenv(DEPTH_ENV, raising=False)
    assert default_depth() == PREFETCH_DEPTH == 1
    monkeypatch.setenv(DEPTH_ENV, "0")
    assert default_depth() == 0
    monkeypatch.setenv(DEPTH_ENV, "5")
    with pytest.raises(UserError, match="LSFA_PREFETCH='5'"):
        default_depth()
