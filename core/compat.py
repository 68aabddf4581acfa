"""Does a model fit the data about to be scored? One clear finding per problem, not one error
per sample (used by ``lsfa score`` and the GUI before and after a batch).

Before scoring (:func:`check_inputs`): the modalities the model needs against those the samples
have; the image size and aspect ratio against the training images' (``info["image_size"]``,
recorded at fit time); the point spacing against the training clouds' (``info["xyz_spacing_m"]``,
through :mod:`core.data.units`), and the region of interest's size against the images', on a
few probe samples. After scoring (:func:`check_scores`): the
median image score against the calibrated good parts' scores (``info["calibration_scores"]``, or
the image threshold for models fitted before it was recorded).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from core.data.units import MAX_RATIO, apply_units, likely_units, point_spacing, scoring_units, units_advice
from core.errors import UserError

log = logging.getLogger(__name__)

__all__ = ["Finding", "check_inputs", "check_scores", "missing_modalities", "missing_reason", "roi_reason", "PROBE_SAMPLES",
           "SIZE_RATIO", "ASPECT_RATIO", "SPACING_RATIO", "SCORE_RATIO"]

PROBE_SAMPLES = 3  # samples loaded to measure size and point spacing
SIZE_RATIO = 3.0  # image side this many times larger or smaller than the training images': warn
ASPECT_RATIO = 1.5  # aspect ratio (long/short side) differing by this factor: warn
SPACING_RATIO = 3.0  # point spacing this many times off the training clouds': warn (refused per sample above MAX_RATIO)
SCORE_RATIO = 3.0  # median image score above this many times the calibrated good q99.9: warn
NAMES = {"rgb": "RGB image", "xyz": "point cloud (xyz)"}


@dataclass(frozen=True)
class Finding:
    """One mismatch between a model and the data. ``blocking``: the affected samples cannot be
    scored with this model (they are skipped); otherwise they are scored but may be judged wrongly."""

    kind: str  # "modality", "size", "units", "roi", "scores"
    message: str
    blocking: bool = False


def missing_modalities(model, ref) -> tuple[str, ...]:
    """The modalities the model needs that the (not yet loaded) sample does not have."""
    have = getattr(ref, "modalities", None)
    if have is None:
        return ()
    return tuple(m for m in model.modalities if m not in have)


def missing_reason(model, ref) -> str:
    """Why a sample cannot be scored with this model for lack of a modality ("" if it can)."""
    missing = missing_modalities(model, ref)
    return f"no {' or '.join(NAMES[m] for m in missing)}: the model needs it" if missing else ""


def roi_reason(model, ref) -> str:
    """Why a sample cannot be scored with the model's region of interest ("" if it can, or when its
    size is only known after loading it): its image, read from the header, is another size."""
    from core.data.imageio import image_size

    roi = getattr(model, "roi", None)
    if roi is None or getattr(ref, "rgb_path", None) is None:
        return ""
    try:
        shape = image_size(ref.rgb_path)
    except UserError:
        return ""  # unreadable: scoring reports it
    if tuple(shape) == tuple(roi.shape):
        return ""
    return (f"the image is {shape[1]}×{shape[0]} px but the region of interest ({model.roi_source}) is "
            f"{roi.shape[1]}×{roi.shape[0]} px")


def check_inputs(model, refs, where: str = "the data") -> list[Finding]:
    """Findings about scoring ``refs`` (SampleRefs) with ``model``; ``where`` names the inputs
    in the messages. Loads at most :data:`PROBE_SAMPLES` samples."""
    findings = []
    lacking = [r for r in refs if missing_modalities(model, r)]
    if lacking:
        missing = sorted({m for r in lacking for m in missing_modalities(model, r)})
        what = " or ".join(NAMES[m] for m in missing)
        rest = "/".join(m for m in ("rgb", "xyz") if m not in missing) or "its modalities"
        findings.append(Finding(
            "modality",
            f"{len(lacking)} of {len(refs)} sample(s) in {where} {'has' if len(lacking) == 1 else 'have'} "
            f"no {what}, which the model needs: fit a model on this data ({rest}) or give the missing files",
            blocking=True))
    usable = [r for r in refs if not missing_modalities(model, r)]
    probes = _probe(model, usable)
    findings += _size_findings(model, probes, where)
    findings += _spacing_findings(model, probes, where)
    findings += _roi_findings(model, probes, where)
    return findings


def _roi_findings(model, probes, where: str) -> list[Finding]:
    """A blocking finding when the model's region of interest (original pixels) is not the size
    of the probed images: those samples are skipped."""
    roi = getattr(model, "roi", None)
    if roi is None:
        return []
    other = sorted({s for s in map(_grid_shape, probes) if s and s != roi.shape})
    if not other:
        return []
    h, w = other[0]
    return [Finding("roi", f"images in {where} are {w}×{h} px but the region of interest ({model.roi_source}) is "
                           f"{roi.shape[1]}×{roi.shape[0]} px: samples of another size are skipped (give a ROI "
                           "the size of these images, or none)", blocking=True)]


def _probe(model, refs) -> list:
    """Up to PROBE_SAMPLES loaded samples (xyz in metres after the model's unit, core.data.units.scoring_units),
    spread over the list; samples that cannot be read are left out (scoring reports them)."""
    if not refs:
        return []
    picks = sorted({int(i) for i in np.linspace(0, len(refs) - 1, min(PROBE_SAMPLES, len(refs)))})
    out = []
    for i in picks:
        try:
            sample = apply_units(refs[i].load(), scoring_units(model))
        except (UserError, MemoryError, OSError):
            continue
        out.append(sample)
    return out


def _grid_shape(sample) -> tuple[int, int] | None:
    for arr in (sample.rgb, sample.xyz):
        if arr is not None:
            return int(arr.shape[0]), int(arr.shape[1])
    return None


def _size_findings(model, probes, where: str) -> list[Finding]:
    trained = model.info.get("image_size")
    shapes = [s for s in map(_grid_shape, probes) if s]
    if not trained or not shapes:
        return []
    th, tw = (float(v) for v in trained)
    h, w = (float(np.median([s[k] for s in shapes])) for k in (0, 1))
    side = math.sqrt(h * w) / math.sqrt(th * tw)
    aspect = (max(h, w) / min(h, w)) / (max(th, tw) / min(th, tw))
    if max(side, 1 / side) < SIZE_RATIO and max(aspect, 1 / aspect) < ASPECT_RATIO:
        return []
    return [Finding("size", f"images in {where} are {int(h)}×{int(w)} px, the model was trained on "
                            f"{int(th)}×{int(tw)} px: parts may look too different to be judged reliably "
                            "(fit a model on this data, or crop/scale the images alike)")]


def _spacing_findings(model, probes, where: str) -> list[Finding]:
    trained = model.info.get("xyz_spacing_m")
    if "xyz" not in model.modalities or not trained:
        return []
    spacings = [point_spacing(s.xyz) for s in probes if s.xyz is not None]
    spacings = [s for s in spacings if s > 0]
    if not spacings:
        return []
    spacing = float(np.median(spacings))
    ratio = spacing / float(trained)
    if 1 / SPACING_RATIO <= ratio <= SPACING_RATIO:
        return []
    guess = likely_units(spacing) if ratio > 1 else None
    hint = f"; {units_advice(guess)}" if guess else f"; {units_advice(None)}, or fit a model on this data"
    refused = " (samples this far off are refused)" if not 1 / MAX_RATIO <= ratio <= MAX_RATIO else ""
    return [Finding("units", f"point spacing in {where} is {spacing:.3g} m per pixel, {ratio:.3g}× the "
                             f"training clouds' {float(trained):.3g} m{refused}{hint}")]


def check_scores(model, image_scores) -> list[Finding]:
    """A finding when the median of the batch's image scores (raw units) is more than
    :data:`SCORE_RATIO` times the calibrated good parts' 99.9th percentile (or, for models
    without it, the image threshold): the data probably differ from what the model knows."""
    scores = np.asarray([s for s in image_scores if s is not None and np.isfinite(s)], np.float64)
    if scores.size == 0:
        return []
    calib = model.info.get("calibration_scores") or {}
    ref = calib.get("q999")
    what = "the calibrated good parts' 99.9th percentile"
    if not ref or ref <= 0:
        ref, what = model.thresholds.image, "the image threshold"
    if not ref or ref <= 0:
        return []
    median = float(np.median(scores))
    if median <= SCORE_RATIO * ref:
        return []
    return [Finding("scores", f"the median image score {median:.4g} is {median / ref:.3g}× {what} ({ref:.4g}): "
                              "most parts look unlike the training data (another product, camera, lighting or "
                              "units?); fit a model on this data")]
