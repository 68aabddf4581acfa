"""core.metrics against known answers (notes/evaluation.md 2.1), sklearn, and a slow reference."""

from bisect import bisect_right

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from core.metrics import aupro, image_auroc, pixel_auroc, pro_curve


# ---------------------------------------------------------------- slow reference (loops)

def slow_reference_aupro(masks, maps, limit=0.3, num_thresholds=100):
    """Straight loop transcription of the MVTec 3D-AD reference algorithm (and an exact mode)."""
    regions, normals = [], []
    for m, a in zip(masks, maps):
        lab, n = ndimage.label(np.asarray(m), structure=np.ones((3, 3), dtype=int))
        normals.extend(float(v) for v in np.asarray(a)[lab == 0])
        for k in range(1, n + 1):
            regions.append([float(v) for v in np.asarray(a)[lab == k]])
    normals.sort()
    n = len(normals)
    if num_thresholds is None:
        thresholds = sorted(set(normals))
        fprs = [sum(1 for v in normals if v > t) / n for t in thresholds]
    else:
        positions = [int(p) for p in np.linspace(0, n - 1, num=num_thresholds)]
        thresholds = [normals[p] for p in positions]
        fprs = [1.0 - (p + 1) / n for p in positions]
    pros = []
    for t in thresholds:
        overlaps = [sum(1 for v in r if v > t) / len(r) for r in regions]
        pros.append(sum(overlaps) / len(overlaps))
    x = [1.0] + fprs
    y = [1.0] + pros
    x, y = x[::-1], y[::-1]
    correction = 0.0
    if limit not in x:
        i = bisect_right(x, limit)
        y_at = y[i - 1] + (y[i] - y[i - 1]) * (limit - x[i - 1]) / (x[i] - x[i - 1])
        correction = 0.5 * (y_at + y[i - 1]) * (limit - x[i - 1])
    area = 0.0
    for j in range(1, len(x)):
        if x[j] <= limit:
            area += 0.5 * (y[j] + y[j - 1]) * (x[j] - x[j - 1])
    return (area + correction) / limit


def blob_data(seed, n_images=6, size=24, levels=None):
    """Noise maps with random rectangular/elliptic defects (some images defect-free)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_images, size, size), bool)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n_images):
        if i % 3 == 0:
            continue  # defect-free image
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(0, size, 2)
            ry, rx = rng.integers(1, 5, 2)
            masks[i] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    maps = rng.normal(size=masks.shape) + masks * rng.uniform(0.5, 2.5, size=masks.shape)
    if levels is not None:  # quantise: many ties, like 8-bit blurred maps
        maps = np.round(maps * levels) / levels
    return masks, maps


# ---------------------------------------------------------------- AUPRO known answers

def anomalib_case():
    masks = np.zeros((1, 400, 7), bool)
    masks[0, :, 3] = True
    maps = np.arange(2800, dtype=np.float64).reshape(1, 400, 7) / 2800
    return masks, maps


def test_aupro_anomalib_case_matches_reference_values():
    masks, maps = anomalib_case()
    assert aupro(masks, maps, fpr_limit=1 / 3) == pytest.approx(0.16672, abs=5e-6)
    assert aupro(masks, maps, fpr_limit=0.3) == pytest.approx(0.15014, abs=5e-6)
    assert aupro(masks, maps, fpr_limit=0.3, num_thresholds=99) == pytest.approx(0.15009, abs=5e-6)


def test_aupro_perfect_and_inverted():
    rng = np.random.default_rng(1)
    masks = np.zeros((3, 20, 20), bool)
    masks[0, 3:8, 4:9] = True
    masks[1, 10:12, 10:19] = True
    normal = rng.uniform(0, 1, masks.shape)
    perfect = np.where(masks, normal + 2.0, normal)
    inverted = np.where(masks, normal - 2.0, normal)
    for k in (100, 99, None):
        assert aupro(masks, perfect, num_thresholds=k) == pytest.approx(1.0, abs=1e-12)
        assert aupro(masks, inverted, num_thresholds=k) == pytest.approx(0.0, abs=1e-12)


def test_aupro_weights_regions_equally_not_by_area():
    rng = np.random.default_rng(2)
    masks = np.zeros((3, 32, 32), bool)
    masks[0, 2:7, 2:7] = True  # 5x5, always above the normals
    masks[1, 10:25, 10:25] = True  # 15x15, always below the normals
    maps = rng.uniform(0, 1, masks.shape)  # image 2 is defect-free
    maps[0][masks[0]] = 5.0
    maps[1][masks[1]] = -5.0
    assert aupro(masks, maps) == pytest.approx(0.5, abs=1e-12)
    assert aupro(masks, maps, num_thresholds=None) == pytest.approx(0.5, abs=1e-12)
    # pixel-weighted PRO would be 25 / 250 = 0.1
    assert pixel_auroc(masks, maps) == pytest.approx(25 / 250, abs=1e-12)


def test_aupro_corner_touching_pixels_form_one_region():
    rng = np.random.default_rng(3)
    maps = rng.uniform(0, 1, (1, 10, 10))
    touching = np.zeros((1, 10, 10), bool)
    touching[0, 2, 2] = True  # high pixel
    touching[0, 3:5, 3:5] = True  # 2x2 low block, meets (2, 2) only at a corner
    maps[0, 2, 2] = 5.0
    maps[0, 3:5, 3:5] = -5.0
    # 8-connected: one region of 5 pixels, 1 above -> PRO 0.2 at every FPR <= 0.3
    assert aupro(touching, maps) == pytest.approx(0.2, abs=1e-12)
    # Move the block one pixel away: two regions, PRO (1 + 0) / 2 = 0.5
    apart = np.zeros_like(touching)
    apart[0, 2, 2] = True
    apart[0, 4:6, 4:6] = True
    maps2 = maps.copy()
    maps2[0, 3:5, 3:5] = rng.uniform(0, 1, (2, 2))
    maps2[0, 4:6, 4:6] = -5.0
    assert aupro(apart, maps2) == pytest.approx(0.5, abs=1e-12)


# ---------------------------------------------------------------- AUPRO vs slow reference

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("levels", [None, 4])
@pytest.mark.parametrize("num_thresholds", [100, 99, 7, 5000, None])
def test_aupro_matches_slow_reference(seed, levels, num_thresholds):
    masks, maps = blob_data(seed, levels=levels)
    for limit in (0.3, 0.05, 1.0):
        expected = slow_reference_aupro(masks, maps, limit, num_thresholds)
        got = aupro(masks, maps, fpr_limit=limit, num_thresholds=num_thresholds)
        assert got == pytest.approx(expected, abs=1e-12)


def test_aupro_list_input_with_mixed_sizes_and_float32():
    masks, maps = blob_data(4, n_images=4, size=20)
    big_mask, big_map = blob_data(5, n_images=2, size=31)
    mask_list = list(masks) + list(big_mask)
    map_list = [m.astype(np.float32) for m in list(maps) + list(big_map)]
    expected = slow_reference_aupro(mask_list, map_list, 0.3, 100)
    assert aupro(mask_list, map_list) == pytest.approx(expected, abs=1e-12)
    assert aupro([m.astype(np.uint8) for m in mask_list], map_list) == pytest.approx(expected, abs=1e-12)


def test_exact_mode_equals_every_rank_schedule_without_ties():
    masks, maps = blob_data(6)  # continuous noise: all normal scores distinct
    n_normal = int((~masks).sum())
    assert aupro(masks, maps, num_thresholds=None) == pytest.approx(
        aupro(masks, maps, num_thresholds=n_normal), abs=1e-12)


def test_pro_curve_shape_and_order():
    masks, maps = blob_data(7)
    fpr, pro = pro_curve(masks, maps, num_thresholds=100)
    assert fpr.shape == pro.shape == (101,)
    assert fpr[0] == 0.0 and fpr[-1] == 1.0 and pro[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= -1e-15)


def test_aupro_undefined_cases_return_none():
    maps = np.random.default_rng(0).uniform(size=(2, 8, 8))
    assert aupro(np.zeros((2, 8, 8), bool), maps) is None  # no defect region
    assert pro_curve(np.zeros((2, 8, 8), bool), maps) is None
    assert aupro(np.ones((2, 8, 8), bool), maps) is None  # no normal pixel


@pytest.mark.parametrize("masks, maps, message", [
    (np.zeros((2, 8, 8), bool), np.zeros((2, 8, 9)), "shape"),
    (np.zeros((2, 8, 8), bool), np.zeros((3, 8, 8)), "2 masks but 3 maps"),
    (np.full((1, 4, 4), 255, np.uint8), np.zeros((1, 4, 4)), "0/1"),
    (np.zeros((1, 4, 4), bool), np.full((1, 4, 4), np.nan), "NaN"),
    (np.zeros((1, 2, 4, 4), bool), np.zeros((1, 2, 4, 4)), "(N, H, W)"),
    ([np.zeros(4, bool)], [np.zeros(4)], "2-D"),
    ([], [], "no masks"),
])
def test_pixel_metrics_reject_malformed_input(masks, maps, message):
    for fn in (aupro, pixel_auroc):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fn(masks, maps)


def test_aupro_rejects_bad_options():
    masks, maps = blob_data(0)
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(masks, maps, fpr_limit=0.0)
    with pytest.raises(ValueError, match="num_thresholds"):
        aupro(masks, maps, num_thresholds=0)


# ---------------------------------------------------------------- AUROC

def test_image_auroc_matches_sklearn_including_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.normal(size=60) + labels, 1)  # many ties
    assert image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert image_auroc(labels.astype(bool), scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert image_auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert image_auroc([0, 1], [0.5, 0.5]) == 0.5


def test_image_auroc_none_and_errors():
    assert image_auroc([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert image_auroc([1, 1], [0.1, 0.2]) is None
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        image_auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="0/1"):
        image_auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        image_auroc([0, 1], [0.1, np.nan])


@pytest.mark.parametrize("levels", [None, 8])
def test_pixel_auroc_matches_sklearn_on_pooled_pixels(levels):
    masks, maps = blob_data(8, n_images=8, size=32, levels=levels)
    expected = roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(masks, maps) == pytest.approx(expected, abs=1e-12)
    assert pixel_auroc(list(masks), list(maps.astype(np.float32))) == pytest.approx(
        roc_auc_score(masks.ravel(), maps.astype(np.float32).ravel()), abs=1e-12)


def test_pixel_auroc_none_cases():
    maps = np.random.default_rng(0).uniform(size=(2, 8, 8))
    assert pixel_auroc(np.zeros((2, 8, 8), bool), maps) is None
    assert pixel_auroc(np.ones((2, 8, 8), bool), maps) is None
