"""Qt-free GUI logic: state events, verdicts, colour range, overlays, auto thresholds, export."""

import csv
import json

import numpy as np
import pytest

from core import render
from lsfa_gui import export, overlay
from lsfa_gui._testing import synthetic_result
from lsfa_gui.state import NG, OK, InspectionState, ModelInfo, SampleEntry, ThresholdSettings, normalised
from lsfa_gui.thresholding import apply_auto_thresholds, auto_image_threshold, auto_pixel_threshold

LABELS = ["good"] * 5 + ["crack"] * 3


def scored_state(labels=LABELS, size=64, model_range=None) -> InspectionState:
    st = InspectionState()
    results = [synthetic_result(i, lab, size=size) for i, lab in enumerate(labels)]
    st.set_entries([SampleEntry(r.name, "test", r.label) for r in results])
    if model_range is not None:
        st.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(0.6, 0.5), colour_range=model_range))
    for i, r in enumerate(results):
        st.set_result(i, r)
    return st


def test_events_fire_and_verdicts_follow_the_image_threshold():
    st = scored_state()
    seen = []
    st.thresholds_changed.connect(lambda: seen.append("thr"))
    st.current_changed.connect(lambda i: seen.append(i))
    assert st.verdict(st.entries[0]) is None  # no threshold yet
    st.set_thresholds(image=0.6)
    assert [st.verdict(e) for e in st.entries] == [OK] * 5 + [NG] * 3
    st.set_thresholds(image=0.6)  # unchanged: no event
    st.set_current(2)
    assert seen == ["thr", 2]
    assert st.confusion() == {"tp": 3, "fp": 0, "fn": 0, "tn": 5}
    st.set_thresholds(image=0.1)
    assert st.confusion() == {"tp": 3, "fp": 5, "fn": 0, "tn": 0}
    with pytest.raises(IndexError):
        st.set_current(99)


def test_model_range_is_fixed_across_samples_unless_stretch_is_on():
    st = scored_state(model_range=(0.1, 2.0))
    assert st.colour_range == (0.1, 2.0)
    st.fit_colour_range_to_results()  # the model's range wins over the data
    assert st.colour_range == (0.1, 2.0)
    good, bad = st.entries[0], st.entries[-1]
    # by default colours start at the pixel threshold (0.5), up to the top of the fixed range
    assert st.display_range(good) == st.display_range(bad) == (0.5, 2.0)
    st.set_display(from_threshold=False)
    assert st.display_range(good) == st.display_range(bad) == (0.1, 2.0)
    st.set_display(per_sample_range=True)
    lo, hi = st.display_range(good)
    assert lo == pytest.approx(float(good.result.anomaly_map.min()))
    assert hi == pytest.approx(float(good.result.anomaly_map.max()))
    assert st.display_range(bad) != st.display_range(good)
    assert st.thresholds == ThresholdSettings(0.6, 0.5)  # seeded from the model


def test_range_from_results_without_model_covers_the_scores():
    st = scored_state()
    st.fit_colour_range_to_results()
    lo, hi = st.colour_range
    assert 0.19 <= lo < 0.25 and 0.9 < hi <= 1.01
    assert normalised(lo, (lo, hi)) == 0.0 and normalised(hi, (lo, hi)) == 1.0


def test_overlay_outline_and_colours():
    amap = np.zeros((20, 20), np.float32)
    amap[5:10, 5:10] = 1.0
    mask = render.predicted_mask(amap, 0.5)
    edge = render.outline(mask)
    assert edge.sum() == 16 and not edge[7, 7] and edge[5, 5]
    lut = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    rgba = render.colorize(amap, (0.0, 1.0), lut, below=0.5)
    assert rgba[7, 7].tolist() == [255, 255, 255, 255] and rgba[0, 0, 3] == 0
    colours = overlay.point_colors(np.array([0.2, 0.9], np.float32), (0.0, 1.0), lut, 0.5)
    assert colours[0].tolist() == list(overlay.BELOW_THRESHOLD_RGB) and colours[1].tolist() == [229] * 3
    out = render.compose_overlay(np.zeros((20, 20, 3), np.uint8), amap, (0.0, 1.0), lut, 0.5, 0.5, gt_mask=mask)
    assert out[5, 5].tolist() == list(render.GROUND_TRUTH_RGB)  # GT drawn on top of the prediction
    assert out[7, 7].tolist() == [127, 127, 127]  # white heat at 50 % over black


def test_auto_thresholds_best_f1_and_quantile_fallback():
    st = scored_state()
    thr, how = auto_image_threshold(st)
    assert "F1" in how
    st.set_thresholds(image=thr)
    assert st.confusion() == {"tp": 3, "fp": 0, "fn": 0, "tn": 5}
    pix, how = auto_pixel_threshold(st)
    assert "F1" in how and 0.25 < pix < 1.0
    unlabelled = scored_state(labels=[None] * 4)
    thr, how = auto_image_threshold(unlabelled)
    assert "quantile" in how
    scores = [e.image_score for e in unlabelled.entries]
    assert min(scores) <= thr <= max(scores)
    pix, how = auto_pixel_threshold(unlabelled)
    assert "quantile" in how and 0.2 <= pix <= 0.25
    with pytest.raises(ValueError):
        auto_image_threshold(InspectionState())


def test_apply_auto_thresholds_sets_the_state_and_says_how():
    st = scored_state()
    seen = []
    st.thresholds_changed.connect(lambda: seen.append(1))
    notes = apply_auto_thresholds(st)
    assert len(notes) == 2 and notes[0].startswith("Image threshold") and "F1" in notes[1]
    assert st.confusion() == {"tp": 3, "fp": 0, "fn": 0, "tn": 5} and len(seen) == 2
    assert 0.25 < st.thresholds.pixel < 1.0
    empty = InspectionState()
    assert apply_auto_thresholds(empty, pixel=False) == ["Auto image threshold: no scored samples to choose an image threshold from"]
    assert empty.thresholds.image is None


def test_metrics_and_the_model_live_on_the_state():
    st = scored_state()
    seen = []
    st.metrics_changed.connect(lambda: seen.append(st.metrics))
    st.model_changed.connect(lambda: seen.append(st.model.path))
    st.set_metrics({"i_auroc": 1.0}, "over 8")
    assert st.metrics == {"i_auroc": 1.0} and st.metrics_note == "over 8"
    st.clear_results()  # new results coming: the metrics are stale
    assert st.metrics is None and seen == [{"i_auroc": 1.0}, None]
    engine_model = object()
    st.set_model(ModelInfo(model=engine_model, path="a.lsfa", name="a.lsfa"))
    st.set_model_path("/models/b.lsfa")
    assert st.model.model is engine_model and st.model.name == "b.lsfa" and seen[-1] == "/models/b.lsfa"
    st.set_seeded(0.4, 0.3)
    assert (st.model.seeded.image, st.model.seeded.pixel) == (0.4, 0.3)


def test_export_csv_json_and_png(tmp_path):
    from PIL import Image

    st = scored_state(model_range=(0.1, 1.0))
    st.entries.append(SampleEntry("unscored", "test", None))
    csv_path = export.export_csv(st, tmp_path / "r.csv")
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 9 and rows[0]["verdict"] == OK and rows[7]["verdict"] == NG
    assert rows[8]["image_score"] == "" and float(rows[0]["image_threshold"]) == 0.6
    doc = json.loads(export.export_json(st, tmp_path / "r.json").read_text())
    assert doc["thresholds"] == {"image": 0.6, "pixel": 0.5} and len(doc["samples"]) == 9
    lut = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    png = export.export_overlay_png(st, 7, tmp_path / "o.png", lut)
    img = np.asarray(Image.open(png))
    assert img.shape == (64, 64, 3)
    assert np.any(np.all(img == render.PREDICTION_RGB, axis=-1))
    paths = export.export_all_overlays(st, tmp_path / "all", lut)
    assert len(paths) == 8 and all(p.is_file() for p in paths)


def test_grid_triangles_join_neighbours_but_not_depth_jumps():
    h, w = 4, 5
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xyz = np.stack([xx * 1e-3, yy * 1e-3, np.full((h, w), 0.4, np.float32)], -1)
    valid = np.ones((h, w), bool)
    tris = overlay.grid_triangles(xyz, valid)
    assert tris.shape == (2 * (h - 1) * (w - 1), 3) and tris.max() == h * w - 1
    xyz[:, 3:, 2] = 0.5  # a 100 mm step between columns 2 and 3 (spacing is 1 mm)
    cut = overlay.grid_triangles(xyz, valid)
    assert len(cut) == 2 * (h - 1) * (w - 2)  # the blocks across the step are left open
    valid[1, 1] = False  # an invalid pixel removes the triangles that use it
    assert len(overlay.grid_triangles(xyz, valid)) < len(cut)
    assert overlay.grid_triangles(xyz, np.zeros((h, w), bool)).shape == (0, 3)


def test_showcase_prefers_a_scored_ng_defect_with_both_modalities():
    from lsfa_gui.app import parse_args, showcase_index

    st = scored_state()
    st.set_thresholds(image=0.6)
    assert st.entries[showcase_index(st)].label == "crack"
    args = parse_args(["data/", "--screenshot", "out.png"])
    assert args.path == "data/" and args.screenshot == "out.png" and not args.demo
