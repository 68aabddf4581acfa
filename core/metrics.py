"""Per-class detection and segmentation metrics: I-AUROC, P-AUROC, AUPRO.

Reproduces the metric protocol of BTF / M3DM / LSFA (notes/evaluation.md section 2):

* ``image_auroc``: scikit-learn ``roc_auc_score`` over one raw score per image.
* ``pixel_auroc``: ROC-AUC over every pixel of every map, pooled (ties get half credit;
  identical to ``roc_auc_score`` on the flattened arrays, computed by ranks for speed).
* ``aupro``: the MVTec 3D-AD reference AUPRO (``au_pro_util.py``) with the same threshold
  schedule, rank-based FPR, strict ``>`` overlap, (1, 1) anchor and interpolated end point.
  ``num_thresholds=None`` gives the exact curve instead.

Masks are bool or 0/1 arrays, maps are anomaly scores in raw units; either an (N, H, W)
array, a single (H, W) image, or a list of 2-D arrays (sizes may differ between images).
Each metric returns ``None`` where it is not defined (a single class present, no defect).
Malformed input raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

__all__ = ["image_auroc", "pixel_auroc", "aupro", "pro_curve"]

_EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


# ---------------------------------------------------------------- input checking

def _binary_labels(labels, what: str) -> np.ndarray:
    """1-D bool array from bool / 0-1 labels."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} must be bool or 0/1, got dtype {arr.dtype}")
    if np.any((arr != 0) & (arr != 1)):
        raise ValueError(f"{what} must be bool or 0/1, found other values")
    return arr.astype(bool)


def _finite_scores(scores, what: str, ndim: int | None = None) -> np.ndarray:
    """Float array (float32 kept, everything else float64) with only finite values."""
    arr = np.asarray(scores)
    if arr.dtype != np.float32:
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contain NaN or infinite values")
    return arr


def _as_image_list(images, what: str) -> list[np.ndarray]:
    """List of 2-D arrays from an (N, H, W) array, one (H, W) array, or a sequence of 2-D arrays."""
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            return [images]
        if images.ndim == 3:
            return list(images)
        raise ValueError(f"{what} must be (N, H, W), (H, W) or a list of 2-D arrays, got shape {images.shape}")
    if not isinstance(images, Sequence) or isinstance(images, (str, bytes)):
        raise ValueError(f"{what} must be an array or a list of 2-D arrays, got {type(images).__name__}")
    out = [np.asarray(im) for im in images]
    for i, im in enumerate(out):
        if im.ndim != 2:
            raise ValueError(f"{what}[{i}] must be 2-D, got shape {im.shape}")
    return out


def _pixel_pairs(masks, maps) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validated (bool masks, finite float maps), one pair per image, shapes matching."""
    mask_list = _as_image_list(masks, "masks")
    map_list = _as_image_list(maps, "maps")
    if len(mask_list) != len(map_list):
        raise ValueError(f"got {len(mask_list)} masks but {len(map_list)} maps")
    if not mask_list:
        raise ValueError("no masks/maps given")
    out_masks, out_maps = [], []
    for i, (m, a) in enumerate(zip(mask_list, map_list)):
        if m.shape != a.shape:
            raise ValueError(f"image {i}: mask shape {m.shape} != map shape {a.shape}")
        out_masks.append(_binary_labels(m.ravel(), f"masks[{i}]").reshape(m.shape))
        out_maps.append(_finite_scores(a, f"maps[{i}]"))
    return out_masks, out_maps


# ---------------------------------------------------------------- AUROC

def image_auroc(labels, scores) -> float | None:
    """ROC-AUC of image scores (raw units) vs labels (1/True = defect); None if one class only."""
    y = _binary_labels(labels, "labels")
    s = _finite_scores(scores, "scores", ndim=1)
    if y.shape != s.shape:
        raise ValueError(f"got {y.size} labels but {s.size} scores")
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, s))


def _rank_auroc(neg_sorted: np.ndarray, pos: np.ndarray) -> float:
    """P(pos > neg) + 0.5 P(pos == neg), i.e. the trapezoidal ROC-AUC, from a sorted negative pool."""
    below = np.searchsorted(neg_sorted, pos, side="left").astype(np.int64)
    below_or_equal = np.searchsorted(neg_sorted, pos, side="right").astype(np.int64)
    twice_u = int(below.sum()) + int(below_or_equal.sum())  # exact integer Mann-Whitney U * 2
    return twice_u / (2.0 * pos.size * neg_sorted.size)


def pixel_auroc(masks, maps) -> float | None:
    """ROC-AUC over every pixel of every map (good images included), pooled.

    None when there is no defect pixel or no normal pixel. Equals scikit-learn's
    ``roc_auc_score(masks.ravel(), maps.ravel())``.
    """
    mask_list, map_list = _pixel_pairs(masks, maps)
    flat_mask = np.concatenate([m.ravel() for m in mask_list])
    flat_map = np.concatenate([a.ravel() for a in map_list])
    n_pos = int(flat_mask.sum())
    if n_pos == 0 or n_pos == flat_mask.size:
        return None
    neg = np.sort(flat_map[~flat_mask])
    return _rank_auroc(neg, flat_map[flat_mask])


# ---------------------------------------------------------------- AUPRO

def _regions_and_normals(masks, maps):
    """Pixel scores of every 8-connected defect region and the sorted normal-pixel pool.

    Returns (defect_scores_sorted, defect_weight_cumsum, n_regions, normal_sorted) where each
    defect pixel carries weight 1 / size of its region, so the summed weight of the pixels
    above a threshold, divided by n_regions, is the mean per-region overlap (PRO).
    """
    mask_list, map_list = _pixel_pairs(masks, maps)
    defect_scores, defect_weights, normal_scores = [], [], []
    n_regions = 0
    for m, a in zip(mask_list, map_list):
        labelled, n = ndimage.label(m, structure=_EIGHT_CONNECTED)
        normal_scores.append(a[labelled == 0])
        if n == 0:
            continue
        lab = labelled[labelled > 0]
        sizes = np.bincount(lab, minlength=n + 1)
        defect_scores.append(a[labelled > 0])
        defect_weights.append(1.0 / sizes[lab])
        n_regions += n
    normal = np.sort(np.concatenate(normal_scores))
    if n_regions == 0:
        return None, None, 0, normal
    scores = np.concatenate(defect_scores)
    weights = np.concatenate(defect_weights)
    order = np.argsort(scores, kind="stable")
    cum_weight = np.concatenate([[0.0], np.cumsum(weights[order])])
    return scores[order], cum_weight, n_regions, normal


def _pro_at(thresholds, defect_sorted, cum_weight, n_regions) -> np.ndarray:
    """Mean over regions of the fraction of region pixels with score strictly > threshold."""
    at_or_below = np.searchsorted(defect_sorted, thresholds, side="right")
    pro = (cum_weight[-1] - cum_weight[at_or_below]) / n_regions
    return np.clip(pro, 0.0, 1.0)


def pro_curve(masks, maps, num_thresholds: int | None = 100):
    """The PRO curve as (fpr, pro) float64 arrays sorted by increasing FPR, ending at (1, 1).

    ``num_thresholds=K``: the reference schedule: thresholds at the integer ranks
    ``linspace(0, N-1, K)`` of the sorted normal-pixel scores, FPR = 1 - (rank + 1) / N.
    ``num_thresholds=None``: every distinct normal score is a threshold, FPR = true fraction of
    normal pixels scoring strictly above it. None if there is no defect region or no normal pixel.
    """
    if num_thresholds is not None and (not isinstance(num_thresholds, (int, np.integer)) or num_thresholds < 1):
        raise ValueError(f"num_thresholds must be a positive int or None, got {num_thresholds!r}")
    defect_sorted, cum_weight, n_regions, normal = _regions_and_normals(masks, maps)
    n = normal.size
    if n_regions == 0 or n == 0:
        return None
    if num_thresholds is None:
        # Distinct normal scores; the count at or below each is the end of its run in the sorted pool.
        last_of_run = np.flatnonzero(np.append(normal[1:] != normal[:-1], True))
        thresholds = normal[last_of_run]
        fpr = 1.0 - (last_of_run + 1) / n
    else:
        ranks = np.linspace(0, n - 1, num=num_thresholds, dtype=int)
        thresholds = normal[ranks]
        fpr = 1.0 - (ranks + 1) / n
    pro = _pro_at(thresholds, defect_sorted, cum_weight, n_regions)
    # Thresholds ascend, so FPR descends: reverse, then append the (1, 1) anchor.
    return np.append(fpr[::-1], 1.0), np.append(pro[::-1], 1.0)


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area of sorted (x, y) up to x_max, with a linearly interpolated end point.

    Same rule as the reference ``trapezoid``: if x_max is not a sample, one partial trapezoid
    from the last sample below x_max, with y interpolated between its two neighbours.
    """
    correction = 0.0
    if not np.any(x == x_max):
        ins = int(np.searchsorted(x, x_max, side="right"))
        if not 0 < ins < x.size:
            raise ValueError(f"integration limit {x_max} outside the curve's FPR range")
        y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
    keep = x <= x_max
    x, y = x[keep], y[keep]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def aupro(masks, maps, fpr_limit: float = 0.3, num_thresholds: int | None = 100) -> float | None:
    """Normalised area under the PRO curve up to ``fpr_limit`` (1.0 = perfect, in [0, 1]).

    Default (K=100, limit 0.3) reproduces the MVTec 3D-AD / BTF / M3DM / LSFA reference
    value; CFM uses ``num_thresholds=99``; ``None`` integrates the exact curve. Regions are
    8-connected components of each mask, weighted equally. None if no defect region or no
    normal pixel.
    """
    if not 0.0 < float(fpr_limit) <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit!r}")
    curve = pro_curve(masks, maps, num_thresholds=num_thresholds)
    if curve is None:
        return None
    fpr, pro = curve
    return _area_up_to(fpr, pro, float(fpr_limit)) / float(fpr_limit)
