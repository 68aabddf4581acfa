"""Live line inspection (core.watch, ``lsfa watch``): samples dropped into a folder are scored
once, in arrival order, after all their partner files settled; restarts skip what the CSV log
holds; bad files become error rows; the optional uncertain band gives OK / UNCERTAIN / NG."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.progress import Cancelled, Progress
from core.results import SampleResult, Thresholds
from core.thresholds import NG, OK, UNCERTAIN, check_band, verdict
from core.watch import WATCH_COLUMNS, FolderWatcher, WatchLog, sample_key, tally, watch

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(size=96, n_train=4, n_validation=2, n_test_good=3, n_test_per_defect=1, defect_types=["crack"])


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(arrivals):
    return [a.name for a in arrivals]


# ---------------------------------------------------------------------- the watcher alone (no model)
def test_samples_one_by_one_and_a_burst_in_arrival_order(tmp_path):
    clock = Clock()
    w = FolderWatcher(tmp_path, ("rgb", "xyz"), settle_s=0.5, clock=clock)
    assert w.poll() == []
    touch(tmp_path / "a.png"), touch(tmp_path / "a.tiff")
    assert w.poll() == []  # just appeared: not settled yet
    clock.t = 0.4
    assert w.poll() == []
    clock.t = 0.6
    assert names(w.poll()) == ["a"]
    clock.t = 5.0
    assert w.poll() == []  # reported once
    touch(tmp_path / "z.png"), touch(tmp_path / "z.tiff")  # a burst: z first, then b, m
    clock.t = 5.1
    w.poll()
    for n in ("b", "m"):
        touch(tmp_path / f"{n}.png"), touch(tmp_path / f"{n}.tiff")
    clock.t = 5.2
    assert w.poll() == []
    clock.t = 6.0
    assert names(w.poll()) == ["z", "b", "m"]  # arrival order, none dropped
    assert w.poll() == []


def test_partner_file_arriving_later_is_waited_for(tmp_path):
    clock = Clock()
    w = FolderWatcher(tmp_path, ("rgb", "xyz"), settle_s=0.5, clock=clock)
    touch(tmp_path / "p.png")
    for t in (0.0, 0.6, 1.0):
        clock.t = t
        assert w.poll() == []  # the image alone is not a complete RGB + xyz sample
    touch(tmp_path / "p.tiff")
    clock.t = 1.3
    assert w.poll() == []  # partner just arrived: settle first
    clock.t = 1.9
    got = w.poll()
    assert names(got) == ["p"] and got[0].ref is not None
    assert got[0].ref.rgb_path.name == "p.png" and got[0].ref.xyz_path.name == "p.tiff"
    clock.t = 9.0
    assert w.poll() == []


def test_a_file_still_growing_is_not_taken(tmp_path):
    clock = Clock()
    w = FolderWatcher(tmp_path, ("rgb",), settle_s=0.5, clock=clock)
    img = touch(tmp_path / "g.png", b"1")
    w.poll()
    for i, t in enumerate((0.4, 0.8, 1.2)):
        img.write_bytes(b"1" * (i + 2))  # still being written
        clock.t = t
        assert w.poll() == []
    clock.t = 1.8
    assert names(w.poll()) == ["g"]


def test_missing_partner_times_out_as_an_error(tmp_path):
    clock = Clock()
    w = FolderWatcher(tmp_path, ("rgb", "xyz"), settle_s=0.5, partner_timeout_s=3.0, clock=clock)
    touch(tmp_path / "lonely.png")
    w.poll()
    clock.t = 2.0
    assert w.poll() == []
    clock.t = 3.5
    (err,) = w.poll()
    assert err.ref is None and "missing point cloud" in err.error and "lonely.png" in err.error
    clock.t = 9.0
    assert w.poll() == []


def test_recursive_hidden_ignored_and_done(tmp_path):
    clock = Clock()
    touch(tmp_path / "sub" / "s.png")
    touch(tmp_path / ".tmp.png")  # hidden: a copy in progress
    touch(tmp_path / "maps" / "m.png")  # the maps folder: ignored
    touch(tmp_path / "old.png")
    touch(tmp_path / "top.png")
    touch(tmp_path / "top_mask.png")  # a mask is part of its sample, not a sample
    flat = FolderWatcher(tmp_path, ("rgb",), settle_s=0.0, clock=clock, done=[sample_key(tmp_path / "old.png")])
    assert names(flat.poll()) == ["top"]
    deep = FolderWatcher(tmp_path, ("rgb",), recursive=True, settle_s=0.0, clock=clock, ignore=[tmp_path / "maps"])
    got = deep.poll()
    assert sorted(names(got)) == ["old", "sub/s", "top"]
    top = next(a for a in got if a.name == "top")
    assert top.ref.mask_path.name == "top_mask.png"


def test_mvtec_style_type_folders_pair_across_rgb_and_xyz(tmp_path):
    clock = Clock()
    leaf = tmp_path / "good"
    touch(leaf / "rgb" / "000.png")
    w = FolderWatcher(tmp_path, ("rgb", "xyz"), recursive=True, settle_s=0.5, clock=clock)
    w.poll()
    clock.t = 1.0
    assert w.poll() == []  # the image waits for its cloud in ../xyz/
    touch(leaf / "xyz" / "000.tiff")
    touch(leaf / "gt" / "000.png")
    w.poll()
    clock.t = 2.0
    (a,) = w.poll()
    assert a.name == "good/rgb/000" and a.ref.xyz_path == leaf / "xyz" / "000.tiff"
    assert a.ref.mask_path == leaf / "gt" / "000.png"


def test_watch_log_appends_and_survives_a_cut_row(tmp_path):
    path = tmp_path / "log.csv"
    row = {c: "" for c in WATCH_COLUMNS}
    with WatchLog(path) as log:
        assert log.done == set()
        log.append({**row, "path": str(tmp_path / "a.png"), "name": "a", "verdict": OK})
        log.append({**row, "path": str(tmp_path / "b.png"), "name": "=b", "verdict": NG, "error": "two\nlines"})
    with open(path, "ab") as fh:  # a crash in the middle of the next row
        fh.write(b"2026-01-01,/x/c.png,c,0.5")
    log = WatchLog(path)
    assert log.done == {sample_key(tmp_path / "a.png"), sample_key(tmp_path / "b.png")} and log.rows_before == 2
    log.append({**row, "path": str(tmp_path / "d.png"), "name": "d", "verdict": OK})
    log.close()
    rows = list(csv.DictReader(path.open()))
    assert [r["name"] for r in rows] == ["a", "'=b", "d"] and rows[1]["error"] == "two lines"
    other = tmp_path / "other.csv"
    other.write_text("path,name\n")
    from core.errors import UserError

    with pytest.raises(UserError, match="not an lsfa watch log"):
        WatchLog(other)


# ---------------------------------------------------------------------- uncertain band
def test_uncertain_band_verdicts():
    assert verdict(0.4, 0.5) == OK and verdict(0.5, 0.5) == NG  # no band: unchanged
    assert [verdict(s, 0.5, 0.8) for s in (0.49, 0.5, 0.79, 0.8, 2.0)] == [OK, UNCERTAIN, UNCERTAIN, NG, NG]
    assert verdict(0.6, 0.5, 0.5) == NG and verdict(0.6, 0.5, 0.3) == NG  # an empty band is no band
    r = SampleResult("s", None, 0.7, np.zeros((2, 2), np.float32))
    assert r.verdict(Thresholds(0.5, 0.1)) == NG and r.verdict(Thresholds(0.5, 0.1, uncertain_until=0.8)) == UNCERTAIN
    thr = Thresholds(0.5, 0.1, "user", 0.8)
    assert Thresholds.from_dict(thr.to_dict()) == thr and "uncertain_until" not in Thresholds(1, 2).to_dict()
    with pytest.raises(ValueError):
        check_band(0.8, 0.5)
    t = tally([OK, OK, NG, UNCERTAIN, "SKIPPED"])
    assert (t.ok, t.ng, t.uncertain, t.errors, t.scored) == (2, 1, 1, 1, 4) and t.yield_ == 0.5
    assert "yield 50.0 %" in t.summary() and "1 UNCERTAIN" in t.summary()


# ---------------------------------------------------------------------- with a real model
@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("lsfa-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSFA_CACHE_DIR", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def fitted(cache_dir, tmp_path_factory):
    """(model path, [(png, tiff)] test samples) of a tiny RGB + xyz model."""
    from core.cli import main
    from core.demo import generate_demo_dataset

    tmp = tmp_path_factory.mktemp("watch")
    root = generate_demo_dataset(tmp / "demo", seed=5, categories=["cookie"], **TINY)
    model = tmp / "m.lsfa"
    code = main(["fit", str(root), "-c", "cookie", "-o", str(model), "--no-adapt", "--no-self-check",
                 "--image-size", "112", "--grid", "14", "--coreset", "0.25"])
    assert code == 0
    samples = []
    for kind in ("good", "crack"):
        for png in sorted((root / "cookie" / "test" / kind / "rgb").glob("*.png")):
            samples.append((png, png.parent.parent / "xyz" / (png.stem + ".tiff")))
    assert len(samples) >= 4
    return model, samples


def drop(sample, folder: Path, name: str, gap_s: float = 0.0, background: bool = False):
    """Copy a sample's image, then (``gap_s`` later; in a timer thread if ``background``) its cloud."""
    png, tiff = sample
    shutil.copy(png, folder / f"{name}.png")
    if background:
        timer = threading.Timer(gap_s, shutil.copy, (tiff, folder / f"{name}.tiff"))
        timer.start()
        return timer
    if gap_s:
        time.sleep(gap_s)
    shutil.copy(tiff, folder / f"{name}.tiff")


def run_watch(model, folder, actions, n_records, log=None, timeout=120, **kw):
    """Run core.watch.watch; ``actions``: (n, fn) pairs, fn is called at the first idle poll
    after n records came (dropping files). Stops after ``n_records`` records; returns them."""
    progress = Progress()
    actions = list(actions)
    records = []
    t0 = time.monotonic()

    def idle():
        while actions and len(records) >= actions[0][0]:
            actions.pop(0)[1]()
        if time.monotonic() - t0 > timeout:
            progress.cancel()

    with pytest.raises(Cancelled):
        for rec in watch(model, folder, settle_s=0.15, poll_s=0.02, progress=progress, on_idle=idle,
                         done=log.done if log else (), **kw):
            records.append(rec)
            if log:
                log.append(rec.row)
            if len(records) >= n_records:
                progress.cancel()
    return records


def test_watch_scores_each_sample_once_in_order_errors_and_restart(fitted, tmp_path):
    from core.model_io import load_model

    model_path, samples = fitted
    model = load_model(model_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    csv_path = tmp_path / "log.csv"

    def burst():
        for i in (2, 3):
            drop(samples[i], inbox, f"b{i}")

    actions = [
        (0, lambda: drop(samples[0], inbox, "one")),
        (1, lambda: drop(samples[1], inbox, "late_partner", gap_s=0.3, background=True)),  # partner 300 ms later
        (2, lambda: touch(inbox / "broken.png", b"not a png") and touch(inbox / "broken.tiff", b"nor a tiff")),
        (3, burst),
    ]
    log = WatchLog(csv_path)
    recs = run_watch(model, inbox, actions, n_records=5, log=log)
    log.close()
    assert [r.row["name"] for r in recs] == ["one", "late_partner", "broken", "b2", "b3"]
    broken = recs[2]
    assert broken.result is None and broken.row["verdict"] == "SKIPPED" and "readable" in broken.row["error"]
    assert broken.row["path"].endswith("broken.png")
    for r in recs[:2] + recs[3:]:
        assert r.result is not None and r.row["verdict"] in (OK, NG) and r.row["error"] == ""
        assert r.result.xyz is not None  # scored with its partner file
        assert r.row["verdict"] == verdict(r.result.image_score, model.thresholds.image)

    # stopped: one more part arrives, then the watch restarts on the same log
    drop(samples[0], inbox, "while_stopped")
    log = WatchLog(csv_path)
    assert log.rows_before == 5
    again = run_watch(model, inbox, [(1, lambda: drop(samples[1], inbox, "after"))],
                      n_records=2, log=log)
    log.close()
    assert [r.row["name"] for r in again] == ["while_stopped", "after"]
    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0]) == WATCH_COLUMNS
    assert [r["name"] for r in rows] == ["one", "late_partner", "broken", "b2", "b3", "while_stopped", "after"]
    assert len({r["path"] for r in rows}) == len(rows)  # nothing scored twice


def test_a_queued_burst_is_scored_ahead_in_order_with_a_bad_file_and_a_pause(fitted, tmp_path):
    """A backlog is read ahead in a background thread (core.prefetch): the same scores as one by
    one, in arrival order, a broken sample in the middle is its error row, and a pause taken
    mid-burst holds the rest until it is lifted."""
    from core.data.folder import ref_for_file
    from core.model_io import load_model

    model_path, samples = fitted
    model = load_model(model_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, name in enumerate(["a", "b", "c", "d"]):  # found by the same poll: queued by name
        if name == "b":
            touch(inbox / "b.png", b"not a png"), touch(inbox / "b.tiff", b"nor a tiff")
        else:
            drop(samples[i], inbox, name)
    paused, polls, held = [False], [], []
    progress = Progress()

    def idle():
        polls.append(1)
        if paused[0] and len(polls) >= 5:
            paused[0] = False

    records = []
    with pytest.raises(Cancelled):
        for rec in watch(model, inbox, settle_s=0.05, poll_s=0.02, progress=progress,
                         paused=lambda: paused[0], on_idle=idle):
            records.append(rec)
            if len(records) == 1:
                reading_ahead = any(t.name.startswith("lsfa-prefetch") for t in threading.enumerate())
                paused[0] = True  # paused with b, c, d queued (b and maybe c already read ahead)
                polls.clear()
            elif len(records) == 2:
                held.append(len(polls))
            if len(records) == 4:
                progress.cancel()
    assert [r.row["name"] for r in records] == ["a", "b", "c", "d"]
    assert reading_ahead and not any(t.name.startswith("lsfa-prefetch") for t in threading.enumerate())
    assert held == [5]  # nothing more was scored while paused
    assert records[1].result is None and records[1].row["verdict"] == "SKIPPED"
    for r in (records[0], records[2], records[3]):
        alone = model.score(ref_for_file(Path(r.row["path"])).load())
        assert r.result.image_score == alone.image_score
        assert np.array_equal(r.result.anomaly_map, alone.anomaly_map)


def test_watch_uncertain_band_and_pause(fitted, tmp_path):
    from core.model_io import load_model

    model_path, samples = fitted
    model = load_model(model_path)
    inbox = tmp_path / "in"
    inbox.mkdir()
    for i in range(3):
        drop(samples[i], inbox, f"s{i}")
    paused = [True]
    polls = []

    def idle():
        polls.append(1)
        if len(polls) > 15:
            paused[0] = False

    progress = Progress()
    scored_while_paused = []
    with pytest.raises(Cancelled):
        for rec in watch(model, inbox, settle_s=0.05, poll_s=0.02, progress=progress,
                         paused=lambda: paused[0], on_idle=idle):
            scored_while_paused.append(len(polls) <= 15)
            if len(scored_while_paused) == 3:
                progress.cancel()
    assert scored_while_paused == [False] * 3  # nothing scored while paused, all three after

    scores = []
    inbox2 = tmp_path / "in2"
    inbox2.mkdir()
    for i in range(4):
        drop(samples[i], inbox2, f"t{i}")
    recs = run_watch(model, inbox2, [], n_records=4)
    scores = sorted(r.result.image_score for r in recs)
    low, high = (scores[0] + scores[1]) / 2, (scores[2] + scores[3]) / 2
    model.thresholds.image, model.thresholds.uncertain_until = low, high
    inbox3 = tmp_path / "in3"
    inbox3.mkdir()
    for i in range(4):
        drop(samples[i], inbox3, f"u{i}")
    recs = run_watch(model, inbox3, [], n_records=4)
    by_score = sorted((r.result.image_score, r.row["verdict"]) for r in recs)
    assert [v for _s, v in by_score] == [OK, UNCERTAIN, UNCERTAIN, NG]
    assert all(r.row["uncertain_until"] == f"{high:.6g}" for r in recs)


def start_cli_watch(model_path, inbox, log, cache_dir, cwd, *extra):
    """``python -m core watch`` on ``inbox`` with the CSV log ``log``, as a subprocess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), LSFA_CACHE_DIR=str(cache_dir), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "core", "watch", str(model_path), str(inbox), "--csv", str(log), *extra,
         "--settle", "0.2", "--poll", "0.05"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test run started in the background inherits SIGINT ignored (POSIX shells do that to
        # `cmd &`), and Python then installs no Ctrl-C handler: give the watch the default one
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def csv_rows(log) -> list[dict]:
    return list(csv.DictReader(log.open())) if log.is_file() else []


def wait_for_rows(proc, log, n: int, deadline: float) -> None:
    """Until the log has ``n`` rows (or the watch ended, or the deadline passed)."""
    while len(csv_rows(log)) < n and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]


def stop_cli_watch(proc, sig) -> str:
    """Send ``sig``; the watch must end with exit status 0. Returns its stderr."""
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def test_cli_watch_end_to_end_stopped_by_ctrl_c(fitted, cache_dir, tmp_path):
    model_path, samples = fitted
    inbox, maps, log = tmp_path / "inbox", tmp_path / "maps", tmp_path / "out" / "log.csv"
    inbox.mkdir()
    drop(samples[0], inbox, "first")  # already there when the watch starts
    proc = start_cli_watch(model_path, inbox, log, cache_dir, tmp_path, "--maps", str(maps))
    try:
        deadline = time.monotonic() + 180
        wait_for_rows(proc, log, 1, deadline)
        drop(samples[1], inbox, "second", gap_s=0.3)
        touch(inbox / "bad.png", b"garbage"), touch(inbox / "bad.tiff", b"garbage")
        wait_for_rows(proc, log, 3, deadline)
        err = stop_cli_watch(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
    got = csv_rows(log)
    assert [r["name"] for r in got] == ["first", "second", "bad"]
    assert list(got[0]) == WATCH_COLUMNS and got[0]["timestamp"] and got[2]["verdict"] == "SKIPPED"
    assert "first  " in err and "second  " in err  # one line per part
    assert "stopped: 3 part(s)" in err and "1 error(s)" in err and "yield" in err
    assert sorted(p.name for p in maps.glob("*.png")) == ["first.png", "second.png"]


def test_cli_watch_stopped_by_sigterm_gives_the_summary(fitted, cache_dir, tmp_path):
    """A service manager stops the watch with SIGTERM: the same summary and exit status 0 as
    Ctrl-C, the CSV row of the part scored before is there."""
    model_path, samples = fitted
    inbox, log = tmp_path / "inbox", tmp_path / "log.csv"
    inbox.mkdir()
    drop(samples[0], inbox, "first")
    proc = start_cli_watch(model_path, inbox, log, cache_dir, tmp_path)
    try:
        wait_for_rows(proc, log, 1, time.monotonic() + 180)
        err = stop_cli_watch(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [r["name"] for r in csv_rows(log)] == ["first"]
    assert "stopped: 1 part(s)" in err


def test_cli_score_uncertain_band(fitted, capsys, tmp_path):
    from core.cli import main

    model_path, samples = fitted
    pngs = [str(s[0]) for s in samples[:4]]
    assert main(["score", str(model_path), *pngs]) == 0
    base = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert all(r["uncertain_until"] == "" for r in base)
    scores = sorted(float(r["image_score"]) for r in base)
    low, high = (scores[0] + scores[1]) / 2, (scores[2] + scores[3]) / 2
    assert main(["score", str(model_path), *pngs, "--uncertain", str(low), str(high)]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert sorted((float(r["image_score"]), r["verdict"]) for r in rows)[1][1] == UNCERTAIN
    assert sorted(r["verdict"] for r in rows) == sorted([OK, UNCERTAIN, UNCERTAIN, NG])
    assert main(["score", str(model_path), *pngs, "--uncertain", "2", "1"]) == 2
    assert "LOW < HIGH" in capsys.readouterr().err


def test_cli_watch_user_errors(fitted, capsys, tmp_path):
    from core.cli import main

    model_path, _samples = fitted
    assert main(["watch", str(model_path), str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["watch", str(model_path), str(tmp_path), "--maps", str(tmp_path)]) == 2
    assert "must not be the watched folder" in capsys.readouterr().err
    (tmp_path / "score.csv").write_text("path,name\n")
    assert main(["watch", str(model_path), str(tmp_path), "--csv", str(tmp_path / "score.csv")]) == 2
    assert "not an lsfa watch log" in capsys.readouterr().err
    assert main(["watch", str(model_path), str(tmp_path), "--uncertain", "1", "1"]) == 2
