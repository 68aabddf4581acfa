"""JobRunner (superqt generator workers): progress, streamed results, cancel, errors, supersession; plus the real engine."""

import threading

import numpy as np
import pytest

from core.errors import DataError
from core.progress import ProgressEvent


@pytest.fixture
def runner(qtbot):
    from lsfa_gui.runner import JobRunner

    r = JobRunner()
    yield r
    r.shutdown(5000)


def test_progress_partial_results_and_result_arrive_in_order(qtbot, runner):
    events, partials = [], []
    runner.progressed.connect(lambda rid, ev: events.append(ev))
    ui_thread = threading.get_ident()
    slot_threads = set()
    runner.partial.connect(lambda rid, obj: (partials.append(obj), slot_threads.add(threading.get_ident())))
    job_thread = []

    def job(progress):
        job_thread.append(threading.get_ident())
        out = []
        for i in range(5):
            progress.update("Squares", i, 5)
            yield i * i
            out.append(np.full(3, i))
        progress.update("Squares", 5, 5)
        return np.stack(out)

    done = []
    runner.succeeded.connect(lambda rid, res: done.append((rid, res)))
    with qtbot.waitSignals([runner.started, runner.succeeded, runner.finished], order="strict", timeout=10000):
        rid = runner.start("Squares", job)
    assert len(done) == 1 and done[0][0] == rid
    result = done[0][1]
    assert result.shape == (5, 3) and partials == [0, 1, 4, 9, 16]
    assert job_thread and job_thread[0] != ui_thread
    assert slot_threads == {ui_thread}  # messages are delivered on the UI thread
    assert isinstance(events[0], ProgressEvent) and events[-1].done == 5  # final step always reported
    assert not runner.busy
    qtbot.waitUntil(lambda: runner.live_threads == 0, timeout=5000)


def test_cancel_stops_the_job_within_one_step(qtbot, runner):
    reached = []
    started = threading.Event()

    def endless(progress):
        i = 0
        while True:  # only Cancelled (raised by progress.update) ends this
            progress.update("Spinning", i, 0)
            reached.append(i)
            started.set()
            i += 1
            threading.Event().wait(0.002)

    got_cancel = []
    runner.cancelled.connect(lambda rid: got_cancel.append(rid))
    rid = runner.start("Endless", endless)
    qtbot.waitUntil(started.is_set, timeout=5000)
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.cancel()
    assert got_cancel == [rid] and not runner.busy
    qtbot.waitUntil(lambda: runner.live_threads == 0, timeout=5000)  # the thread really ended
    n = len(reached)
    assert n >= 1


def test_errors_become_messages_not_crashes(qtbot, runner):
    def bad_file(progress):
        raise DataError("/data/x.tiff", "not an organized point cloud")

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.start("Read", bad_file)
    rid, message, details = blocker.args
    assert message == "/data/x.tiff: not an organized point cloud" and details == ""

    def bug(progress):
        return 1 / 0

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.start("Bug", bug)
    assert blocker.args[1] == "ZeroDivisionError: division by zero" and "Traceback" in blocker.args[2]
    assert not runner.busy


def test_new_request_supersedes_old_and_late_signals_are_dropped(qtbot, runner):
    release = threading.Event()
    results = []
    runner.succeeded.connect(lambda rid, res: results.append((rid, res)))
    runner.partial.connect(lambda rid, obj: results.append((rid, obj)))

    def slow(progress):
        release.wait(5)
        yield "late partial"  # after supersession: must not reach the window
        return "old"

    def fast(progress):
        return "new"

    old = runner.start("Slow", slow)
    with qtbot.waitSignal(runner.succeeded, timeout=5000):
        new = runner.start("Fast", fast)
    release.set()
    qtbot.waitUntil(lambda: runner.live_threads == 0, timeout=5000)
    assert results == [(new, "new")] and old != new


def test_a_generator_job_is_cancelled_between_messages_and_its_cleanup_runs_in_its_thread(qtbot, runner):
    """No progress.update at all: the runner's check between two yielded messages stops it."""
    cleaned, sent = [], []

    def chatty(progress):
        try:
            i = 0
            while True:
                sent.append(i)
                yield i
                i += 1
                threading.Event().wait(0.002)
        finally:
            cleaned.append(threading.get_ident())

    runner.start("Chatty", chatty)
    qtbot.waitUntil(lambda: len(sent) > 3, timeout=5000)
    runner.cancel()
    qtbot.waitUntil(lambda: runner.live_threads == 0, timeout=5000)
    n = len(sent)
    assert cleaned and cleaned[0] != threading.get_ident()
    qtbot.wait(50)
    assert len(sent) == n  # really stopped


def test_a_runtime_error_is_reported_like_any_other_failure(qtbot, runner):
    """superqt treats a RuntimeError from a worker as 'worker deleted' and reports nothing; the
    runner must still say what went wrong (torch raises RuntimeError)."""

    def torch_like(progress):
        raise RuntimeError("CUDA out of memory")

    failures = []
    runner.failed.connect(lambda rid, message, details: failures.append(message))
    with qtbot.waitSignals([runner.failed, runner.finished], order="strict", timeout=5000):
        runner.start("Fit", torch_like)
    assert failures == ["RuntimeError: CUDA out of memory"]
    assert not runner.busy


def test_jobs_of_several_runners_run_at_once(qtbot):
    """A watch that never ends, metrics and a save each get a thread (the default pool of a
    2-core machine has only two)."""
    from lsfa_gui.runner import JobRunner

    release = threading.Event()
    runners = [JobRunner() for _ in range(4)]
    running = []

    def blocking(progress):
        running.append(1)
        release.wait(10)

    try:
        for r in runners:
            r.start("Block", blocking)
        qtbot.waitUntil(lambda: len(running) == len(runners), timeout=5000)
    finally:
        release.set()
        for r in runners:
            assert r.shutdown(5000)
