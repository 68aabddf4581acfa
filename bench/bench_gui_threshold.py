"""How long one threshold change takes in the full window (target: <= 30 ms).

Two figures per case: ``*_recompute_only_ms`` (state, verdicts, outlines and 3D greying from the
cached maps, no painting) and ``*_update_ms`` (until the window has repainted and the 3D view
has re-rendered; with software OpenGL (llvmpipe) the render dominates).

Builds the main window with 100 scored synthetic samples (224×224 maps, clouds of ~50k valid points),
selects a defective one and moves the pixel and the image threshold through 40 values each,
timing the synchronous update: state -> browser verdicts, RGB outline, 3D greying + render,
histogram line, confusion matrix. Prints JSON.

``--original HxW`` (e.g. ``800x600``): the maps are placed on original images of that size
(core.grid_map) and the selected samples are loaded at it, so the 2D view draws the map carried
back to the original image and the table counts regions in original pixels, as on real data.

Run under an X display for the 3D part (``xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python
bench/bench_gui_threshold.py``); without one the 3D view is skipped and the JSON says so.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def stats(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {
        "median": round(statistics.median(ms), 2),
        "p95": round(ms[int(0.95 * (len(ms) - 1))], 2),
        "max": round(ms[-1], 2),
        "n": len(ms),
    }


def main() -> int:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from types import SimpleNamespace

    from lsfa_gui._testing import synthetic_result
    from lsfa_gui.main_window import MainWindow
    from lsfa_gui.state import SampleEntry

    tmp = tempfile.mkdtemp()
    no_3d = "--no-3d" in sys.argv
    win = MainWindow(settings=QSettings(os.path.join(tmp, "s.ini"), QSettings.Format.IniFormat), enable_3d=False if no_3d else None)
    win.show()
    labels = ["good"] * 70 + ["crack"] * 30
    # even samples: the cloud fills the frame (50,176 valid points); odd: a part like the demo's (~14k)
    results = [synthetic_result(i, lab, size=224, part_radius=0.72 if i % 2 == 0 else 0.3) for i, lab in enumerate(labels)]
    original = _original_size()
    if original is not None:
        from core.grid_map import GridMap

        for r in results:
            r.grid = GridMap.for_shape(*original, 224)
    win.state.set_entries([SampleEntry(r.name, "test", r.label) for r in results])
    win._set_model(SimpleNamespace(thresholds=SimpleNamespace(image=0.6, pixel=0.5), display_range=(0.1, 1.1)), None)
    for i, r in enumerate(results):
        win.state.set_result(i, r)
    def settle():
        t_end = time.perf_counter() + 0.5
        while time.perf_counter() < t_end:
            app.processEvents()

    def timed(fn, values):
        """ms from the change to the end of the event-loop turn that redraws (3D render included)."""
        out = []
        for v in values:
            t0 = time.perf_counter()
            fn(v)
            app.processEvents()  # runs the coalesced 3D render and the repaints
            out.append((time.perf_counter() - t0) * 1000)
        return out

    def timed_sync(fn, values):
        """ms of the recompute alone (state, verdicts, outline, greying; no painting/rendering)."""
        out = []
        for v in values:
            t0 = time.perf_counter()
            fn(v)
            out.append((time.perf_counter() - t0) * 1000)
            app.processEvents()
        return out

    pixel_values = [0.3 + 0.6 * k / 39 for k in range(40)]
    image_values = [0.2 + 0.8 * k / 39 for k in range(40)]
    cv = win.cloud_view
    cases = {}
    for label, index in (("full_frame_cloud", 80), ("demo_like_cloud", 81)):
        win.state.set_current(index)
        if original is not None:  # as lsfa_gui.originals does once the files are read
            win.state.set_original(win.state.entries[index], _original_sample(results[index], original))
        settle()
        timed(lambda v: win.state.set_thresholds(pixel=v), pixel_values[:5])  # warm-up
        case = {
            "cloud_points": int(cv.points.shape[0]) if cv.points is not None else 0,
            "pixel_recompute_only_ms": stats(timed_sync(lambda v: win.state.set_thresholds(pixel=v), pixel_values)),
            "pixel_threshold_update_ms": stats(timed(lambda v: win.state.set_thresholds(pixel=v), pixel_values)),
            "image_threshold_update_ms": stats(timed(lambda v: win.state.set_thresholds(image=v), image_values)),
            "pixel_slider_drag_ms": stats(timed(win.threshold_panel.pixel_row.slider.setValue, list(range(100, 900, 20)))),
        }
        if cv.plotter is not None:
            case["render_3d_only_ms"] = stats(timed(lambda _v: cv.plotter.render(), range(20)))
        cases[label] = case
    has_3d = cv.plotter is not None and not cv.showing_notice
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out = {
        "benchmark": "gui_threshold_update",
        "platform": app.platformName(),
        "map_size": list(results[80].anomaly_map.shape),
        "original_size": list(original) if original is not None else None,
        "samples_in_browser": len(results),
        "3d_rendered": has_3d,
        "3d_style": cv.style_combo.currentText(),
        **cases,
        "cpu_count": os.cpu_count(),
        "load_average_1min": load,
        "target_ms": 30,
    }
    win.close()
    print(json.dumps(out, indent=1))
    return 0


def _original_size() -> tuple[int, int] | None:
    """(height, width) from ``--original HxW``, or None."""
    if "--original" not in sys.argv:
        return None
    h, w = sys.argv[sys.argv.index("--original") + 1].lower().split("x")
    return int(h), int(w)


def _original_sample(result, shape):
    """A loaded sample of ``shape`` for a synthetic result: its RGB and cloud carried back by
    nearest neighbour (what the image view draws under the map)."""
    from core.data.sample import Sample

    g = result.grid
    rgb = None if result.rgb is None else g.mask_to_original(result.rgb)
    xyz = None if result.xyz is None else g.mask_to_original(result.xyz)
    mask = None if result.mask is None else g.mask_to_original(result.mask)
    return Sample(result.name, rgb, xyz, mask, result.label)


if __name__ == "__main__":
    sys.exit(main())
