"""The two-resolution ensemble (the accurate preset, core.ensemble): its config, its fit, how it
combines its members, its model file (round trip and tampering) and `lsfa info`."""

import numpy as np
import pytest

from core.cli import main
from core.config import PRESETS, FitConfig
from core.errors import ModelFileError, UserError


@pytest.fixture(scope="module")
def ensemble_fit(tmp_path_factory):
    """(dataset root, model path, fitted EnsembleModel): a small RGB + xyz demo cookie, frozen
    features, the self-check on, members at 64 px (8×8 patches) and 96 px (12×12)."""
    from core.demo import generate_demo_dataset
    from core.model_io import save_model
    from core.pipeline import fit

    tmp = tmp_path_factory.mktemp("ensemble")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSFA_CACHE_DIR", str(tmp / "cache"))
    root = generate_demo_dataset(tmp / "demo", seed=5, categories=["cookie"], size=96, n_train=6,
                                 n_validation=3, n_test_good=2, n_test_per_defect=1, defect_types=["dent", "stain"])
    config = FitConfig(image_size=64, grid=8, blur_sigma=1.0, ensemble=[[96, 12, 1.5]], adapt=False)
    model = fit(root, "cookie", config)
    path = tmp / "ensemble.lsfa"
    save_model(model, path)
    yield root, path, model
    mp.undo()


def test_accurate_preset_is_the_224_and_320_ensemble():
    config = FitConfig(**PRESETS["accurate"])
    for point_clouds in (True, False):
        sizes = [(c.image_size, c.grid, c.blur_sigma, c.ensemble) for c in config.member_configs(point_clouds)]
        assert sizes == [(224, 28, 4.0, []), (320, 40, 5.7, [])]
    fast = FitConfig(**PRESETS["fast"])
    assert fast.member_configs(True) == fast.member_configs(False) == [fast]


def test_default_adds_the_320_px_model_only_for_data_without_point_clouds():
    default = FitConfig()
    assert default == FitConfig(**PRESETS["auto"]) and default.ensemble == "auto"
    assert default.member_configs(point_clouds=True) == [default]
    sizes = [(c.image_size, c.grid, c.blur_sigma, c.ensemble) for c in default.member_configs(point_clouds=False)]
    assert sizes == [(224, 28, 4.0, []), (320, 40, 5.7, [])]
    assert FitConfig.from_dict(default.to_dict()).ensemble == "auto"  # stored as asked, resolved per fit
    assert FitConfig.from_dict({}).ensemble == []  # a model file from before the setting: one model
    one = FitConfig(ensemble=[])
    assert default.differences(one) == ["ensemble"]
    assert default.differences(one, point_clouds=True) == []  # auto gives one model there
    assert default.differences(one, point_clouds=False) == ["ensemble"]


def test_training_has_point_clouds_reads_the_category(tmp_path):
    from core.pipeline import training_has_point_clouds

    two_d = tmp_path / "ad" / "widget"
    for sub in ("train/good", "test/good"):
        (two_d / sub).mkdir(parents=True)
    from PIL import Image

    for sub in ("train/good", "test/good"):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(two_d / sub / "000.png")
    assert training_has_point_clouds(tmp_path / "ad", "widget") is False
    from core.demo import generate_demo_dataset

    three_d = generate_demo_dataset(tmp_path / "demo", seed=1, categories=["puck"], size=64, n_train=1,
                                    n_validation=0, n_test_good=1, n_test_per_defect=0)
    assert training_has_point_clouds(three_d, "puck") is True


@pytest.mark.parametrize("bad", [[[320, 41, 5.7]], [[320, 40]], "320", [[320, 40, -1.0]], [[64, 8, 1.0]] * 4])
def test_bad_ensemble_settings_are_refused(bad):
    with pytest.raises(UserError, match="ensemble"):
        FitConfig(ensemble=bad)


def test_cli_resolution_options_override_the_ensemble():
    import argparse

    from core.commands.fit import config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["fit", "data", "-c", "x", "-o", "m.lsfa", "--preset", "accurate"])
    assert config_from_args(args).ensemble == [[320, 40, 5.7]]
    args = parser.parse_args(["fit", "data", "-c", "x", "-o", "m.lsfa"])
    assert config_from_args(args).ensemble == "auto"
    args = parser.parse_args(["fit", "data", "-c", "x", "-o", "m.lsfa", "--preset", "fast"])
    assert config_from_args(args).ensemble == []
    args = parser.parse_args(["fit", "data", "-c", "x", "-o", "m.lsfa", "--preset", "accurate", "--image-size", "320",
                              "--grid", "40"])
    assert config_from_args(args).ensemble == [] and config_from_args(args).image_size == 320


def test_fit_gives_members_and_ensemble_thresholds(ensemble_fit):
    from core.ensemble import EnsembleModel

    _, _, model = ensemble_fit
    assert isinstance(model, EnsembleModel)
    assert [m.config.image_size for m in model.members] == [64, 96]
    assert all(m.config.ensemble == [] for m in model.members)
    est = model.info["self_check"]["estimate"]
    assert 0.0 <= est["image_auroc"] <= 1.0 and est["n_good"] == 3
    assert est["what"].startswith("estimate from 6 synthetic defects")  # 2 subtle-to-gross per good sample
    assert "64 px + 96 px" in model.thresholds.source
    lo, hi = model.display_range
    assert lo < hi


def test_scores_are_the_largest_member_in_good_part_units(ensemble_fit):
    from core.data.dataset import open_dataset
    from core.ensemble import member_units, resize_maps

    root, _, model = ensemble_fit
    ref = open_dataset(root).samples("cookie", "test")[-1]
    sample = ref.load()
    result = model.score(sample)
    own = [m.score(sample) for m in model.members]
    units = [float(member_units(m, r.image_score)) for m, r in zip(model.members, own)]
    assert result.image_score == pytest.approx(max(units), rel=1e-6)
    assert result.anomaly_map.shape == (96, 96)  # the finest member's grid
    coarse = resize_maps(own[0].anomaly_map[None], 96)[0]
    np.testing.assert_allclose(result.anomaly_map, np.maximum(coarse, own[1].anomaly_map), rtol=1e-5, atol=1e-6)
    assert result.modality_scores == own[1].modality_scores


def test_model_file_round_trip_scores_the_same(ensemble_fit):
    from core.data.dataset import open_dataset
    from core.ensemble import EnsembleModel
    from core.model_io import load_model

    root, path, model = ensemble_fit
    again = load_model(path)
    assert isinstance(again, EnsembleModel) and again.model_id == model.model_id
    assert again.thresholds.to_dict() == model.thresholds.to_dict()
    refs = open_dataset(root).samples("cookie", "test")
    before = [r.image_score for r in model.score_refs(refs)]
    after = [r.image_score for r in again.score_refs(refs)]
    np.testing.assert_allclose(after, before, rtol=1e-6)


def _rewrite(path, out, edit_manifest=None, edit_tensors=None):
    from tests.test_reliability_model_file import rewrite

    return rewrite(path, out, edit_manifest, edit_tensors)


@pytest.mark.parametrize("case,needle", [
    ("one member", "2 to 4 members"),
    ("member without its bank", "ensemble member 2.*memory bank"),
    ("stray tensor", "unexpected tensor"),
    ("members do not match the config", "do not match its config"),
    ("NaN threshold", "image threshold"),
])
def test_tampered_ensemble_file_is_refused_in_one_line(ensemble_fit, tmp_path, capsys, case, needle):
    root, path, _ = ensemble_fit

    def edit_manifest(m):
        if case == "one member":
            m["members"] = m["members"][:1]
        elif case == "members do not match the config":
            m["config"]["ensemble"] = [[128, 16, 2.0]]
        elif case == "NaN threshold":
            m["thresholds"]["image"] = float("nan")

    def edit_tensors(t):
        if case == "member without its bank":
            del t["member1.bank.xyz.vectors"]
        elif case == "stray tensor":
            t["junk"] = np.zeros(3, np.float32)

    bad = _rewrite(path, tmp_path / "bad.lsfa", edit_manifest, edit_tensors)
    with pytest.raises(ModelFileError, match=needle):
        from core.model_io import load_model

        load_model(bad)
    code = main(["score", str(bad), str(root / "cookie" / "test" / "good")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "bad.lsfa" in err


def test_info_lists_the_members(ensemble_fit, capsys):
    _, path, _ = ensemble_fit
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ensemble member 1: 64 px, 8×8 patches" in out and "ensemble member 2: 96 px, 12×12 patches" in out
    assert "self-check ESTIMATE" in out


def test_cancel_stops_an_ensemble_fit(ensemble_fit):
    from core.pipeline import fit
    from core.progress import Cancelled, Progress

    root, _, model = ensemble_fit
    stages = []

    def on_event(event):
        stages.append(event.stage)
        if event.stage.startswith("Model 2 of 2"):
            progress.cancel()

    progress = Progress(on_event)
    with pytest.raises(Cancelled):
        fit(root, "cookie", model.config, progress)
    assert any(s.startswith("Model 1 of 2 (64 px): ") for s in stages)
    assert not any(s.startswith("Ensemble") for s in stages)


def test_window_opens_an_ensemble_model_and_scores_with_its_thresholds(ensemble_fit, qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from lsfa_gui.main_window import MainWindow

    root, path, model = ensemble_fit
    w = MainWindow(settings=QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(w.scoring_finished, timeout=300_000):
            w.open_path(str(root))
            w.queue_after_job(lambda: w.open_model(str(path)))
        assert len(w.state.scored) == len(w.state.entries) == 4
        assert w.state.thresholds.image == pytest.approx(model.thresholds.image)
        assert w.status.model_label.text().endswith("(64 px + 96 px)")
        result = w.state.entries[w.state.scored[0]].result
        assert result.anomaly_map.shape == (96, 96)  # the finest member's grid
    finally:
        w.close()


def test_a_region_of_interest_reaches_every_member(ensemble_fit):
    from core.data.dataset import open_dataset

    root, _, model = ensemble_fit
    sample = open_dataset(root).samples("cookie", "test")[-1].load()
    roi = np.zeros(sample.shape, bool)
    roi[:, : sample.shape[1] // 2] = True  # inspect the left half only
    model.set_roi(roi, "left half")
    try:
        assert all(m.roi is not None for m in model.members)
        result = model.score(sample)
        outside = ~result.roi
        assert outside.any() and np.all(result.anomaly_map[outside] == 0)
        assert result.anomaly_map[result.roi].max() > 0
    finally:
        model.set_roi(None)
    assert all(m.roi is None for m in model.members)


def test_without_the_self_check_thresholds_are_good_quantiles_of_the_ensemble(ensemble_fit):
    import dataclasses

    from core.pipeline import fit

    root, _, model = ensemble_fit
    plain = fit(root, "cookie", dataclasses.replace(model.config, self_check=False))
    assert "good quantiles of the 64 px + 96 px ensemble" in plain.thresholds.source
    assert "self_check" not in plain.info
    # the image threshold is the 0.99 quantile of the held-out good parts' ensemble scores
    cal = plain.info["calibration_scores"]
    assert cal["median"] <= plain.thresholds.image <= cal["q999"] + 1e-9


def test_a_scored_sample_is_preprocessed_once_for_all_members(ensemble_fit, monkeypatch):
    import core.data.preprocess as pre
    from core.data.dataset import open_dataset

    root, _, model = ensemble_fit
    calls = []
    real = pre.preprocess
    monkeypatch.setattr(pre, "preprocess", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = model.score(open_dataset(root).samples("cookie", "test")[-1].load())
    assert len(calls) == 1
    assert result.timings["preprocess"] > 0  # counted once, in the first member's result


def test_cli_fits_2d_data_with_both_models_by_default_and_one_with_fast(shared_data, tmp_path, capsys, monkeypatch):
    from core.ensemble import EnsembleModel
    from core.model_io import load_model

    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path / "cache"))
    root = shared_data / "mvtec_ad_bottle_small"
    common = ["-c", "bottle", "--max-train", "6", "--no-adapt", "--no-self-check"]
    assert main(["fit", str(root), "-o", str(tmp_path / "auto.lsfa"), *common]) == 0
    out = capsys.readouterr().out
    assert "models 224 px + 320 px (ensemble: the default for data without point clouds" in out
    auto = load_model(tmp_path / "auto.lsfa")
    assert isinstance(auto, EnsembleModel) and auto.config.ensemble == "auto"
    assert [m.config.image_size for m in auto.members] == [224, 320]
    assert main(["info", str(tmp_path / "auto.lsfa")]) == 0
    info = capsys.readouterr().out
    assert "ensemble member 1: 224 px, 28×28 patches" in info and "ensemble member 2: 320 px, 40×40 patches" in info
    assert main(["fit", str(root), "-o", str(tmp_path / "fast.lsfa"), "--preset", "fast", *common]) == 0
    assert "ensemble" not in capsys.readouterr().out
    assert not isinstance(load_model(tmp_path / "fast.lsfa"), EnsembleModel)


def test_members_with_nothing_to_choose_leave_the_self_check_to_the_ensemble(shared_data, tmp_path, monkeypatch):
    """RGB-only members without adaptors have no choice to make: only the ensemble runs a
    self-check (its estimate and seeded thresholds); a member's own would be discarded work."""
    from core.pipeline import fit

    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path / "cache"))
    model = fit(shared_data / "mvtec_ad_bottle_small", "bottle", FitConfig(max_train=20, adapt=False))
    assert [m.config.image_size for m in model.members] == [224, 320]
    assert all(m.info.get("self_check") is None for m in model.members)
    check = model.info["self_check"]
    assert check["variant"] == "224 px frozen, 320 px frozen"
    assert 0.0 <= check["estimate"]["image_auroc"] <= 1.0
    assert "best F1 on" in model.thresholds.source and "224 px + 320 px" in model.thresholds.source


def test_members_score_side_by_side_with_the_same_bits(ensemble_fit, monkeypatch):
    """With two cores the members score on two threads at once, and every score and map is the
    same bits as one member after the other (one core, or OMP_NUM_THREADS=1 as Ray gives a task)."""
    import threading

    import core.cpu
    from core.data.dataset import open_dataset

    root, _, model = ensemble_fit
    refs = open_dataset(root).samples("cookie", "test")

    def scored(cores):
        monkeypatch.setattr(core.cpu, "thread_budget", lambda: cores)
        return [r for _, _, r in model.score_each(refs)]

    threads = []
    for member in model.members:
        real = member.score_loaded
        monkeypatch.setattr(member, "score_loaded",
                            lambda *a, real=real, **k: threads.append(threading.current_thread().name) or real(*a, **k))
    alone, together = scored(1), scored(2)
    assert set(threads[: 2 * len(refs)]) == {threading.current_thread().name}
    assert any(name.startswith("lsfa-side") for name in threads[2 * len(refs):])
    for a, b in zip(alone, together, strict=True):
        assert a.image_score == b.image_score and np.array_equal(a.anomaly_map, b.anomaly_map)
        assert a.modality_scores == b.modality_scores
        assert b.seconds > 0


def test_member_threads_give_blas_products_the_bits_of_the_calling_thread(monkeypatch):
    """A map as large as the 320 px member's, upsampled on a side thread: the same bits as on the
    calling thread (without the BLAS limit set before the side threads start they differed by 1e-7)."""
    import core.cpu
    from core.ensemble import on_member_threads
    from core.scoring.maps import upsample_and_blur_batch

    monkeypatch.setattr(core.cpu, "thread_budget", lambda: 2)
    patch_maps = np.random.default_rng(0).random((4, 40, 40), dtype=np.float32)
    want = upsample_and_blur_batch(patch_maps, 320, 5.7)
    got = on_member_threads([lambda: upsample_and_blur_batch(patch_maps, 320, 5.7)] * 2)
    assert all(np.array_equal(want, g) for g in got)
