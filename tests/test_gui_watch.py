"""The GUI's live inspection mode ("Watch folder…") on a tiny real model: parts dropped into the
folder show up with their verdict, follow the threshold live, pause/resume and stop work, a
bad file is an error row, and the CSV log is written like ``lsfa watch --csv``."""

from __future__ import annotations

import csv
import shutil

import pytest

from core.watch import WATCH_COLUMNS
from lsfa_gui.state import NG, OK, UNCERTAIN

TINY = dict(size=96, n_train=4, n_validation=2, n_test_good=2, n_test_per_defect=1, defect_types=["crack"])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from core.cli import main
    from core.demo import generate_demo_dataset

    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("gui-watch")
    mp.setenv("LSFA_CACHE_DIR", str(tmp / "cache"))
    root = generate_demo_dataset(tmp / "demo", seed=3, categories=["cookie"], **TINY)
    model = tmp / "m.lsfa"
    assert main(["fit", str(root), "-c", "cookie", "-o", str(model), "--no-adapt", "--no-self-check",
                 "--image-size", "112", "--grid", "14", "--coreset", "0.25"]) == 0
    pngs = sorted((root / "cookie" / "test").glob("*/rgb/*.png"))
    yield model, [(p, p.parent.parent / "xyz" / (p.stem + ".tiff")) for p in pngs]
    mp.undo()


def drop(sample, folder, name):
    shutil.copy(sample[0], folder / f"{name}.png")
    shutil.copy(sample[1], folder / f"{name}.tiff")


def test_watch_folder_shows_each_new_part_with_its_verdict(qtbot, window, fitted, tmp_path):
    from core.model_io import load_model

    model_path, samples = fitted
    window._set_model(load_model(model_path), str(model_path))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log = tmp_path / "watch.csv"
    assert window.start_watch(str(inbox), str(log), settle_s=0.1, poll_s=0.02)
    assert window.watching and not window.docks["watch"].isHidden()
    st, panel = window.state, window.watch_panel

    drop(samples[0], inbox, "first")
    qtbot.waitUntil(lambda: len(st.entries) == 1, timeout=60_000)
    entry = st.entries[0]
    assert entry.name == "first" and entry.result is not None and st.current == 0
    assert window.image_view.header.text().count("first")  # the 2D view shows the newest part
    v = st.verdict(entry)
    assert v in (OK, NG) and panel.verdict_label.text() == v
    assert "1 part(s)" in panel.counts_label.text() and "yield" in panel.counts_label.text()

    # thresholds stay live: the verdict follows the slider, and the uncertain band
    score = entry.image_score
    st.set_thresholds(image=score + 1.0)
    assert panel.verdict_label.text() == OK and "yield 100.0 %" in panel.counts_label.text()
    st.set_thresholds(image=score - 1.0)
    assert panel.verdict_label.text() == NG
    st.set_uncertain_until(score + 1.0)
    assert panel.verdict_label.text() == UNCERTAIN and "1 UNCERTAIN" in window.browser.summary.text()
    band = window.histogram.band  # the band is shaded in the score histogram
    assert band.isVisible() and band.getRegion() == pytest.approx((score - 1.0, score + 1.0))
    st.set_uncertain_until(None)
    assert not band.isVisible() and panel.verdict_label.text() == NG

    # paused: a new part waits; resumed: it is scored
    panel.pause_button.click()
    assert panel.pause_button.text() == "Resume"
    drop(samples[1], inbox, "second")
    qtbot.wait(800)
    assert len(st.entries) == 1
    panel.pause_button.click()
    qtbot.waitUntil(lambda: len(st.entries) == 2, timeout=60_000)
    assert st.current == 1 and panel.part_label.text().startswith("second")

    # a corrupt file is an error row; the watch goes on
    (inbox / "bad.png").write_bytes(b"garbage")
    (inbox / "bad.tiff").write_bytes(b"garbage")
    qtbot.waitUntil(lambda: len(st.entries) == 3, timeout=60_000)
    assert panel.verdict_label.text() == "ERROR" and "1 error(s)" in panel.counts_label.text()
    drop(samples[2], inbox, "third")
    qtbot.waitUntil(lambda: len(st.entries) == 4, timeout=60_000)
    assert panel.recent.count() == 4 and panel.recent.item(0).text().split()[-1] == "third"

    assert window.model.thresholds.image != st.thresholds.image  # the open model itself is untouched
    assert window._watch_model.thresholds.image == st.thresholds.image  # the watch logs the live ones
    panel.stop_button.click()
    assert not window.watching and not panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: window.jobs.live_threads == 0, timeout=20_000)
    rows = list(csv.DictReader(log.open()))
    assert list(rows[0]) == WATCH_COLUMNS
    assert [r["name"] for r in rows] == ["first", "second", "bad", "third"]
    assert rows[2]["verdict"] == "SKIPPED" and rows[2]["error"]
    assert rows[0]["verdict"] in (OK, NG)
    assert float(rows[1]["image_threshold"]) == pytest.approx(score - 1.0, rel=1e-5)  # the live threshold


def test_watch_needs_a_model(window, tmp_path):
    assert not window.start_watch(str(tmp_path))
    assert not window.watching


def test_a_long_watch_keeps_the_newest_parts_and_whole_counts(qtbot, window, monkeypatch):
    from types import SimpleNamespace

    from core.watch import WatchRecord
    from lsfa_gui import watching
    from lsfa_gui._testing import synthetic_result

    monkeypatch.setattr(watching, "WATCH_KEEP", 3)
    monkeypatch.setattr(watching, "WATCH_TRIM", 2)
    window._set_model(SimpleNamespace(thresholds=SimpleNamespace(image=0.6, pixel=0.5), display_range=(0.1, 1.1)),
                      "/nonexistent/m.lsfa")
    window.watch_panel.set_watching(True, "/line")
    for i in range(9):
        if i == 1:
            window._on_watch_scored(WatchRecord({"name": "bad", "path": "/line/bad.png", "error": "corrupt"}))
            continue
        r = synthetic_result(i, "crack" if i % 3 == 0 else "good", size=32)
        window._on_watch_scored(WatchRecord({"name": r.name, "path": f"/line/{r.name}.png", "error": ""}, r))
    st, panel = window.state, window.watch_panel
    assert len(st.entries) <= 3 + 2 and st.current == len(st.entries) - 1 and panel.parts_seen == 9
    scores = [synthetic_result(i, "crack" if i % 3 == 0 else "good", size=32).image_score for i in range(9) if i != 1]
    ng = sum(s >= 0.6 for s in scores)
    assert panel.counts_label.text().startswith(f"9 part(s): {8 - ng} OK, {ng} NG, 1 error(s)")
    st.set_thresholds(image=100.0)  # the archived parts follow the threshold too
    assert panel.counts_label.text().startswith("9 part(s): 8 OK, 0 NG, 1 error(s)")
