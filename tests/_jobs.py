"""Driving a GUI job's generator in a test as the worker thread does."""

from __future__ import annotations

from core.progress import Progress


def drive(job) -> tuple[list, object]:
    """(messages the job yielded, its return value) of ``job(Progress())``."""
    gen, messages = job(Progress()), []
    while True:
        try:
            messages.append(next(gen))
        except StopIteration as stop:
            return messages, stop.value
