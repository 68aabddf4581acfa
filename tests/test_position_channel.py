"""The position channel (core.position_channel): each patch's distance from the part's centre as
one more feature, unchanged by the part's rotation, measured at fit time, kept in the model file."""

import math

import numpy as np
import pytest

from core.position_channel import PositionChannel, median_neighbour_distance, radius_cells
from core.scoring.memory_bank import MemoryBank
from tests.test_object_frame import _fit, small_part_data  # noqa: F401  (a small demo puck set, fitted tiny)


def test_radius_is_unchanged_by_quarter_turns_and_grows_outwards():
    for g in (4, 7, 28):
        r = radius_cells(g).reshape(g, g)
        for k in (1, 2, 3):
            assert np.allclose(np.rot90(r, k), r)
        assert r.max() == pytest.approx((g - 1) / math.sqrt(2), rel=1e-6)
        assert r[g // 2, g // 2] == r.min() <= 0.71
        assert np.all(np.diff(r[g // 2, g // 2:]) > 0)  # along a row from the centre outwards


def test_median_neighbour_distance_in_feature_units():
    line = np.stack([np.arange(50, dtype=np.float32) * 3.0, np.zeros(50, np.float32)], axis=1)
    assert median_neighbour_distance(line) == pytest.approx(3.0)
    assert median_neighbour_distance(line * 10, n_query=7) == pytest.approx(30.0)
    assert median_neighbour_distance(line[:1]) == 0.0


def _part_tokens(n: int, grid: int, rng, misplaced: bool = False):
    """(n, grid*grid, 4) features of a part whose centre looks like "a" and rim like "b"
    (with noise); ``misplaced``: one rim cell looks like the centre."""
    r = radius_cells(grid)
    a, b = np.array([1, 0, 0, 0], np.float32), np.array([0, 1, 0, 0], np.float32)
    t = np.where((r < grid / 4)[None, :, None], a, b) + rng.normal(0, 0.05, (n, grid * grid, 4)).astype(np.float32)
    if misplaced:
        t[:, 0] = a + rng.normal(0, 0.05, 4)
    return t.astype(np.float32)


def test_a_pattern_normal_at_the_centre_scores_high_at_the_rim_only_with_the_channel():
    rng = np.random.default_rng(0)
    g = 8
    train = _part_tokens(10, g, rng)
    test = _part_tokens(1, g, rng, misplaced=True)
    regions = {"rgb": np.ones(train.shape[:2], bool)}
    scores = {}
    for weight in (0.0, 1.0):
        channel = PositionChannel.measure({"rgb": train}, regions, weight)
        tr, te = (train, test) if channel is None else (channel.apply({"rgb": train}, g)["rgb"],
                                                        channel.apply({"rgb": test}, g)["rgb"])
        bank = MemoryBank.build(tr.reshape(-1, tr.shape[-1]), 1.0, 0)
        dist, _ = bank.nearest(np.ascontiguousarray(te[0]))
        scores[weight] = (dist[0], float(np.median(dist[1:])))
    misplaced_off, normal_off = scores[0.0]
    misplaced_on, normal_on = scores[1.0]
    assert misplaced_off < 2 * normal_off  # without the channel the misplaced cell looks normal
    # with it, it is 3.4 cells from the nearest centre-like training cell: about 3.4 typical
    # neighbour distances away, while the other cells stay where they were
    assert misplaced_on > 2.5 * normal_on and misplaced_on > 2 * misplaced_off
    assert normal_on < 1.5 * normal_off


def test_apply_appends_one_scaled_channel_and_leaves_other_modalities():
    t = {"rgb": np.zeros((2, 16, 3), np.float32), "xyz": np.ones((2, 16, 5), np.float32)}
    out = PositionChannel({"rgb": 2.0}).apply(t, 4)
    assert out["rgb"].shape == (2, 16, 4) and out["rgb"].dtype == np.float32
    assert np.allclose(out["rgb"][1, :, 3], 2.0 * radius_cells(4))
    assert out["xyz"] is t["xyz"]
    assert PositionChannel.measure(t, {m: np.ones((2, 16), bool) for m in t}, 0.0) is None


@pytest.mark.parametrize("units", [{"rgb": math.nan}, {"rgb": -1.0}, {"rgb": True}, {"rgb": "far"}, {}, {3: 1.0},
                                   {"rgb": 1e12}])
def test_damaged_units_are_refused(units):
    with pytest.raises(ValueError, match="position channel"):
        PositionChannel.from_dict({"units_per_cell": units})


def test_the_setting_is_checked_and_old_model_files_lack_it():
    from core.config import FitConfig
    from core.errors import UserError

    assert FitConfig().position_weight == 1.0
    assert FitConfig.from_dict({"image_size": 224}).position_weight == 0.0
    for bad in (-0.5, math.inf, "1", True, 1000.0):
        with pytest.raises(UserError, match="position-weight"):
            FitConfig(position_weight=bad)


def test_a_cropped_fit_measures_the_channel_and_the_file_keeps_it(small_part_data, tmp_path, monkeypatch):
    from core.commands.info import format_model, model_summary
    from core.data.dataset import open_dataset
    from core.model_io import load_model, save_model

    model = _fit(small_part_data, tmp_path, monkeypatch)
    units = model.position.units_per_cell
    assert set(units) == {"rgb", "xyz"} and all(v > 0 for v in units.values())
    for m, bank in model.banks.items():
        assert bank.dim == model.extractors[m].dim + 1
    save_model(model, tmp_path / "m.lsfa")
    loaded = load_model(tmp_path / "m.lsfa")
    assert loaded.position == model.position
    sample = open_dataset(small_part_data).samples("puck", "test")[0].load()
    assert loaded.score(sample).image_score == pytest.approx(model.score(sample).image_score, rel=1e-5)
    assert "position channel: weight 1 " in format_model(model_summary(loaded))
    off = _fit(small_part_data, tmp_path, monkeypatch, position_weight=0.0)
    assert off.position is None and "position channel: none" in format_model(model_summary(off))
    assert _fit(small_part_data, tmp_path, monkeypatch, modalities="rgb").position is None  # no crop, no centre


def test_a_tampered_channel_is_refused_in_one_line(small_part_data, tmp_path, monkeypatch):
    from core.errors import ModelFileError
    from core.model_io import load_model, save_model
    from tests.test_reliability_model_file import rewrite

    save_model(_fit(small_part_data, tmp_path, monkeypatch), tmp_path / "m.lsfa")
    edits = {
        "NaN unit": lambda m: m["position_channel"]["units_per_cell"].update(xyz=math.nan),
        "unknown modality": lambda m: m["position_channel"]["units_per_cell"].update(depth=1.0),
        "channel removed": lambda m: m.pop("position_channel"),  # banks one feature wider than the extractors
        "not a mapping": lambda m: m.update(position_channel=[1, 2]),
    }
    for name, edit in edits.items():
        bad = rewrite(tmp_path / "m.lsfa", tmp_path / f"bad {name}.lsfa", edit)
        with pytest.raises(ModelFileError, match="position_channel|memory bank"):
            load_model(bad)


def test_measuring_reports_progress_and_can_be_cancelled():
    from core.position_channel import MEASURE_STAGE
    from core.progress import Cancelled, Progress

    tokens = {m: np.random.default_rng(1).random((3, 16, 4), np.float32) for m in ("rgb", "xyz")}
    regions = {m: np.ones((3, 16), bool) for m in tokens}
    events = []
    PositionChannel.measure(tokens, regions, 1.0, progress=Progress(events.append))
    assert [(e.stage, e.done, e.total) for e in events] == [(MEASURE_STAGE, 0, 2), (MEASURE_STAGE, 1, 2),
                                                            (MEASURE_STAGE, 2, 2)]
    cancelled = Progress()
    cancelled.cancel()
    with pytest.raises(Cancelled):
        PositionChannel.measure(tokens, regions, 1.0, progress=cancelled)


def test_config_differences_name_the_settings_that_changed():
    from dataclasses import replace

    from core.config import FitConfig

    base = FitConfig()
    assert base.differences(FitConfig()) == []
    assert base.differences(replace(base, position_weight=0.0, seed=3, cache_dir="/elsewhere")) == [
        "position_weight", "seed"]
    assert FitConfig.from_dict({}).differences(base) == sorted(
        ["colour_contrast", "dropped_modality_in_map", "ensemble", "object_crop", "patch_distance",
         "position_weight", "threshold_training_parts"])  # a model file from before those defaults
