"""Relative patch distance (``--patch-distance relative``, the default): a patch's kNN distance
divided by how spread out the training patches are around its nearest bank vector
(MemoryBank.spread), so that what good parts themselves vary on counts less.

The bank's spread must be the local spacing (floored at the median, so duplicates never divide by
0), must turn a ranking that raw distance gets wrong, must survive a model-file round trip and be
refused when tampered with; model files written before the setting keep raw distances."""

import numpy as np
import pytest

from core.config import FitConfig
from core.errors import ModelFileError
from core.model_io import load_model, save_model
from core.scoring.memory_bank import SPREAD_K, MemoryBank, bank_spread
from core.scoring.patchcore import reweighted_image_score
from tests.test_reliability_model_file import _DELETE, _set, rewrite


def two_regions(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bank, quiet centre, busy centre): 2-D training patches of a quiet region (spacing ~0.01,
    a flat surface) and a busy one (spacing ~0.5, a silhouette whose patches vary a lot)."""
    rng = np.random.default_rng(seed)
    quiet_c, busy_c = np.array([0.0, 0.0]), np.array([10.0, 0.0])
    quiet = quiet_c + rng.normal(0, 0.01, (400, 2))
    busy = busy_c + rng.normal(0, 0.5, (400, 2))
    return np.vstack([quiet, busy]).astype(np.float32), quiet_c, busy_c


def test_spread_is_the_local_spacing_floored_at_the_median():
    bank_vectors, _, _ = two_regions()
    bank = MemoryBank(bank_vectors)
    spread = bank.spread()
    assert spread.shape == (800,) and spread.dtype == np.float32
    # brute force: mean distance to the 3 nearest others, then the median floor
    d = np.sqrt(((bank_vectors[:, None, :].astype(np.float64) - bank_vectors[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    own = np.sort(d, axis=1)[:, :SPREAD_K].mean(axis=1)
    np.testing.assert_allclose(spread, np.maximum(own, np.median(own)), rtol=2e-3, atol=1e-4)
    floor = np.median(own)
    assert np.median(spread[:400]) == pytest.approx(floor, rel=2e-3)  # the quiet region: at the floor
    assert np.median(spread[400:]) > 3 * floor  # the busy region's patches lie far wider apart
    assert bank.spread() is spread  # computed once


def test_duplicates_never_give_zero_spread():
    v = np.zeros((30, 4), np.float32)
    v[20:] = np.arange(10, dtype=np.float32)[:, None]
    spread = bank_spread(MemoryBank(v))
    assert (spread > 0).all() and np.isfinite(spread).all()
    assert bank_spread(MemoryBank(np.ones((1, 4), np.float32))).tolist() == [1.0]


def test_relative_distance_ranks_a_small_defect_on_a_quiet_region_above_a_good_busy_patch():
    """Raw distance flags the good patch of the busy region (it lies 0.4 from its neighbour, as
    the training patches there do from each other) above a defect patch on the quiet region (0.1
    off, ten times the quiet spacing); relative distance ranks them the right way round."""
    bank_vectors, quiet_c, busy_c = two_regions()
    bank = MemoryBank(bank_vectors)
    defect = (quiet_c + [0.0, 0.1]).astype(np.float32)
    good = (busy_c + [0.0, 2.0]).astype(np.float32)  # at the edge of the busy region's spread
    dist, idx = bank.nearest(np.stack([defect, good]))
    assert dist[0] < dist[1]  # raw: the good patch looks worse
    rel = bank.relative(dist, idx)
    assert rel[0] > 2 * rel[1]  # relative: the defect stands out


def test_reweighted_score_applies_its_weight_to_the_relative_distance():
    bank_vectors, quiet_c, _ = two_regions()
    bank = MemoryBank(bank_vectors)
    q = (quiet_c + np.array([[0.0, 0.1], [0.0, 0.02]])).astype(np.float32)
    dist, idx = bank.nearest(q)
    raw = reweighted_image_score(q, dist, idx, bank)
    rel_dist = bank.relative(dist, idx)
    rel = reweighted_image_score(q, rel_dist, idx, bank, relative=True)
    w_raw, w_rel = raw / dist.max(), rel / rel_dist.max()
    assert 0.5 <= w_rel < 1 and w_rel == pytest.approx(w_raw, rel=1e-5)  # the same weight


def test_default_is_relative_but_stored_settings_without_it_stay_raw():
    assert FitConfig().patch_distance == "relative"
    assert FitConfig.from_dict({}).patch_distance == "raw"  # a model file from before the setting
    assert FitConfig.from_dict({"patch_distance": "relative"}).patch_distance == "relative"
    from core.errors import UserError

    with pytest.raises(UserError, match="--patch-distance"):
        FitConfig(patch_distance="lof")


def test_fit_stores_the_spread_and_scores_the_same_after_loading(tiny_xyz_model, tmp_path, capsys):
    """A relative model's spread is in the file (no search at load), the loaded model scores the
    test set identically, tampering is refused, and the same file with the setting removed (a model
    from before it) scores raw distances. The session's tiny xyz model is fitted with defaults."""
    from core.cli import main
    from core.data.dataset import open_dataset

    root, path = tiny_xyz_model
    model = load_model(path)
    assert model.config.patch_distance == "relative"
    bank = model.banks["xyz"]
    assert bank._spread is not None  # read from the file, not searched again
    np.testing.assert_array_equal(bank._spread, bank_spread(bank))
    test = open_dataset(root).samples("cookie", "test")

    def image_scores(m):
        return np.array([r.image_score for r in m.score_refs(test)])

    scores = image_scores(model)
    np.testing.assert_array_equal(scores, image_scores(load_model(path)))

    def negative(tensors):
        tensors["bank.xyz.spread"] = -tensors["bank.xyz.spread"]

    with pytest.raises(ModelFileError, match="spread"):
        load_model(rewrite(path, tmp_path / "bad.lsfa", None, negative))

    old_path = rewrite(path, tmp_path / "old.lsfa", _set(["config", "patch_distance"], _DELETE))
    old = load_model(old_path)
    assert old.config.patch_distance == "raw"
    capsys.readouterr()
    assert main(["info", str(path)]) == 0 and "; patch distance relative" in capsys.readouterr().out
    assert main(["info", str(old_path)]) == 0 and "; patch distance raw" in capsys.readouterr().out
    raw = image_scores(old)
    assert not np.allclose(raw, scores, rtol=0.05)
    old.config.patch_distance = "relative"  # the same bank, now relative: the relative scores again
    np.testing.assert_allclose(image_scores(old), scores, rtol=1e-5)
