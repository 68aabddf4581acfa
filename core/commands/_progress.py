"""Terminal progress for long CLI commands: a tqdm bar per stage on a terminal, plain log lines
(stage start, every 10 %, stage end) when stderr is not a terminal."""

from __future__ import annotations

import sys

from core.progress import Progress, ProgressEvent


class _TerminalSink:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.stage = None
        self.bar = None
        self.last_decile = -1

    def __call__(self, ev: ProgressEvent) -> None:
        if ev.stage != self.stage:
            self.close()
            self.stage = ev.stage
            self.last_decile = -1
            if self.tty:
                from tqdm import tqdm

                self.bar = tqdm(total=ev.total or None, desc=ev.stage, file=self.stream, leave=True)
        if self.bar is not None:
            self.bar.n = ev.done
            if ev.message:
                self.bar.set_postfix_str(ev.message[-40:], refresh=False)
            self.bar.refresh()
            return
        decile = int(10 * ev.done / ev.total) if ev.total else 0
        if decile != self.last_decile:
            self.last_decile = decile
            eta = f", {ev.eta_s:.0f} s left" if ev.eta_s is not None and ev.done < ev.total else ""
            count = f" {ev.done}/{ev.total}" if ev.total else ""
            print(f"[{ev.stage}]{count}{eta}", file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cli_progress() -> tuple[Progress, _TerminalSink]:
    sink = _TerminalSink()
    return Progress(sink), sink
