"""The GUI's background jobs on the real engine: a small model fitted on tiny generated data.

One tiny demo dataset and one fit are shared by the module (2-core machines): the first test
fits through the worker (progress, streamed results), the others reuse the saved model file.
"""

from pathlib import Path

import numpy as np
import pytest

from tests._jobs import drive

pytestmark = pytest.mark.slow

TINY = dict(size=96, n_train=4, n_validation=3, n_test_good=2, n_test_per_defect=1, defect_types=["crack", "bump"])


def tiny_config():
    from core.config import FitConfig

    return FitConfig(image_size=112, grid=14, coreset_ratio=0.25, batch_size=4)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private LSFA cache dir (demo data, model, preprocessing) for this module."""
    path = tmp_path_factory.mktemp("lsfa-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSFA_CACHE_DIR", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def fitted(cache, qapp):
    """Run the demo job once through the JobRunner; returns (messages, progress events, result)."""
    from pytestqt.qtbot import QtBot

    from lsfa_gui import tasks
    from lsfa_gui.runner import JobRunner

    runner = JobRunner()
    events, partials, done, failed = [], [], [], []
    runner.progressed.connect(lambda rid, ev: events.append(ev))
    runner.partial.connect(lambda rid, msg: partials.append(msg))
    runner.succeeded.connect(lambda rid, res: done.append(res))
    runner.failed.connect(lambda rid, msg, details: failed.append(msg + details))
    runner.start("Demo", tasks.demo_job(counts=TINY, config=tiny_config()))
    QtBot(None).waitUntil(lambda: bool(done or failed), timeout=600_000)
    runner.shutdown(10000)
    assert not failed, failed[0]
    return partials, events, done[0]


def test_demo_job_fits_streams_results_and_saves_the_model(fitted, cache):
    from lsfa_gui import tasks

    partials, events, result = fitted
    kinds = [type(m).__name__ for m in partials]
    assert kinds.index("DatasetOpened") < kinds.index("ModelReady") < kinds.index("SampleScored")
    listing = next(m for m in partials if isinstance(m, tasks.DatasetOpened)).listing
    scored = [m for m in partials if isinstance(m, tasks.SampleScored)]
    assert len(scored) == len(listing.refs) == result.scored == 2 + 2  # 2 good + 1 crack + 1 bump
    assert sorted(m.index for m in scored) == list(range(len(listing.refs)))
    r = scored[0].result
    assert r.anomaly_map.shape == (112, 112) and r.xyz.shape == (112, 112, 3) and np.isfinite(r.image_score)
    stages = {e.stage for e in events}
    assert "Scoring" in stages and len(stages) >= 3  # generation, fitting stages, scoring
    assert tasks.demo_model_path().is_file() and result.model_path == str(tasks.demo_model_path())
    ready = next(m for m in partials if isinstance(m, tasks.ModelReady))
    assert ready.fitted and ready.model.thresholds.image > 0


def test_cancel_stops_a_fit_and_no_late_results_arrive(qtbot, fitted, tmp_path):
    from lsfa_gui import tasks
    from lsfa_gui.runner import JobRunner

    root = tasks.demo_dir()
    runner = JobRunner()
    events, results = [], []
    runner.progressed.connect(lambda rid, ev: events.append(ev))
    runner.partial.connect(lambda rid, msg: results.append(msg))
    runner.succeeded.connect(lambda rid, res: results.append(res))
    runner.start("Fit", tasks.fit_job(root, tasks.DEMO_CATEGORY, tmp_path / "m.lsfa", tiny_config()))
    qtbot.waitUntil(lambda: any(e.stage != "Loading model" for e in events), timeout=60_000)
    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        runner.cancel()
    qtbot.waitUntil(lambda: runner.live_threads == 0, timeout=60_000)  # the thread really stopped
    assert not any(isinstance(m, tasks.ModelReady) for m in results)
    assert not (tmp_path / "m.lsfa").exists()  # nothing half-written


def test_errors_arrive_as_messages(qtbot, fitted, tmp_path):
    import shutil

    from lsfa_gui import tasks
    from lsfa_gui.runner import JobRunner

    runner = JobRunner()
    with qtbot.waitSignal(runner.failed, timeout=30_000) as blocker:
        runner.start("Open", tasks.load_model_job(tmp_path / "broken.lsfa"))
    assert "broken.lsfa" in blocker.args[1] and blocker.args[2] == ""  # a user error: no traceback
    # a sample the model cannot score (RGB only for an RGB+xyz model) is reported, the job goes on
    from core.data.dataset import load_inputs

    model = next(m for m in fitted[0] if isinstance(m, tasks.ModelReady)).model
    listing = next(m for m in fitted[0] if isinstance(m, tasks.DatasetOpened)).listing
    refs = listing.refs
    lonely = tmp_path / "lonely.png"  # an RGB image with no point cloud beside it
    shutil.copy(refs[0].rgb_path, lonely)
    rgb_only = load_inputs([lonely])
    assert rgb_only[0].xyz_path is None
    msgs = []
    runner.partial.connect(lambda rid, m: msgs.append(m))
    reqs = [tasks.SampleRequest(0, rgb_only[0]), tasks.SampleRequest(1, refs[0])]
    with qtbot.waitSignal(runner.succeeded, timeout=120_000) as blocker:
        runner.start("Score", tasks.score_job(model, reqs))
    assert blocker.args[1].scored == 1 and blocker.args[1].failed == 1
    failed = [m for m in msgs if isinstance(m, tasks.SampleFailed)]
    assert failed and failed[0].index == 0 and "point cloud" in failed[0].message
    runner.shutdown(5000)


def test_window_opens_the_cached_demo_tunes_and_saves_thresholds(qtbot, fitted, tmp_path):
    from PySide6.QtCore import QSettings

    from core.model_io import load_model
    from lsfa_gui import tasks
    from lsfa_gui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(w.metrics_updated, timeout=300_000):
            w.start_demo(counts=TINY, config=tiny_config())  # data and model are cached: load + score
        st = w.state
        assert len(st.scored) == len(st.entries) == 4
        model = load_model(tasks.demo_model_path())
        assert st.thresholds.image == pytest.approx(model.thresholds.image)
        assert st.colour_range == pytest.approx(tuple(model.display_range))
        assert w.metrics.metric_labels["i_auroc"].text() not in ("–", "")
        assert st.current >= 0 and w.image_view.base_item.image is not None
        # tune and save the thresholds into the model file, then read them back
        new_image = float(np.median([e.image_score for e in st.entries]))
        w.threshold_panel.image_row.spin.setValue(new_image)
        with qtbot.waitSignal(w.aux.succeeded, timeout=60_000):
            w.threshold_panel.save_button.click()
        again = load_model(tasks.demo_model_path())
        assert again.thresholds.image == pytest.approx(st.thresholds.image, abs=1e-4)
        assert again.thresholds.pixel == pytest.approx(st.thresholds.pixel, abs=1e-4)
    finally:
        w.close()


def test_reopen_dataset_and_model_like_main_py_path_and_model(qtbot, fitted, tmp_path):
    from PySide6.QtCore import QSettings

    from core.model_io import load_model
    from lsfa_gui import tasks
    from lsfa_gui.main_window import MainWindow

    saved = load_model(tasks.demo_model_path()).thresholds
    w = MainWindow(settings=QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(w.scoring_finished, timeout=300_000):
            w.open_path(str(tasks.demo_dir()))  # the dataset first: listed, nothing scored (no model)
            w.queue_after_job(lambda: w.open_model(str(tasks.demo_model_path())))  # then the model scores it
        assert len(w.state.scored) == len(w.state.entries) == 4
        assert w.state.thresholds.image == pytest.approx(saved.image)
        assert w.state.model.path == str(tasks.demo_model_path())
        assert "demo" in w.windowTitle()
    finally:
        w.close()


def test_open_dataset_with_chosen_settings_fits_fresh_instead_of_reusing(fitted, cache):
    """A FitConfig chosen in the Fit settings dialog is honoured even when a cached model exists."""
    from dataclasses import replace

    from lsfa_gui import tasks

    listing = next(m for m in fitted[0] if isinstance(m, tasks.DatasetOpened)).listing
    cached = tasks.fitted_model_path(listing.root, listing.category)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"stale")  # a cached file that load_or_fit would try (and report) first
    config = replace(tiny_config(), modalities="xyz", adapt=False)
    job = tasks.open_dataset_job(listing.root, listing.category, model=None, fit_if_needed=True, config=config)
    messages, out = drive(job)
    ready = next(m for m in messages if isinstance(m, tasks.ModelReady))
    assert ready.fitted and ready.model.modalities == ("xyz",)
    assert not any("Cached model unusable" in getattr(m, "text", "") for m in messages)
    # the fitted model goes beside the dataset (the cached file is neither read nor overwritten)
    assert Path(ready.path).parent == Path(listing.root) and Path(ready.path).suffix == ".lsfa"
    assert Path(ready.path).is_file() and cached.read_bytes() == b"stale"
    assert any(getattr(m, "text", "") == f"Model saved beside the dataset: {ready.path}" for m in messages)
    assert out.scored == len(listing.refs)


def test_demo_first_model_is_fitted_with_frozen_features(monkeypatch, tmp_path):
    """A first launch fits the demo model without adaptor training (scored samples in about a
    minute) and says so; an explicit config (Fit… dialog) is passed through unchanged."""
    from core.config import FitConfig
    from core.progress import Progress
    from lsfa_gui import tasks

    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path))
    seen = []

    def fake_load_or_fit(root, category, path, progress, config=None, save_path=None):
        seen.append(config)
        raise RuntimeError("stop after choosing the config")
        yield  # a generator, as the real one

    monkeypatch.setattr(tasks, "load_or_fit", fake_load_or_fit)
    notes = []
    for config in (None, FitConfig(adapt=True)):
        gen = tasks.demo_job(counts=TINY, config=config)(Progress())
        with pytest.raises(RuntimeError, match="stop"):
            for message in gen:
                notes.append(getattr(message, "text", ""))
    assert seen[0].adapt is False and seen[1].adapt is True
    assert sum("frozen features" in n for n in notes) == 1


def test_a_cached_model_fitted_with_other_settings_is_fitted_anew(fitted, cache, tmp_path):
    """A model this app cached is reused only when it was fitted with the settings asked for now,
    so an upgrade's new defaults (or a changed demo config) reach it; its own file is the cache's."""
    import shutil
    from dataclasses import replace

    from lsfa_gui import tasks

    listing = next(m for m in fitted[0] if isinstance(m, tasks.DatasetOpened)).listing
    cached = tmp_path / "cached.lsfa"
    shutil.copy(tasks.demo_model_path(), cached)
    same, fitted_again = drive_load(tasks, listing, cached, tiny_config())
    assert not fitted_again and any(n.startswith("Loaded cached model") for n in same)
    # one model, as "auto" gives for RGB + 3D data: the same model, not refitted
    same, fitted_again = drive_load(tasks, listing, cached, replace(tiny_config(), ensemble=[]))
    assert not fitted_again and any(n.startswith("Loaded cached model") for n in same)
    older = replace(tiny_config(), position_weight=0.0, coreset_ratio=0.5)  # as an earlier version fitted it
    notes, fitted_again = drive_load(tasks, listing, cached, older)
    assert fitted_again
    assert any("fitted with other settings than this version's (coreset_ratio, position_weight)" in n for n in notes)
    from core.model_io import load_model

    assert load_model(cached).config.position_weight == 0.0  # the new fit replaced the cache's file


def drive_load(tasks, listing, path, config):
    from core.progress import Progress

    gen = tasks.load_or_fit(listing.root, listing.category, path, Progress(), config)
    notes = []
    try:
        while True:
            notes.append(getattr(next(gen), "text", ""))
    except StopIteration as stop:
        return notes, stop.value[1]
