"""End-to-end engine: fit on generated demo data, evaluate, save/load, bad input."""

from pathlib import Path

import numpy as np
import pytest

from core.config import FitConfig
from core.data.dataset import open_dataset
from core.demo import generate_demo_dataset
from core.errors import ModelFileError, UserError
from core.model_io import load_model, save_model
from core.pipeline import evaluate, fit
from core.progress import Cancelled, Progress
from core.self_check import WIDE_PER_SAMPLE

SMALL = dict(size=160, n_train=12, n_validation=4, n_test_good=3, n_test_per_defect=2)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "d", seed=5, categories=["puck"], **SMALL)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def model(demo_root, cache_dir):
    return fit(demo_root, "puck", FitConfig(cache_dir=cache_dir, seed=0))


def test_fit_produces_calibrated_multimodal_model(model):
    assert model.modalities == ("rgb", "xyz")
    # LSFA adaptation is on by default; the self-check keeps the adaptors only where they help
    check = model.info["self_check"]
    assert check["variant"] in ("adapted", "frozen") and (model.adapter is None) == (check["variant"] == "frozen")
    assert {c["variant"] for c in check["candidates"]} == {"adapted", "frozen"}
    assert 0 <= check["estimate"]["image_auroc"] <= 1 and "synthetic" in check["estimate"]["what"]
    # the estimate is made on its own defects, drawn from subtle to gross, not on the subtle ones
    # the choices are made on
    n_defects = WIDE_PER_SAMPLE * model.info["n_calibration"]
    assert check["estimate"]["what"].startswith(f"estimate from {n_defects} synthetic defects")
    low, high = check["estimate"]["image_auroc_interval"]
    assert low <= check["estimate"]["image_auroc"] <= high  # its bootstrap interval
    assert "synthetic defects" in model.thresholds.source
    assert model.info["n_train"] == 12 and model.info["calibration"].startswith("validation/good")
    t = model.thresholds
    assert np.isfinite([t.image, t.pixel]).all()
    lo, hi = model.display_range
    assert lo < t.pixel < hi
    # 12 small images have fewer patches than the minimum bank size: all are kept; the RGB bank
    # also holds the cells of enclosed gaps in the 3D data (scoring_regions)
    assert 12 * 50 < model.info["bank_sizes"]["xyz"] <= model.info["bank_sizes"]["rgb"] < 12 * 28 * 28


def test_coreset_ratio_applies_above_the_minimum_bank(demo_root, cache_dir):
    m = fit(demo_root, "puck", FitConfig(cache_dir=cache_dir, max_train=6, min_bank_size=1, adapt=False))
    n_fg = m.info["bank_sizes"]["xyz"]
    full = fit(demo_root, "puck", FitConfig(cache_dir=cache_dir, max_train=6, coreset_ratio=1.0, adapt=False))
    assert n_fg == pytest.approx(0.1 * full.info["bank_sizes"]["xyz"], abs=1)


def test_every_part_above_the_seeded_image_threshold_is_outlined(demo_root, cache_dir):
    """With a map-based image score the self-check seeds the pixel threshold at the image
    threshold: every sample at or above the image threshold has pixels at or above it."""
    model = fit(demo_root, "puck", FitConfig(cache_dir=cache_dir, adapt=False, fused_image_score="map_topk"))
    t = model.thresholds
    assert t.pixel == t.image and "pixel threshold = image threshold" in t.source
    rep = evaluate(model, demo_root, "puck")
    flagged = [r for r in rep.results if r.image_score >= t.image]
    assert flagged
    assert all((r.anomaly_map >= t.pixel).any() for r in flagged)


def test_fit_counts_the_held_out_good_parts_its_image_threshold_flags(model, demo_root):
    """The estimate records how many held-out good parts are at or above the seeded image
    threshold (scored again here: the same count) and the highest of their scores; no uncertain
    band unless asked for (FitConfig.uncertain_band)."""
    t = model.thresholds
    assert t.uncertain_until is None
    est = model.info["self_check"]["estimate"]
    refs = open_dataset(demo_root).samples("puck", "validation")
    scores = np.array([r.image_score for r in model.score_refs(refs)])
    assert est["n_good"] == len(scores) == 4
    assert est["good_flagged"] == int((scores >= t.image).sum())
    assert est["highest_good_score"] == pytest.approx(scores.max(), rel=1e-3)


def test_modality_topk_image_score_keeps_flagged_parts_outlined(demo_root, cache_dir):
    """``fused_image_score="modality_topk"`` (the sum of per-modality top-k scores, the default
    before the twenty-third round): the pixel threshold comes down until every flagged self-check sample is outlined, so the
    held-out parts at or above the image threshold, scored again, all have an outline."""
    m = fit(demo_root, "puck", FitConfig(cache_dir=cache_dir, adapt=False, fused_image_score="modality_topk"))
    t = m.thresholds
    assert t.pixel <= t.image and "outlines every flagged self-check sample" in t.source
    refs = open_dataset(demo_root).samples("puck", "validation")
    flagged = [r for r in m.score_refs(refs) if r.image_score >= t.image]
    assert flagged and all((r.anomaly_map >= t.pixel).any() for r in flagged)


def test_modality_units_image_score_thresholds_match_what_scoring_gives(demo_root, cache_dir):
    """``fused_image_score="modality_units"`` (the default): the image fusion is fitted on the good
    parts' per-modality top-k means (the self-check's chosen candidate scores in the same units),
    so scoring the held-out ones again reproduces the recorded good-flagged count; every flagged part is outlined."""
    m = fit(demo_root, "puck", FitConfig(cache_dir=cache_dir, adapt=False, fused_image_score="modality_units"))
    t = m.thresholds
    assert "outlines every flagged self-check sample" in t.source
    refs = open_dataset(demo_root).samples("puck", "validation")
    results = m.score_refs(refs)
    scores = np.array([r.image_score for r in results])
    assert m.info["self_check"]["estimate"]["good_flagged"] == int((scores >= t.image).sum())
    # the sum of the modalities' units (units_fusion="sum", the default): no held-out good part past ~one unit each
    assert m.image_fusion.mode == "tail_sum" and scores.max() <= 1.01 * len(m.modalities)
    flagged = [r for r in results if r.image_score >= t.image]
    assert all((r.anomaly_map >= t.pixel).any() for r in flagged)
    from core.commands.info import model_summary

    assert model_summary(m)["image_score"] == "modality_units (sum of the modalities' units)"


def test_modality_units_are_fitted_on_the_held_out_and_the_left_out_training_parts(demo_root, cache_dir, monkeypatch):
    """With training parts scored leave-one-out, the units image score's units come from them and
    the held-out good parts together, and the left-out parts are scored once; with
    ``threshold_training_parts`` off, from the held-out parts alone (docs/evaluation.md, "the
    image units from the left-out training parts as well")."""
    from core import leave_one_out

    calls = []
    real = leave_one_out.left_out_maps
    monkeypatch.setattr(leave_one_out, "left_out_maps", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = dict(cache_dir=cache_dir, adapt=False, fused_image_score="modality_units")
    pooled = fit(demo_root, "puck", FitConfig(**cfg))
    assert len(calls) == 1 and pooled.info["self_check"]["training_parts_left_out"]["n"] > 0
    held = fit(demo_root, "puck", FitConfig(**cfg, threshold_training_parts=False))
    assert len(calls) == 1 and "training_parts_left_out" not in held.info["self_check"]
    # the same banks and held-out maps; only the image units' good parts differ
    assert held.pixel_fusion.mean == pytest.approx(pooled.pixel_fusion.mean)
    assert not np.allclose(held.image_fusion.mean, pooled.image_fusion.mean)
    # the held-out parts scored with the pooled units reproduce the recorded good-flagged count
    refs = open_dataset(demo_root).samples("puck", "validation")
    scores = np.array([r.image_score for r in pooled.score_refs(refs)])
    assert pooled.info["self_check"]["estimate"]["good_flagged"] == int((scores >= pooled.thresholds.image).sum())


def test_evaluate_reports_all_metrics_and_point_scores(model, demo_root):
    report = evaluate(model, demo_root, "puck")
    assert report.n_good == 3 and report.n_defect == 10
    for v in (report.image_auroc, report.pixel_auroc, report.aupro_30):
        assert v is not None and 0.0 <= v <= 1.0
    assert report.pixel_auroc > 0.8  # defects are localised far better than chance
    r = next(r for r in report.results if r.is_defect)
    assert r.anomaly_map.shape == (224, 224) and r.mask.shape == (224, 224)
    pts, scores = r.point_scores()
    assert pts.shape == (int(r.valid.sum()), 3) and scores.shape == (len(pts),)
    # the defect region scores higher than the rest of the object on average
    obj = r.valid & ~r.mask
    assert r.anomaly_map[r.mask].mean() > r.anomaly_map[obj].mean()


def test_save_load_round_trip_gives_identical_scores(model, demo_root, tmp_path):
    path = tmp_path / "m.lsfa"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.model_id == model.model_id and loaded.thresholds == model.thresholds
    sample = open_dataset(demo_root).samples("puck", "test")[-1].load()
    a, b = model.score(sample), loaded.score(sample)
    assert a.image_score == pytest.approx(b.image_score, rel=1e-5)
    np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, rtol=1e-4, atol=1e-5)


def test_rgb_only_sample_is_refused_by_rgb_xyz_model(model, demo_root):
    sample = open_dataset(demo_root).samples("puck", "test")[0].load()
    sample.xyz = None
    with pytest.raises(UserError, match="point cloud"):
        model.score(sample)


def test_single_modality_models(demo_root, cache_dir):
    for mods in ("rgb", "xyz"):
        m = fit(demo_root, "puck", FitConfig(modalities=mods, cache_dir=cache_dir, max_train=6, adapt=False))
        assert m.modalities == (mods,)
        r = m.score(open_dataset(demo_root).samples("puck", "test")[0].load())
        assert set(r.modality_scores) == {mods} and np.isfinite(r.image_score)


def test_fit_is_cancellable(demo_root, cache_dir):
    seen = []

    def on_event(ev):
        seen.append(ev.stage)
        if ev.stage == "Extracting features":
            progress.cancel()

    progress = Progress(on_event)
    with pytest.raises(Cancelled):
        fit(demo_root, "puck", FitConfig(cache_dir=cache_dir), progress)
    assert "Loading training samples" in seen and "Calibrating" not in seen


def test_xyz_requested_on_rgb_only_data_is_a_clear_error(shared_data, cache_dir):
    with pytest.raises(UserError, match="--modalities"):
        fit(shared_data / "mvtec3d_tire_rgb", "tire", FitConfig(modalities="rgb,xyz", cache_dir=cache_dir, max_train=4))


def test_rgb_only_real_tire_end_to_end(shared_data, cache_dir):
    root = shared_data / "mvtec3d_tire_rgb"
    m = fit(root, "tire", FitConfig(cache_dir=cache_dir, max_train=20, adapt=False))
    assert m.modalities == ("rgb",)
    report = evaluate(m, root, "tire")
    assert report.n_good == 10 and report.n_defect == 33
    assert report.image_auroc > 0.5 and report.pixel_auroc > 0.9 and report.aupro_30 > 0.6


def test_dataset_without_test_defects_reports_undefined_metrics(demo_root, tmp_path, cache_dir, model):
    import shutil

    root = tmp_path / "nodefects"
    shutil.copytree(demo_root / "puck" / "train", root / "puck" / "train")
    shutil.copytree(demo_root / "puck" / "test" / "good", root / "puck" / "test" / "good")
    report = evaluate(model, root, "puck")
    assert report.n_defect == 0 and report.image_auroc is None and report.aupro_30 is None


def test_tampered_model_file_is_refused(model, tmp_path):
    path = tmp_path / "m.lsfa"
    save_model(model, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        load_model(path)


def test_no_validation_split_holds_out_part_of_train(shared_data):
    from core.pipeline import CALIBRATION_SHARE, split_calibration

    ds = open_dataset(shared_data / "mvtec_ad_bottle_small")
    train, calib, source = split_calibration(ds, "bottle", FitConfig(seed=0))
    all_train = ds.samples("bottle", "train")
    assert len(calib) == round(CALIBRATION_SHARE * len(all_train)) and len(train) + len(calib) == len(all_train)
    assert not {r.name for r in train} & {r.name for r in calib}
    assert "held out" in source and "no validation split" in source
    again = split_calibration(ds, "bottle", FitConfig(seed=0))[1]
    other = split_calibration(ds, "bottle", FitConfig(seed=1))[1]
    assert [r.name for r in again] == [r.name for r in calib] != [r.name for r in other]
    # a validation split is used as it is
    tire = open_dataset(shared_data / "mvtec3d_tire_rgb")
    t_train, t_calib, t_source = split_calibration(tire, "tire", FitConfig())
    assert len(t_train) == 60 and len(t_calib) == 10 and t_source.startswith("validation/good")
