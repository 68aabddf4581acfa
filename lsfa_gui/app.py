"""Application entry point: ``main.py [PATH] [--demo] [--screenshot OUT.png]``."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

BANNER = "LSFA Inspector: inspect RGB + 3D anomaly detection results, tune thresholds live."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lsfa-inspector", description=BANNER)
    p.add_argument("path", nargs="?", help="a dataset folder, a .lsfa model file, or a sample file to open")
    p.add_argument("--demo", action="store_true", help="generate (once) and score the built-in demo data")
    p.add_argument("--model", help="a .lsfa model file to open together with PATH")
    p.add_argument("--screenshot", metavar="PNG", help="after scoring, save the whole window to PNG and quit")
    p.add_argument("--screenshot-timeout", type=float, default=900.0, metavar="S",
                   help="give up waiting for results after S seconds (the screenshot is still saved)")
    p.add_argument("--no-3d", action="store_true", help="do not create the OpenGL 3D view")
    return p.parse_args(argv)


ENGINE_MODULES = (
    "timm", "faiss", "scipy.ndimage", "sklearn.metrics",
    "core.pipeline", "core.features.registry", "core.scoring.memory_bank",
    "core.features.surface",  # the default 3D features: numba and llvmlite (~0.3 s, one GIL hold)
)


def preload_engine() -> float:
    """Import the engine's heavy modules now (seconds taken). Done on the UI thread before the
    window opens: imports hold Python's GIL for 100-450 ms at a time, which would freeze the
    window if they first happened in the worker thread during a fit."""
    import importlib
    import time

    t0 = time.perf_counter()
    for name in ENGINE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # a missing optional part only matters when a job needs it
            pass
    return time.perf_counter() - t0


def showcase_index(state) -> int:
    """A sample worth showing: the highest-scoring NG defect with RGB and xyz, else the top score."""
    best, best_key = -1, None
    for i, e in enumerate(state.entries):
        r = e.result
        if r is None:
            continue
        key = (
            state.verdict(e) == "NG",
            bool(e.is_defect),
            getattr(r, "xyz", None) is not None and getattr(r, "rgb", None) is not None,
            e.label in ("crack", "hole"),
            float(e.image_score),
        )
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


class ScreenshotTaker:
    """Waits for the first scoring run (and its metrics), shows a good sample, saves, quits."""

    def __init__(self, window, path: str, timeout_s: float):
        from PySide6.QtCore import QTimer

        self.window = window
        self.path = Path(path)
        self.done = False
        self.exit_code = 0
        window.metrics_updated.connect(self._on_ready)
        window.jobs.failed.connect(lambda *_: self._fail())
        self.timer = QTimer(window)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._fail)
        self.timer.start(int(timeout_s * 1000))

    def _fail(self):
        self.exit_code = 1
        self._shoot()

    def _on_ready(self):
        from PySide6.QtCore import QTimer

        idx = showcase_index(self.window.state)
        if idx >= 0:
            self.window.state.set_current(idx)
        QTimer.singleShot(400, self._shoot)

    def _shoot(self):
        from PySide6.QtWidgets import QApplication

        if self.done:
            return
        self.done = True
        app = QApplication.instance()
        for _ in range(5):
            app.processEvents()
        plotter = self.window.cloud_view.plotter
        if plotter is not None:
            plotter.render()
            app.processEvents()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        shot = self.window.grab()
        self.window.cloud_view.paint_scene_over(shot, self.window)
        ok = shot.save(str(self.path))
        print(f"screenshot {'saved to' if ok else 'FAILED:'} {self.path}", flush=True)
        if not ok:
            self.exit_code = 1
        self.window.close()
        app.exit(self.exit_code)


def show_splash(app):
    """A splash shown before the heavy imports (torch, timm, faiss, pyvista): only Qt is loaded
    by then, so the first thing on screen comes in well under a second."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPixmap
    from PySide6.QtWidgets import QSplashScreen

    pix = QPixmap(420, 120)
    pix.fill(QColor("#37474f"))
    splash = QSplashScreen(pix)

    def say(text: str) -> None:
        splash.showMessage(f"LSFA Inspector\n\n{text}", Qt.AlignmentFlag.AlignCenter, QColor("white"))
        app.processEvents()

    splash.say = say
    splash.show()
    say("Starting…")
    return splash


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LSFA Inspector")
    app.setOrganizationName("LSFA")
    app.setStyle("Fusion")
    splash = show_splash(app)
    splash.say("Loading the engine (torch, timm, faiss)…")
    from core import tv_shim

    tv_shim.install()
    preload_engine()
    splash.say("Opening the window…")

    from lsfa_gui.main_window import MainWindow

    window = MainWindow(enable_3d=False if args.no_3d else None)

    def excepthook(exc_type, exc, tb):  # an unexpected error becomes a notification, not a crash
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        print(details, file=sys.stderr)
        try:
            window.log(f"Unexpected error: {exc_type.__name__}: {exc}", "error", details)
        except Exception:  # noqa: BLE001
            pass

    sys.excepthook = excepthook
    window.show()
    splash.finish(window)
    shooter = ScreenshotTaker(window, args.screenshot, args.screenshot_timeout) if args.screenshot else None

    from PySide6.QtCore import QTimer

    if args.demo:
        QTimer.singleShot(0, window.start_demo)
    else:
        if args.path:
            QTimer.singleShot(0, lambda: window.open_path(args.path))
        if args.model:  # after the dataset is listed, load the model; it then scores the samples
            QTimer.singleShot(0, lambda: window.queue_after_job(lambda: window.open_model(args.model)))
        if shooter is not None and not args.path and not args.model:
            QTimer.singleShot(800, shooter._shoot)
    code = app.exec()
    return shooter.exit_code if shooter is not None else code


if __name__ == "__main__":
    sys.exit(main())
