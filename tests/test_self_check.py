"""Fit-time self-check: synthetic defects and the choices made on them."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score

from core.config import FitConfig
from core.data.sample import Sample
from core.model import Model
from core.pseudo_defects import add_defect, make_pseudo_defects, types_for
from core.results import Thresholds
from core.scoring.fusion import LateFusion
from core.self_check import UNINFORMATIVE_AUROC, VariantMaps, select_fusion


def _part(seed: int = 0, size: int = 224) -> Sample:
    """A textured disc 0.4 m from the camera on a removed background (xyz in metres)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    inside = np.hypot(yy - size / 2, xx - size / 2) < size * 0.35
    f = 3.3 * size
    z = 0.4 - 0.005 * inside + rng.normal(0, 1e-5, (size, size))
    xyz = np.stack([(xx - size / 2) * z / f, (yy - size / 2) * z / f, z], -1).astype(np.float32)
    xyz[~inside] = 0
    rgb = (120 + 40 * gaussian_filter(rng.standard_normal((size, size, 3)), (3, 3, 0))).clip(0, 255).astype(np.uint8)
    rgb[~inside] = 0
    return Sample(name=f"s{seed}", rgb=rgb, xyz=xyz, label="good", mask=np.zeros((size, size), bool))


@pytest.mark.parametrize("kind", types_for(("rgb", "xyz")))
def test_each_pseudo_defect_changes_what_it_should(kind):
    good = _part(1)
    bad = add_defect(good, kind, np.random.default_rng(3), donor=_part(2))
    valid = np.any(good.xyz != 0, -1)
    assert bad.mask.any() and (bad.mask & ~valid).sum() <= 0.05 * bad.mask.sum()  # on the part
    assert bad.label == f"pseudo_{kind}" and good.mask.sum() == 0  # the input is not modified
    rgb_changed = np.any(bad.rgb != good.rgb, -1)
    xyz_changed = np.any(bad.xyz != good.xyz, -1)
    if kind in ("dent", "bump"):
        assert not rgb_changed.any() and xyz_changed.any()
        dz = bad.xyz[..., 2] - good.xyz[..., 2]
        assert (dz.max() > 0) if kind == "dent" else (dz.min() < 0)  # dent: away from the camera
        assert 0.05e-3 < np.abs(dz).max() < 1.5e-3  # sub-millimetre to millimetre
    elif kind in ("stain", "cutpaste", "scratch"):
        assert rgb_changed.any() and not xyz_changed.any()
    else:  # hole, foreign: both
        assert rgb_changed.any() and xyz_changed.any()
    if kind == "hole":
        assert not np.any(bad.xyz[bad.mask] != 0)


def test_rgb_only_samples_get_rgb_defects_only():
    s = _part(4)
    s = Sample(name="rgb", rgb=s.rgb, label="good")
    kinds = types_for(("rgb",))
    assert "dent" not in kinds and "foreign" not in kinds and "hole" in kinds
    out = make_pseudo_defects([s, _part(5).with_arrays(xyz=None)], ("rgb",), 3, np.random.default_rng(0))
    assert len(out) == 6 and all(o.xyz is None and o.mask.any() for o in out)


def test_pseudo_defects_are_seeded():
    a = make_pseudo_defects([_part(6), _part(7)], ("rgb", "xyz"), 2, np.random.default_rng(11))
    b = make_pseudo_defects([_part(6), _part(7)], ("rgb", "xyz"), 2, np.random.default_rng(11))
    assert all(np.array_equal(x.rgb, y.rgb) and np.array_equal(x.xyz, y.xyz) for x, y in zip(a, b))


def _maps(n, rng, defects: bool, amplitude: float = 1.0):
    """(informative, pure-noise) 56×56 raw score maps and the defect masks."""
    inf = gaussian_filter(rng.gamma(9, 1 / 3, (n, 56, 56)), (0, 1.5, 1.5))
    noise = gaussian_filter(rng.lognormal(0, 0.5, (n, 56, 56)) * 40, (0, 1.5, 1.5))
    masks = np.zeros((n, 56, 56), bool)
    if defects:
        yy, xx = np.mgrid[:56, :56]
        for i in range(n):
            y, x = rng.integers(8, 48, 2)
            r = rng.uniform(2, 5)
            blob = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * r * r))
            inf[i] += amplitude * blob
            masks[i] = blob > 0.3
    return inf.astype(np.float32), noise.astype(np.float32), masks


def _model():
    cfg = FitConfig(image_size=56, grid=28, image_topk=250)
    return Model(cfg, ("rgb", "xyz"), {}, {}, LateFusion(), LateFusion(), Thresholds(0, 0), (0, 1))


def _noise_case(amplitude: float, n_good: int, n_defects: int):
    """The self-check's choice when one modality is pure noise and the other carries the defects,
    with ``n_good`` held-out good maps and ``n_defects`` synthetic defects of each kind; and the
    I-AUROC of the chosen fusion and of the informative modality alone on 60 + 60 unseen maps."""
    rng = np.random.default_rng(int(amplitude * 100))
    model = _model()
    cal_i, cal_n, _ = _maps(n_good, rng, False)
    stain_i, stain_n, stain_masks = _maps(n_defects, rng, True, amplitude)  # colour defects: the RGB map sees them
    dent_i, dent_n, _ = _maps(n_defects, rng, False)  # shape defects: the noise "xyz" map does not
    dent_masks = stain_masks[::-1]
    maps = VariantMaps({"rgb": cal_i, "xyz": cal_n},
                       {"rgb": np.concatenate([stain_i, dent_i]), "xyz": np.concatenate([stain_n, dent_n])})
    kinds = ["stain"] * n_defects + ["dent"] * n_defects
    base = LateFusion("tail_sum").fit(np.stack([cal_i.ravel(), cal_n.ravel()], 1))
    chosen, info = select_fusion(model, base, maps, list(stain_masks) + list(dent_masks), kinds)
    model.image_fusion = model.fit_image_units(maps.good)  # the default image score's units, as a fit sets them
    good_i, good_n, _ = _maps(60, rng, False)
    bad_i, bad_n, _ = _maps(60, rng, True, amplitude)
    labels = np.r_[np.zeros(60), np.ones(60)]
    test = {"rgb": np.concatenate([good_i, bad_i]), "xyz": np.concatenate([good_n, bad_n])}
    fused_scores, _ = model.fuse_maps(test, chosen.fusion)
    alone = model._map_image_scores(test["rgb"])
    return chosen, info, roc_auc_score(labels, fused_scores), roc_auc_score(labels, alone)


@pytest.mark.parametrize("amplitude", [1.0, 1.5, 2.0])
def test_self_check_drops_a_modality_shown_uninformative_with_confidence(amplitude):
    """One modality is pure noise, the other carries the defects. With enough self-check samples
    (150 good parts, 150 synthetic defects of each kind) the noise modality is below
    UNINFORMATIVE_AUROC in DROP_CONFIDENCE of the bootstrap resamples: it is dropped, and the
    fused detector stays within 0.01 I-AUROC of the informative modality alone on unseen data."""
    chosen, info, fused, alone = _noise_case(amplitude, 150, 150)
    assert info["xyz"] < UNINFORMATIVE_AUROC <= info["rgb"]
    assert chosen.informativeness_upper["xyz"] < UNINFORMATIVE_AUROC <= chosen.informativeness_upper["rgb"]
    assert chosen.fusion_name.startswith("rgb only")
    assert fused >= alone - 0.01


def test_self_check_keeps_a_modality_whose_uselessness_is_uncertain():
    """With 10 held-out good parts and 15 synthetic defects, a pure-noise modality's AUROC can be
    below 0.6 by chance as often as a useful but noisy 3D branch's (demo-304 cookie: 0.40-0.44 with
    the 3D branch at 0.74 on real defects, docs/evaluation.md): unless the resamples are confident,
    it is kept, and keeping pure noise costs the fused detector little (here ~0.03 I-AUROC)."""
    chosen, info, fused, alone = _noise_case(1.0, 10, 15)
    assert info["xyz"] < UNINFORMATIVE_AUROC <= chosen.informativeness_upper["xyz"]
    assert chosen.fusion_name == "tail_sum (equal weights)"
    assert alone - 0.04 <= fused < alone


def test_self_check_keeps_two_informative_modalities():
    rng = np.random.default_rng(9)
    model = _model()
    cal_a, _, _ = _maps(10, rng, False)
    cal_b, _, _ = _maps(10, rng, False)
    a_bad, _, masks = _maps(15, rng, True, 1.5)
    b_bad, _, masks_b = _maps(15, rng, True, 1.5)
    a_ok, _, _ = _maps(15, rng, False)
    b_ok, _, _ = _maps(15, rng, False)
    maps = VariantMaps({"rgb": cal_a, "xyz": cal_b},
                       {"rgb": np.concatenate([a_bad, a_ok]), "xyz": np.concatenate([b_ok, b_bad])})
    base = LateFusion("tail_sum").fit(np.stack([cal_a.ravel(), cal_b.ravel()], 1))
    chosen, info = select_fusion(model, base, maps, list(masks) + list(masks_b), ["stain"] * 15 + ["dent"] * 15)
    assert min(info.values()) > UNINFORMATIVE_AUROC
    assert chosen.fusion_name == "tail_sum (equal weights)" and chosen.fusion.weights is None


def test_uncertain_band_starts_above_the_image_threshold_and_ends_above_every_good_score():
    from core.self_check import Candidate, seeded_uncertain_until
    from core.thresholds import NG, OK, UNCERTAIN, verdict

    empty = np.zeros((0, 4, 4))
    cand = Candidate("frozen", "x", None, 0.9, 0.9, np.array([1.0, 2.5, 2.0]), np.array([3.0, 4.0]), empty, empty)
    upper = seeded_uncertain_until(cand, 1.5)
    assert 2.5 < upper < 2.5 + 1e-12
    assert [verdict(s, 1.5, upper) for s in (1.0, 2.0, 2.5, 3.0)] == [OK, UNCERTAIN, UNCERTAIN, NG]
    assert seeded_uncertain_until(cand, 2.6) is None  # every good part is already below the threshold
    no_good = Candidate("frozen", "x", None, 0.9, 0.9, np.zeros(0), np.array([3.0]), empty, empty)
    assert seeded_uncertain_until(no_good, 1.0) is None


def test_seeded_image_threshold_is_the_bagged_cut_with_its_spread_in_the_record():
    from core.self_check import Candidate, seeded_how, seeded_thresholds
    from core.thresholds import bagged_best_f1_threshold

    rng = np.random.default_rng(3)
    good, bad = rng.normal(0, 1, 10), rng.normal(1.5, 1, 30)
    empty = np.zeros((0, 4, 4))
    seeded = seeded_thresholds(Candidate("frozen", "x", None, 0.9, 0.9, good, bad, empty, empty), [], 7, pixel=False)
    labels = np.r_[np.zeros(10, bool), np.ones(30, bool)]
    assert seeded.image == bagged_best_f1_threshold(labels, np.r_[good, bad], 7) and seeded.pixel is None
    low, high = seeded.image_spread
    assert low < seeded.image < high  # overlapping scores: the resamples' cuts spread around it
    how = seeded_how(30, "validation/good (10 samples)", seeded)
    assert how.startswith("best F1 on 30 synthetic defects vs validation/good (10 samples)")
    assert f"80 % of their cuts within {low:.4g}–{high:.4g}" in how


def test_a_seeded_cut_at_the_scores_floor_is_raised_to_the_lowest_good_score_above_it():
    """A units image score is 0 for a good part below the median on every modality; where the best
    F1 is to flag every self-check sample the cut lands on 0, which would flag every part there will
    ever be. It is raised to the lowest good score above 0 (training parts scored leave-one-out
    count), and the record says so; a cut above the floor is left alone."""
    from core.self_check import Candidate, seeded_how, seeded_thresholds

    empty = np.zeros((0, 4, 4))
    good = np.r_[np.zeros(4), [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]]
    bad = np.r_[np.zeros(20), np.full(10, 0.3)]  # subtle synthetic defects at the floor: F1 flags everything
    floor = Candidate("frozen", "x", None, 0.5, 0.5, good, bad, empty, empty)
    seeded = seeded_thresholds(floor, [], 7, pixel=False, training_good=np.array([0.0, 0.45]))
    assert seeded.raised_from_floor and seeded.image == 0.45
    assert seeded_how(30, "validation/good (10 samples)", seeded).endswith(
        "that cut (0) flagged every part, so it was raised to the lowest good score above 0")
    apart = Candidate("frozen", "x", None, 1.0, 1.0, good, np.full(30, 5.0), empty, empty)
    kept = seeded_thresholds(apart, [], 7, pixel=False)
    assert not kept.raised_from_floor and kept.image > 1.0
    assert "raised" not in seeded_how(30, "validation/good (10 samples)", kept)


def test_outline_threshold_outlines_every_flagged_self_check_sample():
    from core.self_check import Candidate, outline_threshold

    rng = np.random.default_rng(1)
    good_maps = rng.random((4, 8, 8)).astype(np.float32)
    pseudo_maps = rng.random((6, 8, 8)).astype(np.float32) * 2
    good_scores = np.array([0.5, 1.2, 0.7, 0.9])
    pseudo_scores = np.array([1.5, 2.5, 1.1, 3.0, 0.4, 2.0])
    cand = Candidate("frozen", "x", None, 0.9, 0.9, good_scores, pseudo_scores, good_maps, pseudo_maps)
    image_thr = 1.0
    p = outline_threshold(cand, image_thr)
    assert p <= image_thr
    flagged = [m for m, sc in zip(list(good_maps) + list(pseudo_maps), np.r_[good_scores, pseudo_scores]) if sc >= image_thr]
    assert all((m >= p).any() for m in flagged)
    assert any(m.max() == p for m in flagged) or p == image_thr  # no lower than it has to be


def _candidate(variant: str, good: np.ndarray, bad: np.ndarray):
    from core.self_check import Candidate

    empty = np.zeros((0, 4, 4))
    labels = np.r_[np.zeros(len(good), bool), np.ones(len(bad), bool)]
    auroc = float(roc_auc_score(labels, np.r_[good, bad]))
    return Candidate(variant, "tail_sum", None, auroc, auroc, good, bad, empty, empty)


def test_adapted_wins_share_is_a_paired_bootstrap_of_the_auroc_difference():
    from core.self_check import adapted_wins_share

    rng = np.random.default_rng(0)
    good, bad = rng.normal(0, 1, 10), rng.normal(1.5, 1, 30)
    frozen = _candidate("frozen", good, bad)
    assert adapted_wins_share(_candidate("adapted", good, bad), frozen, 0) == 0.0  # a tie never wins
    assert adapted_wins_share(_candidate("adapted", good, bad + 2.0), frozen, 0) > 0.99  # ties (both 1.0) do not win
    slightly = adapted_wins_share(_candidate("adapted", good, bad + 0.1), frozen, 0)
    assert 0.5 < slightly < 1.0
    assert adapted_wins_share(_candidate("adapted", good, bad + 0.1), frozen, 0) == slightly  # seeded


def test_the_adaptors_are_kept_only_when_the_self_check_is_confident():
    """A higher self-check score is not enough: the adapted variant must also win in at least
    ADAPT_CONFIDENCE of the bootstrap resamples, else the simpler frozen variant is kept."""
    from core.self_check import ADAPT_CONFIDENCE, ADAPT_MARGIN, choose_variant

    rng = np.random.default_rng(1)
    good, bad = rng.normal(0, 1, 10), rng.normal(1.2, 1, 30)
    frozen = _candidate("frozen", good, bad)
    few = bad.copy()
    few[np.argsort(bad)[:3]] += 0.8  # better on three of the hardest synthetic defects only
    for scores, expected in ((few, "frozen"), (bad + 3.0, "adapted")):
        adapted = _candidate("adapted", good, scores)
        assert adapted.score >= frozen.score + ADAPT_MARGIN  # the score margin alone would keep it
        chosen, wins = choose_variant(adapted, frozen, seed=0)
        assert chosen.variant == expected and (wins >= ADAPT_CONFIDENCE) == (expected == "adapted")
    worse = _candidate("adapted", good, bad - 0.5)
    assert choose_variant(worse, frozen, seed=0)[0].variant == "frozen"


@pytest.fixture(scope="module")
def tiny_rgb_fit(tmp_path_factory):
    """(dataset root, cache dir) of a tiny demo puck for RGB-only fits with a self-check."""
    from core.demo import generate_demo_dataset

    root = generate_demo_dataset(tmp_path_factory.mktemp("d") / "d", seed=4, categories=["puck"], size=128,
                                 n_train=8, n_validation=3, n_test_good=1, n_test_per_defect=1)
    return root, str(tmp_path_factory.mktemp("cache"))


def test_self_check_scores_with_the_search_the_model_scores_parts_with(tiny_rgb_fit, monkeypatch):
    """The bank's search (here IVF-Flat, the size and cost limits lifted) is chosen before the
    self-check, and every self-check and calibration search goes through it, as scoring does."""
    from core import self_check
    from core.pipeline import fit
    from core.scoring import ann
    from core.scoring.memory_bank import MemoryBank

    root, cache = tiny_rgb_fit
    monkeypatch.setattr(ann, "ANN_MIN_BANK", 1)
    monkeypatch.setattr(ann, "MAX_DISTANCE_SHARE", 1.0)
    searches, in_check = [], []
    real_knn, real_check = MemoryBank.knn, self_check.run_self_check

    def spying_knn(self, queries, k, exact=False):
        if in_check:
            searches.append((self.search.kind, self._ivf is not None and not exact))
        return real_knn(self, queries, k, exact)

    def spying_check(*args, **kwargs):
        in_check.append(True)
        try:
            return real_check(*args, **kwargs)
        finally:
            in_check.clear()

    monkeypatch.setattr(MemoryBank, "knn", spying_knn)
    monkeypatch.setattr(self_check, "run_self_check", spying_check)
    model = fit(root, "puck", FitConfig(cache_dir=cache, modalities="rgb"))
    assert model.banks["rgb"].search.kind == "ivf_flat"  # the check passed on the validation patches
    assert len(searches) >= 4 * 3  # 3 held-out good samples and their 9 synthetic defects
    assert set(searches) == {("ivf_flat", True)}


def test_fit_extracts_each_calibration_sample_once(tiny_rgb_fit, monkeypatch):
    """The search check, the self-check and the calibration share one extraction of the held-out
    samples' features, and the self-check's outputs are those of a fit that extracts them anew."""
    from core import tokens
    from core.model import Model
    from core.pipeline import fit
    from core.scoring import ann

    root, cache = tiny_rgb_fit
    monkeypatch.setattr(ann, "ANN_MIN_BANK", 1)
    monkeypatch.setattr(ann, "MAX_DISTANCE_SHARE", 1.0)
    extracted: list[str] = []
    real_extract = tokens.extract_tokens

    def counting_extract(extractors, samples, *args, **kwargs):
        if extractors:
            extracted.extend(s.name for s in samples if s.split == "validation" and s.label == "good")
        return real_extract(extractors, samples, *args, **kwargs)

    monkeypatch.setattr(tokens, "extract_tokens", counting_extract)
    config = FitConfig(cache_dir=cache, modalities="rgb")
    shared = fit(root, "puck", config)
    assert len(extracted) == 3 and len(set(extracted)) == 3

    real_scored = Model.scored_tokens
    monkeypatch.setattr(Model, "scored_tokens",  # every step extracts its own features
                        lambda self, prepared, batch_size, timings=None, progress=None, stage="Extracting features",
                        features=None: real_scored(self, prepared, batch_size, timings, progress, stage))
    extracted.clear()
    separate = fit(root, "puck", config)
    assert len(extracted) > 3
    assert separate.info["self_check"]["candidates"] == shared.info["self_check"]["candidates"]
    assert separate.thresholds.image == shared.thresholds.image


def test_topk_mean_is_exact_on_maps_with_many_equal_values():
    """The top-k mean (the map-based image score) on fused maps that are mostly 0 (the good-tail
    floor), all 0, have fewer than k values above the floor, or are negative, against a full sort."""
    model = Model(FitConfig(image_topk=50), ("rgb",), {}, {}, LateFusion("tail_sum"), LateFusion("tail_sum"),
                  Thresholds(0.0, 0.0), (0.0, 1.0))
    k = model.config.topk_pixels()
    rng = np.random.default_rng(0)
    smooth = gaussian_filter(rng.random((6, 224, 224)), (0, 3, 3)).astype(np.float32)
    floor = np.where(smooth > np.quantile(smooth, 0.97), smooth, 0).astype(np.float32)
    few = np.zeros_like(smooth)
    few[:, :4, :4] = smooth[:, :4, :4]  # 16 values above the floor, k = 50
    for maps in (smooth, floor, np.zeros_like(smooth), few, smooth - 1.0, floor.astype(np.float64)):
        expected = np.sort(maps.reshape(len(maps), -1), axis=1)[:, -k:].mean(axis=1, dtype=np.float64)
        got = model._topk_mean(maps)
        assert got.dtype == maps.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert model._topk_mean(np.zeros((0, 8, 8), np.float32)).shape == (0,)


def test_wide_severity_reaches_larger_and_deeper_defects():
    """WIDE draws from the subtle end up to gross: over the same draws its dents go deeper and its
    stains and holes cover more pixels than SUBTLE's, and it never exceeds its stated ranges."""
    from core.pseudo_defects import SUBTLE, WIDE

    good = _part(8)

    def measure(kind, severity):
        out = [add_defect(good, kind, np.random.default_rng(i), severity=severity) for i in range(12)]
        if kind == "dent":
            return [float(np.abs(o.xyz[..., 2] - good.xyz[..., 2]).max()) for o in out]
        return [int(o.mask.sum()) for o in out]

    for kind in ("dent", "stain", "hole"):
        subtle, wide = measure(kind, SUBTLE), measure(kind, WIDE)
        assert max(wide) > 1.5 * max(subtle), kind
    assert max(measure("dent", SUBTLE)) <= 1.01e-3 and max(measure("dent", WIDE)) <= 4.04e-3


def test_synthetic_estimate_counts_every_defect_it_is_given():
    """Every synthetic defect counts against the same good samples: easy defects added to hard
    ones raise the I-AUROC to their share-weighted mix."""
    from core.self_check import synthetic_estimate as pooled_estimate

    good = np.array([1.0, 2.0, 3.0, 4.0])
    hard, easy = np.array([2.5, 2.5]), np.array([9.0, 9.0])
    maps = [np.zeros((8, 8), np.float32)] * 4
    masks = [np.eye(8, dtype=bool)] * 2
    hard_only = pooled_estimate(good, hard, maps, maps[:2], masks, seed=0)
    both = pooled_estimate(good, np.r_[hard, easy], maps, maps, masks * 2, seed=0)
    assert hard_only["image_auroc"] == pytest.approx(0.5) and both["image_auroc"] == pytest.approx(0.75)
    assert both["what"].startswith("estimate from 4 synthetic defects") and "on 4 held-out good" in both["what"]
    low, high = both["image_auroc_interval"]
    assert low <= 0.75 <= high


def test_the_estimates_interval_narrows_with_more_samples_and_brackets_the_estimate():
    """The bootstrap interval of the synthetic-defect I-AUROC contains the estimate, is seeded,
    and is narrower with four times as many samples drawn from the same score distributions."""
    from core.self_check import auroc_interval

    rng = np.random.default_rng(5)
    few_good, few_bad = rng.normal(0, 1, 10), rng.normal(1.2, 1, 40)
    many_good, many_bad = rng.normal(0, 1, 40), rng.normal(1.2, 1, 160)
    low, high = auroc_interval(few_good, few_bad, seed=0)
    estimate = roc_auc_score(np.r_[np.zeros(10), np.ones(40)], np.r_[few_good, few_bad])
    assert low <= estimate <= high and 0.0 <= low < high <= 1.0
    assert auroc_interval(few_good, few_bad, seed=0) == (low, high)
    m_low, m_high = auroc_interval(many_good, many_bad, seed=0)
    assert m_high - m_low < 0.75 * (high - low)
    # perfectly separated scores: every resample is 1.0
    assert auroc_interval(np.zeros(5), np.ones(7), seed=1) == (1.0, 1.0)


def test_estimate_record_carries_the_interval_and_its_text():
    from core.self_check import estimate_record, interval_text

    record = estimate_record(0.8312, 0.9, 40, 10, (0.7123, 0.9234))
    assert record["image_auroc_interval"] == [0.7123, 0.9234] and record["interval_level"] == 0.9
    assert interval_text(record) == " (90 % bootstrap interval 0.712–0.923)"
    assert "image_auroc_interval" not in estimate_record(0.8, 0.9, 40, 10)
    assert interval_text(estimate_record(0.8, 0.9, 40, 10)) == ""


def test_a_synthetic_defect_that_leaves_the_point_cloud_keeps_its_good_parts_3d_features(tmp_path, monkeypatch):
    """The self-check's synthetic defects that change only the RGB image (stain, cut-paste, scratch)
    take their good part's 3D features instead of extracting them again (core.tokens.known_features):
    fewer point clouds go through the 3D extractor, and every self-check output, threshold and the
    estimate are those of a fit that extracts each of them anew."""
    from core import tokens
    from core.demo import generate_demo_dataset
    from core.features.surface import FPFHSurfaceFeatures
    from core.pipeline import fit

    root = generate_demo_dataset(tmp_path / "d", seed=6, categories=["puck"], size=128, n_train=8,
                                 n_validation=3, n_test_good=1, n_test_per_defect=1)
    clouds: list[int] = []
    real_extract = FPFHSurfaceFeatures.extract

    def counting_extract(self, batch, grid=28, progress=None):
        clouds.append(len(batch))
        return real_extract(self, batch, grid, progress)

    monkeypatch.setattr(FPFHSurfaceFeatures, "extract", counting_extract)
    config = FitConfig(cache_dir=str(tmp_path / "cache"), adapt=False)
    reused = fit(root, "puck", config)
    n_reused = sum(clouds)
    monkeypatch.setattr(tokens, "REUSABLE_MODALITIES", ())
    clouds.clear()
    anew = fit(root, "puck", config)
    n_anew = sum(clouds)
    # 3 held-out parts x (3 subtle + 2 estimate) synthetic defects; about 3 of every 7 change only the RGB
    assert n_anew >= 3 * 5 and n_reused <= n_anew - 4  # measured 20 against 26
    assert reused.info["self_check"]["candidates"] == anew.info["self_check"]["candidates"]
    assert reused.info["self_check"]["estimate"] == anew.info["self_check"]["estimate"]
    assert (reused.thresholds.image, reused.thresholds.pixel) == (anew.thresholds.image, anew.thresholds.pixel)


def _record(chosen, info) -> dict:
    """The model file's self-check record (self_check.summary) of one candidate."""
    return {"variant": chosen.variant, "fusion": chosen.fusion_name,
            "candidates": [{"variant": chosen.variant, "fusion": chosen.fusion_name, "modality_informativeness": info,
                            "informativeness_upper": chosen.informativeness_upper}]}


def test_a_modality_kept_near_chance_is_reported_and_a_dropped_one_is_not():
    from core.self_check import describe_weak_modalities, weak_kept_modalities

    chosen, info, _, _ = _noise_case(1.0, 10, 15)  # pure noise, kept: its uselessness is uncertain
    record = _record(chosen, info)
    assert [m for m, _, _ in weak_kept_modalities(record)] == ["xyz"]
    line = describe_weak_modalities(record)
    assert f"the xyz branch told its own synthetic defects from the held-out good parts at I-AUROC {info['xyz']:.2f}" in line
    assert "unknown" in line and "--modalities rgb" in line and "rgb branch" not in line
    dropped, info2, _, _ = _noise_case(1.0, 150, 150)  # dropped with confidence: the fusion says so already
    assert dropped.fusion_name.startswith("rgb only") and describe_weak_modalities(_record(dropped, info2)) == ""
    assert describe_weak_modalities({}) == ""  # a model fitted without the self-check
