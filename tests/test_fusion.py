"""Late fusion of per-modality anomaly scores."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.scoring.fusion import MODES, LateFusion


def nominal_scores(n: int, seed: int) -> np.ndarray:
    """Positive kNN-like scores: xyz around 2, rgb around 27 (very different scales)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.gamma(16, 0.125, n), rng.gamma(36, 0.75, n)], axis=1)


@pytest.mark.parametrize("mode", MODES)
def test_anomalous_rows_get_higher_fused_scores(mode):
    train = nominal_scores(200, 0)
    fusion = LateFusion(mode).fit(train)
    normal = nominal_scores(100, 1)
    only_xyz = normal[:30].copy()
    only_xyz[:, 0] *= 2.5  # geometry defect: rgb stays nominal
    only_rgb = normal[30:60].copy()
    only_rgb[:, 1] *= 2.0  # colour defect: xyz stays nominal
    both = normal[60:90] * 1.8
    for anomalous in (only_xyz, only_rgb, both):
        fused = fusion.transform(np.concatenate([normal, anomalous]))
        labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
        assert roc_auc_score(labels, fused) > 0.95  # a wrong sign gives ~0
    # raising any one modality's score never lowers the fused score (max: non-decreasing)
    base = fusion.transform(normal)
    for j in range(2):
        bumped = normal.copy()
        bumped[:, j] += 1.0
        raised = fusion.transform(bumped)
        assert (raised >= base).all() and (raised > base).any()
        if mode in ("sum", "ocsvm"):  # linear modes; the others clip or take a maximum
            assert (raised > base).all()


@pytest.mark.parametrize("mode", ["sum", "ocsvm"])
def test_fusion_ignores_per_modality_scale(mode):
    """Per-modality scaling makes M3DM's fixed 0.1 factor on RGB unnecessary."""
    train, test = nominal_scores(200, 2), nominal_scores(50, 3) * [1.5, 1.2]
    a = LateFusion(mode).fit(train).transform(test)
    b = LateFusion(mode).fit(train * [1.0, 0.1]).transform(test * [1.0, 0.1])
    np.testing.assert_allclose(np.argsort(a), np.argsort(b))
    np.testing.assert_allclose(a / a.mean(), b / b.mean(), rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_background_zero_rows_do_not_change_the_fit(mode):
    train = nominal_scores(5000, 4)
    with_bg = np.concatenate([train, np.zeros((12000, 2))])  # background pixels of the maps
    plain, bg = LateFusion(mode).fit(train), LateFusion(mode).fit(with_bg)
    assert (plain.coef > 0).all()
    test = nominal_scores(50, 5)
    np.testing.assert_allclose(bg.transform(test), plain.transform(test), rtol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_single_modality_is_monotone(mode):
    rng = np.random.default_rng(5)
    train = rng.gamma(4, 0.5, 300)
    fusion = LateFusion(mode).fit(train)
    test = np.sort(rng.gamma(4, 0.5, 100))
    fused = fusion.transform(test)
    assert fused.shape == (100,)
    if mode.startswith("tail_"):  # clipped at 0 below the nominal median, increasing above it
        above = test > np.median(train)
        assert (np.diff(fused) >= 0).all() and (np.diff(fused[above]) > 0).all()
    else:
        assert (np.diff(fused) > 0).all()


@pytest.mark.parametrize("mode", MODES)
def test_state_round_trip_through_json(mode):
    fusion = LateFusion(mode).fit(nominal_scores(200, 6))
    again = LateFusion.from_state(json.loads(json.dumps(fusion.state())))
    test = nominal_scores(40, 7)
    np.testing.assert_array_equal(again.transform(test), fusion.transform(test))
    unfitted = LateFusion.from_state(json.loads(json.dumps(LateFusion(mode).state())))
    assert unfitted.mode == mode and not unfitted.fitted


def test_pixel_scale_rows_and_errors():
    rng = np.random.default_rng(8)
    pixels = rng.gamma(2, 0.5, (1_000_000, 2)).astype(np.float32)
    fusion = LateFusion("ocsvm").fit(pixels)
    fused = fusion.transform(pixels)
    assert fused.shape == (1_000_000,) and fused.dtype == np.float32
    with pytest.raises(ValueError):
        LateFusion("mean")
    with pytest.raises(ValueError):
        LateFusion("sum").transform(pixels[:3])
    with pytest.raises(ValueError):
        fusion.transform(pixels[:3, :1])
    with pytest.raises(ValueError):
        fusion.transform(np.array([[np.nan, 1.0]]))
    bad = fusion.state()
    bad["std"] = [0.0, 1.0]
    with pytest.raises(ValueError):
        LateFusion.from_state(bad)
    with pytest.raises(ValueError):
        LateFusion.from_state({"version": 99, "mode": "sum"})
    const = LateFusion("sum").fit(np.c_[np.ones(10), np.arange(10.0)])
    assert np.isfinite(const.transform(np.c_[np.ones(3), np.arange(3.0)])).all()


def _noise_and_signal_maps(n: int, defective: bool, amplitude: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(informative, pure-noise) 56×56 score maps: the first carries Gaussian blobs on defective
    images, the second is heavy-tailed noise on another scale that never sees the defects."""
    from scipy.ndimage import gaussian_filter

    informative = gaussian_filter(rng.gamma(9, 1 / 3, (n, 56, 56)), (0, 1.5, 1.5))
    noise = gaussian_filter(rng.lognormal(0, 0.5, (n, 56, 56)) * 40, (0, 1.5, 1.5))
    if defective:
        yy, xx = np.mgrid[:56, :56]
        for i in range(n):
            y, x = rng.integers(8, 48, 2)
            r = rng.uniform(2, 5)
            informative[i] += amplitude * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * r * r))
    return informative.astype(np.float32), noise.astype(np.float32)


def _top_mean(maps: np.ndarray, k: int = 25) -> np.ndarray:
    flat = maps.reshape(len(maps), -1)
    return np.sort(flat, axis=1)[:, -k:].mean(axis=1)


def test_tail_units_make_missing_data_neutral():
    """A pixel where one modality has no data (score 0, e.g. no 3D point in a hole) is scored by
    the other modality alone, not pulled down as in standardised sums."""
    rng = np.random.default_rng(3)
    cal = np.stack([rng.gamma(9, 1 / 3, 5000), rng.gamma(16, 2.0, 5000)], axis=1)
    for mode in ("tail_sum", "tail_max"):
        fusion = LateFusion(mode).fit(cal)
        hot_rgb_no_xyz = np.array([[np.quantile(cal[:, 0], 0.9999) * 1.5, 0.0]])
        typical = np.median(cal, axis=0, keepdims=True)
        assert fusion.transform(hot_rgb_no_xyz)[0] > 1.0  # above one good-tail unit
        assert fusion.transform(typical)[0] == pytest.approx(0.0, abs=1e-6)
        assert fusion.transform(np.zeros((1, 2)))[0] == 0.0


@pytest.mark.parametrize("mode", ["tail_sum", "tail_max"])
def test_tail_terms_are_what_transform_adds_or_maximises(mode):
    rng = np.random.default_rng(3)
    nominal = rng.gamma(2.0, [1.0, 5.0], size=(500, 2))
    fusion = LateFusion(mode).fit(nominal).with_weights([1.0, 0.5])
    rows = rng.gamma(2.0, [1.0, 5.0], size=(50, 2)) * 2
    terms = fusion.tail_terms(rows)
    assert terms.shape == (50, 2) and (terms >= 0).all()
    expected = terms.sum(1) if mode == "tail_sum" else terms.max(1)
    np.testing.assert_allclose(fusion.transform(rows), expected)
    with pytest.raises(ValueError):
        LateFusion("sum").fit(nominal).tail_terms(rows)


def test_modality_topk_image_score_is_not_diluted_by_a_quiet_modality():
    """A defect one modality sees, the other not: the per-modality top-k sum keeps its full
    strength (the fused map's top-k mean adds the quiet modality's *local* values instead of its
    own top-k), equals the map's top-k with one modality, and respects the region of interest."""
    from core.config import FitConfig
    from core.model import Model
    from core.results import Thresholds

    rng = np.random.default_rng(0)
    s, b = 56, 6
    rgb = rng.gamma(2.0, 0.5, (b, s, s)).astype(np.float32)
    xyz = rng.gamma(2.0, 0.5, (b, s, s)).astype(np.float32)
    rgb[:, 5:12, 5:12] += 6.0  # the RGB defect
    xyz[:, 40:47, 40:47] += 3.0  # an xyz hot spot elsewhere (noise the top-k of xyz picks up)
    fusion = LateFusion("tail_sum").fit(np.stack([rgb.ravel(), xyz.ravel()], 1))
    cfg = dict(image_size=s, grid=28, image_topk=250)
    per = Model(FitConfig(fused_image_score="modality_topk", **cfg), ("rgb", "xyz"), {}, {}, fusion, fusion,
                Thresholds(0, 0), (0, 1))
    mapk = Model(FitConfig(fused_image_score="map_topk", **cfg), ("rgb", "xyz"), {}, {}, fusion, fusion,
                 Thresholds(0, 0), (0, 1))
    maps = {"rgb": rgb, "xyz": xyz}
    img_per, pix_per = per.fuse_maps(maps)
    img_map, pix_map = mapk.fuse_maps(maps)
    np.testing.assert_array_equal(pix_per, pix_map)  # the same fused map either way
    terms = fusion.tail_terms(np.stack([rgb.ravel(), xyz.ravel()], 1)).reshape(b, s, s, 2)
    np.testing.assert_allclose(img_per, per._topk_mean(terms[..., 0]) + per._topk_mean(terms[..., 1]), rtol=1e-5)
    assert (img_per > img_map).all()
    # one modality: the same as the fused map's top-k mean
    single = LateFusion("tail_sum").fit(rgb.reshape(-1, 1))
    one = Model(FitConfig(fused_image_score="modality_topk", **cfg), ("rgb",), {}, {}, single, single,
                Thresholds(0, 0), (0, 1))
    one_map = Model(FitConfig(fused_image_score="map_topk", **cfg), ("rgb",), {}, {}, single, single,
                    Thresholds(0, 0), (0, 1))
    np.testing.assert_allclose(one.fuse_maps({"rgb": rgb})[0], one_map.fuse_maps({"rgb": rgb})[0], rtol=1e-6)
    # ignored pixels do not count: an ROI that leaves out the RGB defect lowers the score
    roi = np.ones((b, s, s), bool)
    roi[:, :20, :20] = False
    assert (per.fuse_maps(maps, roi=roi)[0] < img_per).all()


def test_a_dropped_modality_leaves_the_image_score_but_stays_in_the_map():
    """The self-check's weight 0 removes a modality from the image score; the anomaly map keeps
    it (``dropped_modality_in_map``, the default), or drops it too (model files written before)."""
    from core.config import FitConfig
    from core.model import Model
    from core.results import Thresholds

    rng = np.random.default_rng(1)
    s, b = 56, 3
    rgb = rng.gamma(2.0, 0.5, (b, s, s)).astype(np.float32)
    xyz = rng.gamma(2.0, 0.5, (b, s, s)).astype(np.float32)
    fusion = LateFusion("tail_sum").fit(np.stack([rgb.ravel(), xyz.ravel()], 1)).with_weights([1.0, 0.0])
    dent = xyz.copy()
    dent[:, 30:38, 30:38] += 8.0  # a defect only the dropped 3D branch sees
    cfg = dict(image_size=s, grid=28, image_topk=250)

    def model(**kw):
        return Model(FitConfig(**cfg, **kw), ("rgb", "xyz"), {}, {}, fusion, fusion, Thresholds(0, 0), (0, 1))

    keeps, drops = model(), model(dropped_modality_in_map=False)
    img, pix = keeps.fuse_maps({"rgb": rgb, "xyz": dent})
    img_plain, pix_plain = keeps.fuse_maps({"rgb": rgb, "xyz": xyz})
    np.testing.assert_array_equal(img, img_plain)  # the image score does not see the 3D defect
    assert (pix[:, 30:38, 30:38].mean(axis=(1, 2)) > pix_plain[:, 30:38, 30:38].mean(axis=(1, 2)) + 1).all()
    old_img, old_pix = drops.fuse_maps({"rgb": rgb, "xyz": dent})
    np.testing.assert_array_equal(old_img, img)
    np.testing.assert_allclose(old_pix, drops.fuse_maps({"rgb": rgb, "xyz": xyz})[1])  # the old rule: not in the map
    assert FitConfig.from_dict({}).dropped_modality_in_map is False  # a model file from before the setting
    # a map-based image score keeps the weights in the map (its image score is the map's)
    mapk = model(fused_image_score="map_topk")
    np.testing.assert_allclose(mapk.fuse_maps({"rgb": rgb, "xyz": dent})[1], old_pix)


def test_modality_units_puts_each_modality_in_units_of_its_good_parts_reach():
    """``modality_units``: each modality's top-k mean, in units of how far the good parts' top-k
    means reach on it, summed. A noisy modality (high good scores) counts less than a quiet one by
    the same raw amount; a modality the self-check dropped (weight 0) does not count; the ROI
    applies; with one modality it is the fused map's top-k mean ("map_topk")."""
    from core.config import FitConfig
    from core.model import Model
    from core.results import Thresholds

    rng = np.random.default_rng(1)
    s, b = 56, 10
    good = {"rgb": rng.gamma(2.0, 0.5, (b, s, s)).astype(np.float32),
            "xyz": rng.gamma(2.0, 2.0, (b, s, s)).astype(np.float32)}  # xyz: 4x noisier
    pixel = LateFusion("tail_sum").fit(np.stack([good["rgb"].ravel(), good["xyz"].ravel()], 1))
    cfg = FitConfig(fused_image_score="modality_units", image_size=s, grid=28, image_topk=20)
    model = Model(cfg, ("rgb", "xyz"), {}, {}, pixel, pixel, Thresholds(0, 0), (0, 1))
    assert model.units_image_score and not model.map_based_image_score
    model.image_fusion = model.fit_image_units(good)
    per = model.modality_topk_scores(good)
    np.testing.assert_allclose(per[:, 1], model._topk_mean(good["xyz"]), rtol=1e-6)
    img_good, _ = model.fuse_maps(good)
    assert img_good.max() <= 2.02  # no good part past ~one unit (0.999 quantile of 10) on either modality
    test = {m: v[:2].copy() for m, v in good.items()}
    test["rgb"][0, 10:15, 10:15] += 4.0  # +4 raw on the quiet modality
    test["xyz"][1, 10:15, 10:15] += 4.0  # +4 raw on the noisy one
    img, pix = model.fuse_maps(test)
    assert img[0] > img[1] > img_good.min()
    np.testing.assert_array_equal(pix, model.fuse_maps(test, image_units=model.image_fusion)[1])
    dropped = model.fuse_maps(test, fusion=pixel.with_weights([1.0, 0.0]))[0]
    terms = model.image_fusion.tail_terms(model.modality_topk_scores(test))
    np.testing.assert_allclose(dropped, terms[:, 0], rtol=1e-5)
    roi = np.ones((2, s, s), bool)
    roi[:, 5:20, 5:20] = False  # leaves out both defects
    masked = model.fuse_maps(test, roi=roi)[0]
    assert masked[0] < img[0] and masked[1] <= img[1]
    single = LateFusion("tail_sum").fit(good["rgb"].reshape(-1, 1))
    one = Model(cfg, ("rgb",), {}, {}, single, single, Thresholds(0, 0), (0, 1))
    assert one.map_based_image_score and not one.units_image_score
    np.testing.assert_allclose(one.fuse_maps({"rgb": test["rgb"]})[0],
                               one._topk_mean(one.fuse_maps({"rgb": test["rgb"]})[1]), rtol=1e-6)


def test_units_fusion_max_takes_the_largest_modality_so_a_noisy_one_adds_nothing():
    """``units_fusion="max"``: the units image score is the largest modality's units (the tail
    terms' maximum), not their sum. With an RGB branch that is pure noise on these parts (its
    good parts' top-k means spread as widely as the defective ones') and shallow defects that only
    the 3D branch sees just past the good parts' reach, the largest stays within 0.01 I-AUROC of
    the 3D branch alone and above the sum; the anomaly map is the same for both."""
    from core.config import FitConfig
    from core.errors import UserError
    from core.metrics import image_auroc
    from core.model import Model
    from core.results import Thresholds

    rng = np.random.default_rng(3)
    s, n = 28, 60

    def parts(k, defect):
        # rgb: each part's own level (a print that differs part to part) + pixel noise
        rgb = (rng.gamma(2.0, 0.5, (k, 1, 1)) * 3 + rng.gamma(2.0, 0.1, (k, s, s))).astype(np.float32)
        xyz = rng.gamma(2.0, 0.1, (k, s, s)).astype(np.float32)
        if defect:
            xyz[:, 10:14, 10:14] += 0.8  # a shallow dent, just past the good parts on the 3D branch only
        return {"rgb": rgb, "xyz": xyz}

    good, test_good, test_bad = parts(n, False), parts(30, False), parts(30, True)
    pixel = LateFusion("tail_sum").fit(np.stack([good["rgb"].ravel(), good["xyz"].ravel()], 1))
    labels = np.r_[np.zeros(30, bool), np.ones(30, bool)]
    aurocs, maps = {}, {}
    for how in ("sum", "max"):
        cfg = FitConfig(fused_image_score="modality_units", units_fusion=how, image_size=s, grid=28, image_topk=8)
        model = Model(cfg, ("rgb", "xyz"), {}, {}, pixel, pixel, Thresholds(0, 0), (0, 1))
        model.image_fusion = model.fit_image_units(good)
        assert model.image_fusion.mode == ("tail_max" if how == "max" else "tail_sum")
        (img_g, map_g), (img_b, _) = model.fuse_maps(test_good), model.fuse_maps(test_bad)
        aurocs[how], maps[how] = image_auroc(labels, np.r_[img_g, img_b]), map_g
        terms = model.image_fusion.tail_terms(model.modality_topk_scores(test_good))
        np.testing.assert_allclose(img_g, terms.max(1) if how == "max" else terms.sum(1), rtol=1e-5)
    xyz_alone = image_auroc(labels, np.r_[model._topk_mean(test_good["xyz"]), model._topk_mean(test_bad["xyz"])])
    assert aurocs["max"] >= xyz_alone - 0.01  # measured 0.976 against 0.979
    assert aurocs["sum"] < aurocs["max"]  # the noisy branch costs the sum (0.964)
    np.testing.assert_array_equal(maps["sum"], maps["max"])
    with pytest.raises(UserError, match="units-fusion"):
        FitConfig(units_fusion="mean")
