"""Decision thresholds on raw anomaly scores, and the confusion counts they give.

Convention, used everywhere in the project: a sample (or pixel) is judged a defect (NG)
**iff score >= threshold**. Optionally an *uncertain band* splits the image verdict in three:
with an upper threshold ``uncertain_until`` above the image threshold, a part is OK below the
image threshold, UNCERTAIN from it up to (not including) ``uncertain_until``, and NG at or
above ``uncertain_until`` (:func:`verdict`, the one place that decides). An optional *minimum
defect area* (pixels of the anomaly map) keeps a part OK when its largest defect region at the
pixel threshold is smaller than that, however high its image score. Thresholds are in the raw units of the scores they were chosen
on (image score or anomaly-map value).
"""

from __future__ import annotations

import numpy as np

from core.metrics import _binary_labels, _finite_scores, _pixel_pairs

__all__ = [
    "best_f1_threshold", "bagged_best_f1_threshold", "bootstrap_best_f1_cuts", "BAGGING_ROUNDS", "quantile_threshold", "quantile_thresholds", "confusion", "confusion_counts", "confusion_rates",
    "pixel_best_f1_threshold", "is_defect", "verdict", "check_band", "check_min_defect_area", "threshold_warnings", "OK", "NG", "UNCERTAIN",
]

OK, NG, UNCERTAIN = "OK", "NG", "UNCERTAIN"


def is_defect(scores, threshold: float):
    """The verdict under the project convention: True (NG) where score >= threshold."""
    return np.asarray(scores) >= threshold


def verdict(score: float, threshold: float, uncertain_until: float | None = None,
            largest_region_px: int | None = None, min_defect_area: int = 0) -> str:
    """The verdict of one sample (raw units): "OK" if score < threshold; without a band "NG"
    otherwise. With ``uncertain_until`` > threshold (the uncertain band [threshold,
    uncertain_until)): "NG" if score >= uncertain_until, else "UNCERTAIN". A band that is not
    above the threshold (None, or <= threshold) means no band.

    ``min_defect_area`` > 0 (original image pixels): a part whose largest defect region
    (``largest_region_px``, 8-connected pixels at or above the pixel threshold) is smaller is
    "OK" whatever its score; the rule is skipped when the region size is unknown (None)."""
    if score < threshold:
        return OK
    if min_defect_area > 0 and largest_region_px is not None and largest_region_px < min_defect_area:
        return OK
    if uncertain_until is not None and uncertain_until > threshold and score < uncertain_until:
        return UNCERTAIN
    return NG


def check_min_defect_area(value) -> int:
    """A minimum defect area (pixels) as an int; ValueError unless it is a whole number >= 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the minimum defect area must be a number of pixels, got {value!r}") from None
    if not (np.isfinite(number) and number >= 0 and number == int(number)) or isinstance(value, bool):
        raise ValueError(f"the minimum defect area must be a whole number of pixels >= 0, got {value!r}")
    return int(number)


def check_band(low: float, high: float) -> tuple[float, float]:
    """(low, high) of an uncertain band as floats; ValueError unless both are finite and low < high."""
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"the uncertain band needs finite scores, got {low!r} {high!r}")
    if not low < high:
        raise ValueError(f"the uncertain band needs LOW < HIGH, got {low:g} {high:g}")
    return low, high


def confusion_counts(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, int]:
    """tp/fp/fn/tn of ``score >= threshold`` vs bool ``labels`` (True = defect); no checks."""
    pred = is_defect(scores, threshold)
    y = np.asarray(labels, dtype=bool)
    return {
        "tp": int(np.sum(pred & y)),
        "fp": int(np.sum(pred & ~y)),
        "fn": int(np.sum(~pred & y)),
        "tn": int(np.sum(~pred & ~y)),
    }


def confusion_rates(counts: dict) -> dict[str, float]:
    """precision, recall, f1, accuracy of confusion counts; a rate whose denominator is zero
    is 0.0 (scikit-learn's convention)."""
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]

    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    return dict(
        precision=ratio(tp, tp + fp),
        recall=ratio(tp, tp + fn),
        f1=ratio(2 * tp, 2 * tp + fp + fn),
        accuracy=ratio(tp + tn, tp + fp + fn + tn),
    )


def threshold_warnings(counts: dict) -> list[str]:
    """What is wrong with an image threshold on labelled samples (confusion ``counts``): it
    passes most defective samples (recall < 0.5) or flags most good ones (false-positive rate
    > 0.5). Empty when neither holds, or without samples of that kind."""
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    out = []
    if tp + fn and tp / (tp + fn) < 0.5:
        out.append(f"the image threshold passes {fn} of {tp + fn} defective samples as OK (recall {tp / (tp + fn):.2f})")
    if fp + tn and fp / (fp + tn) > 0.5:
        out.append(f"the image threshold flags {fp} of {fp + tn} good samples as NG")
    return out


def _checked(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = _binary_labels(labels, "labels")
    s = _finite_scores(scores, "scores", ndim=1)
    if y.shape != s.shape:
        raise ValueError(f"got {y.size} labels but {s.size} scores")
    if y.size == 0:
        raise ValueError("no labels/scores given")
    return y, s


def best_f1_threshold(labels, scores, good_weight: float = 1.0) -> tuple[float, float]:
    """Threshold (raw score units) maximising F1 of ``score >= threshold`` vs labels (1 = defect).

    Every cut between two distinct scores is tried. The returned threshold is the midpoint
    between the lowest score flagged and the next lower score (the lowest score itself when
    every sample is flagged), so it keeps a margin on both sides. Among equal F1 the highest
    threshold (fewest flagged samples) wins. Each good sample counts ``good_weight`` false
    positives when flagged (1: plain F1). Returns (threshold, f1). Raises ValueError when
    there is no defect sample (F1 is then undefined; use ``quantile_threshold``).
    """
    y, s = _checked(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("best_f1_threshold needs at least one defect sample (label 1)")
    if not (np.isfinite(good_weight) and good_weight > 0):
        raise ValueError(f"good_weight must be a positive number, got {good_weight!r}")
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y[order]
    tp = np.cumsum(y_desc)
    fp = np.cumsum(~y_desc) * float(good_weight)
    # A cut is only possible after the last sample of a run of equal scores.
    last_of_run = np.flatnonzero(np.append(s_desc[1:] != s_desc[:-1], True))
    tp, fp = tp[last_of_run], fp[last_of_run]
    f1 = 2.0 * tp / (tp + fp + n_pos)  # 2tp / (2tp + fp + fn) with fn = n_pos - tp
    best = int(np.argmax(f1))  # first maximum = highest threshold
    i = last_of_run[best]
    threshold = s_desc[i]
    if i + 1 < s_desc.size:
        lower = s_desc[i + 1]
        midpoint = lower + 0.5 * (threshold - lower)
        if midpoint > lower:  # not rounded onto the unflagged score (adjacent floats)
            threshold = midpoint
    return float(threshold), float(f1[best])


def quantile_thresholds(good_image_scores, good_maps, image_quantile: float, pixel_quantile: float) -> tuple[float, float]:
    """(image, pixel) thresholds from held-out good parts alone: quantiles of their image scores
    and of their map pixels (raw units), the fit's rule when there is no self-check."""
    return (quantile_threshold(good_image_scores, image_quantile),
            quantile_threshold(np.asarray(good_maps).ravel(), pixel_quantile))


def quantile_threshold(good_scores, q: float = 0.99) -> float:
    """The q-quantile (linear interpolation) of scores of good samples, raw units.

    With ``score >= threshold`` meaning NG, about (1 - q) of good samples are flagged.
    """
    s = _finite_scores(good_scores, "good_scores").ravel()
    if s.size == 0:
        raise ValueError("quantile_threshold needs at least one good score")
    if not 0.0 <= float(q) <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    return float(np.quantile(s, float(q)))


def confusion(labels, scores, threshold: float) -> dict:
    """Counts and rates of ``score >= threshold`` vs labels (1 = defect).

    Returns dict(tp, fp, tn, fn: int; precision, recall, f1, accuracy: float). A rate whose
    denominator is zero is 0.0 (scikit-learn's convention).
    """
    y, s = _checked(labels, scores)
    c = confusion_counts(y, s, threshold)
    return dict(tp=c["tp"], fp=c["fp"], tn=c["tn"], fn=c["fn"], **confusion_rates(c))


BAGGING_ROUNDS = 200  # bootstrap resamples of bagged_best_f1_threshold (stated, not tuned)


def bootstrap_best_f1_cuts(labels, scores, seed: int = 0, rounds: int = BAGGING_ROUNDS,
                           good_weight: float = 1.0) -> np.ndarray:
    """(rounds,) :func:`best_f1_threshold` of ``rounds`` seeded bootstrap resamples (raw score
    units; each good sample weighing ``good_weight``). Each resample draws the good scores and the
    defect scores with replacement, each group keeping its size (so its defect share). Without good
    scores, or with ``rounds`` < 1, the one cut of the scores themselves. Raises ValueError like
    :func:`best_f1_threshold`."""
    y, s = _checked(labels, scores)
    good, bad = s[~y], s[y]
    if not bad.size:
        raise ValueError("bootstrap_best_f1_cuts needs at least one defect sample (label 1)")
    if not good.size or rounds < 1:
        return np.array([best_f1_threshold(y, s, good_weight)[0]])
    rng = np.random.default_rng(seed + 2**20)
    lab = np.r_[np.zeros(good.size, bool), np.ones(bad.size, bool)]
    return np.array([best_f1_threshold(lab, np.r_[rng.choice(good, good.size), rng.choice(bad, bad.size)],
                                       good_weight)[0]
                     for _ in range(int(rounds))])


def bagged_best_f1_threshold(labels, scores, seed: int = 0, rounds: int = BAGGING_ROUNDS) -> float:
    """The median of :func:`bootstrap_best_f1_cuts` (raw score units). The best-F1 cut of a few
    dozen scores jumps between distant scores when its F1 curve is flat; the median of the
    resamples' cuts varies less with which samples were drawn (docs/evaluation.md, "the bagged
    seeded threshold")."""
    return float(np.median(bootstrap_best_f1_cuts(labels, scores, seed, rounds)))


def pixel_best_f1_threshold(masks, maps, max_pixels: int = 1_000_000, seed: int = 0) -> tuple[float, float]:
    """Best-F1 threshold over pixels (raw map units), on a uniform random subsample.

    Pools every pixel of every (mask, map) pair; if there are more than ``max_pixels``, a
    uniform sample of that many (seeded, without replacement) is used, which keeps the
    defect/normal ratio and so estimates F1 without bias. Returns (threshold, f1).
    Raises ValueError when no defect pixel is present (in the sample).
    """
    if int(max_pixels) < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels!r}")
    mask_list, map_list = _pixel_pairs(masks, maps)
    flat_mask = np.concatenate([m.ravel() for m in mask_list])
    flat_map = np.concatenate([a.ravel() for a in map_list])
    if flat_mask.size > max_pixels:
        pick = np.random.default_rng(seed).choice(flat_mask.size, size=int(max_pixels), replace=False)
        flat_mask, flat_map = flat_mask[pick], flat_map[pick]
    if not flat_mask.any():
        raise ValueError("pixel_best_f1_threshold needs at least one defect pixel")
    return best_f1_threshold(flat_mask, flat_map)
