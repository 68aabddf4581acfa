"""Training parts scored leave-one-out for the seeded image threshold (core.leave_one_out)."""

import numpy as np
import pytest

from core.config import FitConfig
from core.leave_one_out import MAX_PARTS, chosen_parts, set_owners
from core.scoring.memory_bank import MemoryBank
from core.thresholds import best_f1_threshold, bootstrap_best_f1_cuts


def test_chosen_parts_are_every_third_spread_over_the_training_set_and_capped():
    parts = chosen_parts(60)
    assert len(parts) == 20 and parts[0] == 0 and parts[-1] == 59
    assert set(np.diff(parts)) <= {3, 4} and len(set(parts)) == 20  # every third, evenly spread
    assert len(chosen_parts(1000)) == MAX_PARTS and chosen_parts(1000)[-1] == 999
    assert len(chosen_parts(2)) == 1 and len(chosen_parts(1)) == 0 and len(chosen_parts(0)) == 0


def _bank_of_parts(n_parts=4, per_part=30, dim=8, seed=0, ratio=1.0):
    """A bank over ``n_parts`` parts' patches; part i's patches lie around i * 10 on every axis."""
    rng = np.random.default_rng(seed)
    feats = np.concatenate([i * 10 + rng.normal(0, 1, (per_part, dim)) for i in range(n_parts)]).astype(np.float32)
    regions = np.ones((n_parts, per_part), bool)
    bank = MemoryBank.build(feats, ratio, seed=seed, proj_dim=None)
    set_owners(bank, regions)
    return bank, feats


def test_owners_follow_the_coreset_rows_back_to_their_part():
    bank, feats = _bank_of_parts(ratio=0.5)
    assert bank.size == 60 and len(bank.owners) == 60
    for row, owner in zip(bank.rows, bank.owners):
        assert owner == row // 30  # patch number row came from part row // 30
        np.testing.assert_array_equal(bank.vectors[list(bank.rows).index(row)], feats[row])


@pytest.mark.parametrize("search", ["exact", "ivf_flat"])
def test_a_part_scored_leave_one_out_never_meets_its_own_patches(search):
    from core.scoring.ann import SearchChoice, train_centroids

    bank, feats = _bank_of_parts()
    if search == "ivf_flat":  # the bank's own approximate search, own rows left out by a selector
        bank.use_search(SearchChoice("ivf_flat", 4, 2), train_centroids(bank.vectors, 4, seed=0))
    own = feats[30:60]  # part 1, whose patches are all in the bank
    d_in, _ = bank.nearest(own, exact=True)
    assert d_in.max() < 1e-2  # scored as it is: ~0
    d_out, idx = bank.nearest_excluding(own, 1)
    assert (bank.owners[idx] != 1).all() and idx.dtype == np.int64 and d_out.dtype == np.float32
    # the nearest other part lies ~10 away on each of 8 axes (~28): exact search of a bank without
    # part 1 gives the same, approximate search the same or farther
    others = MemoryBank(np.ascontiguousarray(np.delete(feats, np.s_[30:60], axis=0)))
    exact = others.nearest(own, exact=True)[0]
    if search == "exact":
        np.testing.assert_allclose(d_out, exact, rtol=1e-4)
    assert (d_out >= exact * (1 - 1e-4)).all() and d_out.min() > 20


def test_only_parts_that_leave_rows_in_every_bank_are_scored():
    from core.leave_one_out import scorable

    bank, _ = _bank_of_parts(n_parts=3)
    lonely = MemoryBank(np.ones((4, 2), np.float32))
    lonely.owners = np.array([2, 2, 2, 2])  # only part 2 has rows in this bank
    assert scorable(np.array([0, 1, 2]), [bank]).tolist() == [0, 1, 2]
    assert scorable(np.array([0, 1, 2]), [bank, lonely]).tolist() == [0, 1]
    assert scorable(np.array([0]), [MemoryBank(np.ones((2, 2), np.float32))]).tolist() == []  # owners unknown


def test_leaving_out_needs_owners():
    bank = MemoryBank(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="which training sample"):
        bank.nearest_excluding(np.zeros((1, 2), np.float32), 0)
    bank.owners = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="every memory bank row belongs"):
        bank.nearest_excluding(np.zeros((1, 2), np.float32), 0)


def test_weighted_goods_move_the_best_f1_cut():
    labels = np.r_[np.zeros(4, bool), np.ones(2, bool)]
    scores = np.array([1.0, 2.0, 3.3, 3.5, 3.2, 4.0])
    # plain F1 2tp / (2tp + fp + fn): flagging only 4.0 ties with flagging down to 3.2 (2/3); the higher cut wins
    assert best_f1_threshold(labels, scores) == pytest.approx((3.75, 2 / 3))
    # goods that count a fifth each: flagging the 3.3 and 3.5 goods costs little, catching 3.2 pays
    thr, f1 = best_f1_threshold(labels, scores, good_weight=0.2)
    assert thr == pytest.approx(2.6) and f1 == pytest.approx(4 / (4 + 0.4))
    with pytest.raises(ValueError, match="good_weight"):
        best_f1_threshold(labels, scores, good_weight=0)
    cuts = bootstrap_best_f1_cuts(labels, scores, seed=1, rounds=50, good_weight=0.2)
    assert np.median(cuts) <= np.median(bootstrap_best_f1_cuts(labels, scores, seed=1, rounds=50))


def test_seeded_threshold_pools_training_goods_weighted_as_the_held_out_ones():
    from core.self_check import Candidate, seeded_how, seeded_thresholds
    from core.thresholds import bagged_best_f1_threshold

    rng = np.random.default_rng(3)
    good, bad, training = rng.normal(0, 1, 10), rng.normal(1.5, 1, 30), rng.normal(0, 1, 20)
    empty = np.zeros((0, 4, 4))
    cand = Candidate("frozen", "x", None, 0.9, 0.9, good, bad, empty, empty)
    seeded = seeded_thresholds(cand, [], 7, pixel=False, training_good=training)
    cuts = bootstrap_best_f1_cuts(np.r_[np.zeros(30, bool), np.ones(30, bool)], np.r_[good, training, bad], 7,
                                  good_weight=10 / 30)
    assert seeded.image == float(np.median(cuts))
    assert seeded.image != bagged_best_f1_threshold(np.r_[np.zeros(10, bool), np.ones(30, bool)], np.r_[good, bad], 7)
    how = seeded_how(30, "validation/good (10 samples)", seeded, 20)
    assert "vs validation/good (10 samples) and 20 training parts scored leave-one-out" in how


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    """(dataset root, cache dir) of a tiny demo puck (RGB + xyz) with a validation split."""
    from core.demo import generate_demo_dataset

    root = generate_demo_dataset(tmp_path_factory.mktemp("d") / "d", seed=5, categories=["puck"], size=128,
                                 n_train=9, n_validation=3, n_test_good=1, n_test_per_defect=1)
    return root, str(tmp_path_factory.mktemp("cache"))


def test_a_fit_seeds_its_threshold_on_training_parts_scored_leave_one_out(tiny_fit):
    """The fit scores every third training part against banks without its own patches: they score
    like held-out parts (far above ~0, what a part scores against its own patches), and the
    threshold's record says they were used."""
    from core.pipeline import fit

    root, cache = tiny_fit
    config = FitConfig(cache_dir=cache, adapt=False)  # on by default
    model = fit(root, "puck", config)
    left_out = model.info["self_check"]["training_parts_left_out"]
    assert left_out["n"] == 3  # parts 0, 4, 8 of 9
    assert "and 3 training parts scored leave-one-out" in model.thresholds.source
    est = model.info["self_check"]["estimate"]
    assert est["n_training"] == 3 and 0 <= est["training_flagged"] <= 3
    from core.self_check import describe_good_flagged
    assert f"training parts scored leave-one-out at or above it: {est['training_flagged']} of 3" in describe_good_flagged(est)
    held_out = model.info["calibration_scores"]["median"]
    assert left_out["median_score"] > 0.3 * held_out
    plain = fit(root, "puck", FitConfig(cache_dir=cache, adapt=False, threshold_training_parts=False))
    assert "training_parts_left_out" not in plain.info["self_check"]
    assert "n_training" not in plain.info["self_check"]["estimate"]
    assert "leave-one-out" not in plain.thresholds.source
    # the banks and the pixel fusion are those of the fit without it; the image score's units are
    # fitted on the left-out parts as well (docs/evaluation.md, "the image score in units of how
    # far the good parts reach"), so they differ
    assert plain.info["bank_sizes"] == model.info["bank_sizes"]
    assert plain.pixel_fusion.mean == pytest.approx(model.pixel_fusion.mean)
    assert not np.allclose(plain.image_fusion.mean, model.image_fusion.mean)
