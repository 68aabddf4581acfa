"""core.thresholds on hand-computed cases (convention: NG iff score >= threshold)."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from core.thresholds import (
    bagged_best_f1_threshold,
    best_f1_threshold,
    bootstrap_best_f1_cuts,
    confusion,
    is_defect,
    pixel_best_f1_threshold,
    quantile_threshold,
)


def test_best_f1_separable_gives_midpoint_and_f1_one():
    thr, f1 = best_f1_threshold([0, 0, 1, 1], [0.1, 0.2, 0.6, 0.8])
    assert thr == pytest.approx(0.4)
    assert f1 == 1.0


def test_best_f1_hand_computed_overlap():
    # desc scores: .9(1) .8(0) .7(1) .4(1) .3(0) .1(0); three defects
    # cut after .9: tp1 fp0 -> 2/4 = .5; after .8: tp1 fp1 -> 2/5; after .7: tp2 fp1 -> 4/6;
    # after .4: tp3 fp1 -> 6/7 (best); after .3: tp3 fp2 -> 6/8; all: 6/9
    labels = [1, 0, 1, 1, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.1]
    thr, f1 = best_f1_threshold(labels, scores)
    assert f1 == pytest.approx(6 / 7)
    assert thr == pytest.approx(0.35)  # midpoint of .4 (lowest flagged) and .3
    assert confusion(labels, scores, thr)["f1"] == pytest.approx(6 / 7)


def test_best_f1_ties_cannot_be_split():
    # .5 is shared by a defect and a good sample: both flagged or neither
    # cut after .9: tp1 -> 2/4; after .5 (both): tp2 fp1 -> 4/5 (best); all: tp2 fp2 -> 4/6
    thr, f1 = best_f1_threshold([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1])
    assert f1 == pytest.approx(0.8)
    assert thr == pytest.approx(0.3)


def test_best_f1_all_flagged_uses_lowest_score():
    thr, f1 = best_f1_threshold([1, 1], [0.3, 0.7])
    assert (thr, f1) == (0.3, 1.0)


def test_best_f1_equal_f1_prefers_higher_threshold():
    # flag {.9}: tp1 fp0 fn1 -> 2/3; {.9,.8}: 2/4; {.9,.8,.7}: 2/5; all: tp2 fp2 -> 4/6 = 2/3
    thr, f1 = best_f1_threshold([1, 0, 0, 1], [0.9, 0.8, 0.7, 0.6])
    assert f1 == pytest.approx(2 / 3)
    assert thr == pytest.approx(0.85)


def test_best_f1_is_the_maximum_over_all_cuts_on_random_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(size=200) + labels, 1)
    thr, f1 = best_f1_threshold(labels, scores)
    brute = max(f1_score(labels, scores >= t) for t in np.unique(scores))
    assert f1 == pytest.approx(brute, abs=1e-12)
    assert f1_score(labels, is_defect(scores, thr)) == pytest.approx(f1, abs=1e-12)
    assert not np.any(scores == thr)  # a midpoint, not on a sample


def test_best_f1_adjacent_floats_keep_the_cut():
    lo = 1.0
    hi = np.nextafter(lo, 2.0)
    thr, f1 = best_f1_threshold([0, 1], [lo, hi])
    assert f1 == 1.0 and thr == hi


def test_bagged_best_f1_is_seeded_and_between_separated_groups():
    good, bad = np.array([0.1, 0.2, 0.25, 0.3]), np.array([0.6, 0.7, 0.9])
    labels, scores = np.r_[np.zeros(4, bool), np.ones(3, bool)], np.r_[good, bad]
    thr = bagged_best_f1_threshold(labels, scores, seed=5)
    assert thr == bagged_best_f1_threshold(labels, scores, seed=5)
    # every resample's cut flags all its defects and none of its good parts
    assert good.max() < thr <= bad.min()
    assert bagged_best_f1_threshold(labels, scores, seed=5, rounds=0) == best_f1_threshold(labels, scores)[0]
    assert bagged_best_f1_threshold(np.ones(3, bool), bad) == best_f1_threshold(np.ones(3, bool), bad)[0]
    with pytest.raises(ValueError, match="at least one defect"):
        bagged_best_f1_threshold([0, 0], [0.1, 0.2])
    cuts = bootstrap_best_f1_cuts(labels, scores, seed=5, rounds=50)
    assert cuts.shape == (50,) and thr == pytest.approx(np.median(bootstrap_best_f1_cuts(labels, scores, seed=5)))


def test_bagged_best_f1_moves_less_with_the_draw_and_loses_no_f1():
    """10 good and 30 defect scores (unit Gaussians 1.5 apart) drawn 80 times: the bagged cut's
    spread over the draws is smaller than the single best-F1 cut's, and its F1 on a large fresh
    draw is on average no lower (measured: spread 0.43 vs 0.57, F1 0.881 vs 0.878)."""
    rng = np.random.default_rng(1)
    fresh_good, fresh_bad = rng.normal(0, 1, 20000), rng.normal(1.5, 1, 60000)

    def fresh_f1(t):
        tp, fp = (fresh_bad >= t).sum(), (fresh_good >= t).sum()
        return 2 * tp / (tp + fp + fresh_bad.size)

    labels = np.r_[np.zeros(10, bool), np.ones(30, bool)]
    single, bagged = [], []
    for i in range(80):
        scores = np.r_[rng.normal(0, 1, 10), rng.normal(1.5, 1, 30)]
        single.append(best_f1_threshold(labels, scores)[0])
        bagged.append(bagged_best_f1_threshold(labels, scores, seed=i))
    assert np.std(bagged) < 0.85 * np.std(single)
    assert np.mean([fresh_f1(t) for t in bagged]) >= np.mean([fresh_f1(t) for t in single])


def test_best_f1_errors():
    with pytest.raises(ValueError, match="at least one defect"):
        best_f1_threshold([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="2 labels but 3 scores"):
        best_f1_threshold([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="no labels"):
        best_f1_threshold([], [])


def test_quantile_threshold():
    assert quantile_threshold([1.0, 2.0, 3.0, 4.0, 5.0], q=0.5) == 3.0
    assert quantile_threshold([0.0, 10.0], q=0.99) == pytest.approx(9.9)
    assert quantile_threshold(np.arange(101, dtype=float)) == pytest.approx(99.0)
    assert quantile_threshold([2.0, 7.0], q=1.0) == 7.0
    with pytest.raises(ValueError, match="q must be"):
        quantile_threshold([1.0], q=1.5)
    with pytest.raises(ValueError, match="at least one"):
        quantile_threshold([])


def test_confusion_counts_and_rates():
    labels = [1, 1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.5, 0.2, 0.5, 0.4, 0.1, 0.0]
    c = confusion(labels, scores, 0.5)  # flagged: .9(1) .5(1) .5(0) -> score == thr is NG
    assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (2, 1, 3, 1)
    assert c["precision"] == pytest.approx(2 / 3)
    assert c["recall"] == pytest.approx(2 / 3)
    assert c["f1"] == pytest.approx(2 / 3)
    assert c["accuracy"] == pytest.approx(5 / 7)


def test_confusion_zero_denominators_are_zero():
    c = confusion([0, 0], [0.1, 0.2], 1.0)  # nothing flagged, no defects
    assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (0, 0, 2, 0)
    assert c["precision"] == 0.0 and c["recall"] == 0.0 and c["f1"] == 0.0
    assert c["accuracy"] == 1.0


def _pixel_case():
    masks = np.zeros((2, 10, 10), bool)
    masks[0, 2:5, 2:5] = True  # 9 defect pixels
    maps = np.zeros((2, 10, 10))
    maps[0, 2:5, 2:5] = 0.8
    maps[0, 2, 2] = 0.2  # one defect pixel scores low
    maps[1, 0, 0:2] = 0.6  # two normal pixels score between
    return masks, maps


def test_pixel_best_f1_threshold_exact_when_small():
    masks, maps = _pixel_case()
    # flag >= .8: tp8 fp0 fn1 -> 16/17 (best); flag >= .6: tp8 fp2 fn1 -> 16/19
    thr, f1 = pixel_best_f1_threshold(masks, maps)
    assert f1 == pytest.approx(16 / 17)
    assert thr == pytest.approx(0.7)


def test_pixel_best_f1_threshold_subsample_is_seeded_and_close():
    rng = np.random.default_rng(1)
    masks = np.zeros((4, 64, 64), bool)
    masks[:, 20:40, 20:40] = True
    maps = rng.normal(size=masks.shape) + 2.0 * masks
    full_thr, full_f1 = pixel_best_f1_threshold(masks, maps)
    thr_a, f1_a = pixel_best_f1_threshold(masks, maps, max_pixels=4000, seed=3)
    thr_b, f1_b = pixel_best_f1_threshold(masks, maps, max_pixels=4000, seed=3)
    assert (thr_a, f1_a) == (thr_b, f1_b)
    assert f1_a == pytest.approx(full_f1, abs=0.05)
    assert thr_a == pytest.approx(full_thr, abs=0.3)


def test_pixel_best_f1_threshold_errors():
    with pytest.raises(ValueError, match="defect pixel"):
        pixel_best_f1_threshold(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        pixel_best_f1_threshold(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 5)))
