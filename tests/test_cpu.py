"""core.cpu: the thread budget and running calls side by side."""

import threading
import time

import pytest

import core.cpu as cpu


def test_thread_budget_follows_the_cores_and_omp_num_threads(monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu.thread_budget() == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray gives a one-CPU task
    assert cpu.thread_budget() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert cpu.thread_budget() == 8
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "16")
    assert cpu.thread_budget() == 2


def test_side_by_side_runs_calls_at_once_and_keeps_their_order(monkeypatch):
    monkeypatch.setattr(cpu, "thread_budget", lambda: 2)
    barrier = threading.Barrier(2, timeout=10)  # both calls must be running at the same time

    def call(k):
        barrier.wait()
        return k, threading.current_thread().name

    (a, ta), (b, tb) = cpu.side_by_side([lambda: call(0), lambda: call(1)])
    assert (a, b) == (0, 1)
    assert ta == threading.current_thread().name and tb.startswith("lsfa-side")


def test_side_by_side_on_one_thread_and_with_more_calls_than_threads(monkeypatch):
    monkeypatch.setattr(cpu, "thread_budget", lambda: 1)
    names = cpu.side_by_side([lambda: threading.current_thread().name] * 3)
    assert names == [threading.current_thread().name] * 3
    monkeypatch.setattr(cpu, "thread_budget", lambda: 2)
    assert cpu.side_by_side([lambda k=k: k for k in range(6)]) == list(range(6))


def test_side_by_side_raises_the_first_error_after_every_call_finished(monkeypatch):
    monkeypatch.setattr(cpu, "thread_budget", lambda: 2)
    finished = []

    def slow():
        time.sleep(0.2)
        finished.append("side")
        return 1

    def fails():
        raise ValueError("first call failed")

    with pytest.raises(ValueError, match="first call failed"):
        cpu.side_by_side([fails, slow])
    assert finished == ["side"]  # the side call was not left running
    with pytest.raises(KeyError):
        cpu.side_by_side([lambda: 0, lambda: {}["missing"]])
