"""Automatic thresholds from the scored samples in the state (Qt-free).

Image level: best F1 when both good and defective labelled samples are scored, otherwise the
``q`` quantile of good image scores (all scores if nothing is labelled). Pixel level: best F1
over pixels when ground-truth masks with defect pixels exist, otherwise the ``q`` quantile of
the map values of good samples. All values in raw score units.
"""

from __future__ import annotations

import numpy as np

from core import thresholds as core_thresholds
from lsfa_gui.state import TUNED_ON_SHOWN, InspectionState, pooled_map_values

DEFAULT_QUANTILE = 0.99
PIXEL_QUANTILE = 0.999


def auto_image_threshold(state: InspectionState, q: float = DEFAULT_QUANTILE) -> tuple[float, str]:
    """(threshold, how it was chosen). Raises ValueError when nothing is scored."""
    y, s = state.labelled_scores()
    if y.size and y.any() and (~y).any():
        thr, f1 = core_thresholds.best_f1_threshold(y, s)
        return thr, f"best F1 = {f1:.3f} on {y.size} labelled samples"
    good = s[~y] if y.size and (~y).any() else np.asarray([e.image_score for e in state.entries if e.result is not None])
    if good.size == 0:
        raise ValueError("no scored samples to choose an image threshold from")
    what = "good" if y.size and (~y).any() else "all (unlabelled)"
    return core_thresholds.quantile_threshold(good, q), f"{q:.3g} quantile of {good.size} {what} image scores"


def auto_pixel_threshold(state: InspectionState, q: float = PIXEL_QUANTILE) -> tuple[float, str]:
    """(threshold, how it was chosen). Raises ValueError when nothing is scored."""
    scored = [e for e in state.entries if e.result is not None]
    if not scored:
        raise ValueError("no scored samples to choose a pixel threshold from")
    with_masks = [e for e in scored if e.mask is not None and np.shape(e.mask) == np.shape(e.result.anomaly_map)]
    if with_masks and any(np.any(e.mask) for e in with_masks):
        masks = [np.asarray(e.mask, bool) for e in with_masks]
        maps = [np.asarray(e.result.anomaly_map, np.float32) for e in with_masks]
        thr, f1 = core_thresholds.pixel_best_f1_threshold(masks, maps, max_pixels=500_000)
        return thr, f"best pixel F1 = {f1:.3f} on {len(with_masks)} samples with masks"
    good = [e for e in scored if e.is_defect is False] or scored
    values = pooled_map_values([e.result.anomaly_map for e in good])
    what = "good" if good is not scored else "all"
    return core_thresholds.quantile_threshold(values, q), f"{q:.4g} quantile of pixel scores of {len(good)} {what} samples"


def apply_auto_thresholds(state: InspectionState, image: bool = True, pixel: bool = True) -> list[str]:
    """Set the automatic image and/or pixel threshold on ``state``; returns one line per
    threshold saying how it was chosen (or why it could not be)."""
    notes = []
    for wanted, level, choose in ((image, "image", auto_image_threshold), (pixel, "pixel", auto_pixel_threshold)):
        if not wanted:
            continue
        try:
            thr, how = choose(state)
        except ValueError as exc:
            notes.append(f"Auto {level} threshold: {exc}")
            continue
        if level == "image":
            # chosen on the labelled samples it is then judged on: an optimistic threshold
            tuned = state.labelled_scores()[0].size > 0
            state.set_thresholds(image=thr, image_origin=TUNED_ON_SHOWN if tuned else "")
            how += f", {TUNED_ON_SHOWN}" if tuned else ""
        else:
            state.set_thresholds(pixel=thr)
        notes.append(f"{level.capitalize()} threshold {thr:.4g}: {how}")
    return notes
