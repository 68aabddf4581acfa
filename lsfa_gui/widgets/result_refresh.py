"""Coalesced refreshes for panels that redraw from all scored samples (the histogram, the
image-threshold slider's range, the confusion matrix, the browser's counts): while a batch
streams results in, each refreshes at most once per :data:`RESULTS_REFRESH_MS`, not once per
sample. (The live-inspection panel stays immediate: parts arrive one at a time there, and
its verdict is the point.)

It is superqt's throttle with the trailing call only: the first result of a burst starts the
timer and the refresh runs when it fires, in an event-loop pass of its own (not inside the
handling of the result, beside the image view's redraw); results arriving meanwhile fold into
that one refresh, which reads the state as it is then. Changes the user makes (thresholds,
samples, the histogram's zoom) still refresh the panels at once.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject
from superqt.utils import qthrottled

RESULTS_REFRESH_MS = 150  # at most one refresh per panel in this time while results arrive


def on_results(refresh: Callable[[], None], parent: QObject) -> Any:
    """``refresh`` run at most once per RESULTS_REFRESH_MS, after the call that asked for it:
    a superqt ``ThrottledCallable`` (``.flush()`` runs a pending call now, ``.cancel()`` drops it)."""
    return qthrottled(refresh, timeout=RESULTS_REFRESH_MS, leading=False, parent=parent)
