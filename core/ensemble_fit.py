"""Fitting an ensemble (core.ensemble): one complete model per resolution, then the ensemble's own
calibration on held-out good samples and synthetic defects scored by every member."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core.config import FitConfig
from core.data.sample import Sample
from core.ensemble import EnsembleModel, to_grid
from core.progress import Progress, ensure
from core.results import Thresholds
from core.thresholds import quantile_thresholds


def fit_ensemble(
    dataset_root: str | Path,
    category: str,
    config: FitConfig,
    progress: Progress | None = None,
    xyz_units: str | None = None,
    roi: np.ndarray | None = None,
    roi_source: str = "region of interest",
    point_clouds: bool = True,
) -> EnsembleModel:
    """Fit one model per resolution of ``config.member_configs(point_clouds)`` (each exactly as a
    single-resolution fit; ``point_clouds``: whether the training data has them) and calibrate the
    ensemble (:func:`calibrate_ensemble`)."""
    from core.fitting import fit_model

    p = ensure(progress)
    t0 = time.perf_counter()
    configs = config.member_configs(point_clouds)
    largest = max(c.image_size for c in configs)  # the members share one crop around the part
    members = []
    for i, cfg in enumerate(configs):
        prefix = f"Model {i + 1} of {len(configs)} ({cfg.image_size} px)"
        shared = {"frame": members[0].object_frame} if members else {"frame_min_side": largest}  # measured once
        members.append(fit_model(dataset_root, category, cfg, p.prefixed(prefix), xyz_units, roi, roi_source,
                                 ensemble_member=True, **shared))
    model = calibrate_ensemble(EnsembleModel(config, members, Thresholds(0.0, 0.0), (0.0, 1.0)),
                               dataset_root, category, p.prefixed("Ensemble"), xyz_units)
    model.set_roi(members[0].roi, roi_source)
    model.info["fit_seconds"] = round(time.perf_counter() - t0, 3)
    p.update("Done", 1, 1)
    return model


def _score_in_batches(model: EnsembleModel, samples: list[Sample], p: Progress, stage: str):
    """(image scores (B,), maps (B, S, S) on the finest grid) of finest-grid ``samples``."""
    sizes = [m.config.image_size for m in model.members]
    bs = model.config.batch_size
    scores, maps = [], []
    for start in range(0, len(samples), bs):
        p.update(stage, start, len(samples))
        chunk = samples[start:start + bs]
        for r in model.score_prepared_members([[to_grid(s, size) for s in chunk] for size in sizes]):
            scores.append(r.image_score)
            maps.append(r.anomaly_map)
    p.update(stage, len(samples), len(samples))
    size = sizes[-1]
    return np.asarray(scores, np.float64), (np.stack(maps) if maps else np.zeros((0, size, size), np.float32))


def _choice(member, key: str) -> str:
    """A member's self-check choice ("variant" or "fusion"); a member that had nothing to choose
    (one modality, no adaptors: no self-check of its own) has its only option."""
    check = member.info.get("self_check")
    if check:
        return check[key]
    if key == "variant":
        return "adapted" if member.adapter is not None else "frozen"
    return "one modality (" + ", ".join(member.modalities) + ")"


def calibrate_ensemble(model: EnsembleModel, dataset_root, category: str, progress: Progress | None,
                       xyz_units: str | None) -> EnsembleModel:
    """Set the ensemble's thresholds, colour range and info from the held-out good samples the
    members calibrated on (the same seeded split), on the finest grid and resized for coarser
    members. With the self-check: synthetic defects painted there (another seed than the
    members' own), thresholds at the best F1 and the pixel threshold the highest that outlines
    every flagged self-check sample, as a single model's; otherwise quantiles of the good scores."""
    from core import self_check
    from core.colour_range import fitted_colour_range
    from core.data.dataset import open_dataset
    from core.fitting import MIN_CALIBRATION, load_prepared, split_calibration
    from core.pseudo_defects import make_pseudo_defects

    p = ensure(progress)
    t0 = time.perf_counter()
    cfg, fine, first = model.config, model.members[-1], model.members[0]
    ds = open_dataset(dataset_root)
    train_refs, val_refs, source = split_calibration(ds, category, fine.config)
    refs = val_refs or train_refs
    good = load_prepared(refs, fine.config, p, "Loading calibration samples", xyz_units, None,
                         first.info.get("xyz_spacing_m"), roi=fine.roi, roi_source=fine.roi_source,
                         frame=fine.object_frame)
    good_img, good_maps = _score_in_batches(model, good, p, "Scoring held-out good samples")
    check = None
    if cfg.self_check and len(val_refs) >= MIN_CALIBRATION:
        rng = np.random.default_rng(cfg.seed + 7919 + 1)
        pseudo = make_pseudo_defects(good, model.modalities, self_check.PSEUDO_PER_SAMPLE, rng)
        masks = [s.mask for s in pseudo]
        bad_img, bad_maps = _score_in_batches(model, pseudo, p, "Scoring synthetic defects")
        # the members made the choices; these scores seed the ensemble's thresholds (no metrics of their own)
        check = self_check.Candidate("ensemble", "largest of the members", None, float("nan"), float("nan"),
                                     good_img, bad_img, good_maps, bad_maps)
        extra = self_check.estimate_defects(good, model.modalities, cfg.seed + 1)
        extra_img, extra_maps = _score_in_batches(model, extra, p, "Scoring synthetic defects for the estimate")
        estimate = self_check.synthetic_estimate(good_img, np.asarray(extra_img), good_maps, list(extra_maps),
                                                 [s.mask for s in extra], cfg.seed)
        seeded = self_check.seeded_thresholds(check, masks, cfg.seed, pixel=False)
        image_thr = seeded.image
        pixel_thr = self_check.outline_threshold(check, image_thr, same_units=False)
        how = (f"{self_check.seeded_how(len(masks), source, seeded)}, scored by the {model.describe_members()} "
               "models; pixel threshold: the highest that outlines every flagged self-check sample")
        band, how = self_check.band_with_note(check, image_thr, how, cfg.uncertain_band)
        spread = seeded.image_spread
    else:
        image_thr, pixel_thr = quantile_thresholds(good_img, good_maps, cfg.image_quantile, cfg.pixel_quantile)
        how = f"{source} good quantiles of the {model.describe_members()} ensemble"
        band = spread = None
    model.thresholds = Thresholds(image_thr, pixel_thr, how, uncertain_until=band, image_spread=spread)
    model.display_range = fitted_colour_range(good_maps, pixel_thr, cfg.pixel_quantile)
    info = {k: first.info[k] for k in ("category", "dataset", "n_train", "n_calibration", "calibration",
                                       "xyz_spacing_m", "xyz_units", "image_size") if k in first.info}
    info["calibration_scores"] = {"median": float(np.median(good_img)), "q999": float(np.quantile(good_img, 0.999))}
    info["adaptation_notes"] = [f"{m.config.image_size} px: {note}" for m in model.members
                                for note in m.info.get("adaptation_notes", [])]
    if check is not None:
        estimate.update(self_check.held_out_good_flagged(check, image_thr))
        info["self_check"] = {
            "estimate": estimate,
            # each member's own choices (its self-check record in its info)
            "variant": ", ".join(f"{m.config.image_size} px {_choice(m, 'variant')}" for m in model.members),
            "fusion": "; ".join(f"{m.config.image_size} px {_choice(m, 'fusion')}" for m in model.members),
            # the members' own self-checks and this calibration
            "seconds": round(sum((m.info.get("self_check") or {}).get("seconds", 0.0) for m in model.members)
                             + time.perf_counter() - t0, 3),
        }
    model.info = info
    return model


__all__ = ["fit_ensemble", "calibrate_ensemble"]
