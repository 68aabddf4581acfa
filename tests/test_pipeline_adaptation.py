"""LSFA adaptation inside the engine: fit with adaptors, persist them, cancel cleanly."""

from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.config import FitConfig
from core.data.dataset import open_dataset
from core.demo import generate_demo_dataset
from core.model_io import load_model, save_model
from core.pipeline import fit
from core.progress import Cancelled, Progress

TINY = dict(size=128, n_train=8, n_validation=3, n_test_good=1, n_test_per_defect=1)
FAST = {"epochs": 1, "min_steps": 4, "batch_size": 4}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("d") / "d", seed=4, categories=["puck"], **TINY)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


def test_adapted_model_round_trips_and_changes_features(root, cache, tmp_path):
    stages = []
    model = fit(root, "puck", FitConfig(cache_dir=cache, adapt=True, adaptation=FAST, self_check=False),
                Progress(lambda ev: stages.append(ev.stage)))
    assert "Adapting features" in stages
    assert model.adapter is not None
    frozen = fit(root, "puck", FitConfig(cache_dir=cache, adapt=False))
    sample = open_dataset(root).samples("puck", "test")[0].load()
    a = model.score(sample)
    assert a.image_score != pytest.approx(frozen.score(sample).image_score, rel=1e-6)

    path = tmp_path / "a.lsfa"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.adapter is not None
    b = loaded.score(sample)
    assert b.image_score == pytest.approx(a.image_score, rel=1e-5)
    np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, rtol=1e-4, atol=1e-5)


def test_rgb_only_adaptation_drops_cross_modal_losses(shared_data, cache):
    model = fit(shared_data / "mvtec3d_tire_rgb", "tire",
                FitConfig(cache_dir=cache, max_train=6, adapt=True, adaptation={**FAST, "losses": ["la", "ga"]},
                          self_check=False, ensemble=[]))  # one model: its adaptor is the subject
    assert model.adapter is None  # only cross-modal losses asked: nothing applies to RGB-only data
    assert any("cross-modal" in n for n in model.info["adaptation_notes"])


def test_single_modality_skips_adaptation_unless_losses_are_given(shared_data, cache):
    root = shared_data / "mvtec3d_tire_rgb"
    skipped = fit(root, "tire", FitConfig(cache_dir=cache, max_train=6, adapt=True, ensemble=[]))
    assert skipped.adapter is None and "skipped" in skipped.info["adaptation_notes"][0]
    forced = fit(root, "tire", FitConfig(cache_dir=cache, max_train=6, adapt=True,
                                         adaptation={**FAST, "losses": ["lc", "gc"]}, self_check=False,
                                         ensemble=[]))
    assert forced.adapter is not None


def test_cancel_during_adaptation_writes_no_model(root, cache, tmp_path, monkeypatch):
    from core.commands import _progress

    real = _progress.cli_progress

    def cancelling():
        progress, sink = real()
        inner = progress._callback

        def cb(ev):
            inner(ev)
            if ev.stage == "Adapting features":
                progress.cancel()

        progress._callback = cb
        return progress, sink

    monkeypatch.setattr(_progress, "cli_progress", cancelling)
    monkeypatch.setenv("LSFA_CACHE_DIR", cache)
    out = tmp_path / "never.lsfa"
    code = main(["fit", str(root), "-c", "puck", "-o", str(out), "--adapt", "--epochs", "1"])
    assert code == 130
    assert not out.exists() and not list(tmp_path.iterdir())


def test_self_check_extracts_frozen_features_once_for_both_variants(root, cache, monkeypatch):
    """The adapted and the frozen candidate differ only after the frozen features: the self-check
    extracts them once and gets the same candidates as extracting them for each variant."""
    from core import tokens
    from core.model import Model

    config = FitConfig(cache_dir=cache, adapt=True, adaptation=FAST)
    extracted = []
    real_extract = tokens.extract_tokens

    def counting_extract(extractors, samples, *args, **kwargs):
        if extractors:
            extracted.append(len(samples))
        return real_extract(extractors, samples, *args, **kwargs)

    monkeypatch.setattr(tokens, "extract_tokens", counting_extract)
    shared = fit(root, "puck", config).info["self_check"]
    assert [c["variant"] for c in shared["candidates"]] == ["adapted", "frozen"]
    calls_shared = list(extracted)

    real_batched = Model.modality_maps_batched
    monkeypatch.setattr(Model, "modality_maps_batched",
                        lambda self, samples, progress=None, stage="Scoring", features=None, leave_out=None:
                        real_batched(self, samples, progress, stage, leave_out=leave_out))  # each variant extracts again
    extracted.clear()
    separate = fit(root, "puck", config).info["self_check"]
    assert separate["candidates"] == shared["candidates"]
    from core.self_check import PSEUDO_PER_SAMPLE, WIDE_PER_SAMPLE

    n_train, n_valid = TINY["n_train"], TINY["n_validation"]
    # training set once, then the good samples and their synthetic defects once for both variants,
    # then the estimate's own synthetic defects for the chosen variant only
    assert calls_shared == [n_train, n_valid, n_valid * PSEUDO_PER_SAMPLE, n_valid * WIDE_PER_SAMPLE]
    assert sum(extracted) >= sum(calls_shared) + 2 * n_valid * (1 + PSEUDO_PER_SAMPLE)
