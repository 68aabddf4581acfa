"""Fitting one model on one category: loading, features, adaptation, memory banks, self-check,
calibration. :func:`core.pipeline.fit` calls :func:`fit_model` (or, for an ensemble preset,
:func:`core.ensemble_fit.fit_ensemble`, which calls it once per member)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from core.config import FitConfig
from core.data.sample import Sample
from core.errors import UserError
from core.model import Model
from core.progress import Progress, ensure
from core.results import Thresholds
from core.thresholds import quantile_thresholds

log = logging.getLogger(__name__)

MIN_CALIBRATION = 3  # validation samples needed to calibrate on held-out data
CALIBRATION_SHARE = 0.15  # share of train/good held out for calibration when there is no validation split
MIN_TRAIN_FOR_HOLDOUT = 10  # fewer training samples: calibrate on the training samples themselves


MEASURE_FRAME = object()  # fit_model: measure the crop around the part on the training parts


def load_prepared(
    refs, config: FitConfig, progress: Progress | None, stage: str,
    xyz_units: str | None = None, spacings: list | None = None, train_spacing: float | None = None,
    sizes: list | None = None, roi: np.ndarray | None = None, roi_source: str = "region of interest",
    frame=None,
) -> list[Sample]:
    """Load SampleRefs (xyz converted from ``xyz_units`` to metres, point spacing checked
    against ``train_spacing`` or, without one, against metres; each measured spacing is
    appended to ``spacings`` as (file, spacing), each grid's (height, width) in pixels to ``sizes``)
    and bring them to the model grid, with progress. ``roi`` (original pixels, from ``roi_source``)
    rides on each sample to the grid (core.roi.attach_roi; UserError on a size mismatch).
    ``frame``: the model's crop around the part (core.object_frame), None for the whole image."""
    from core.data.units import apply_units, check_sample_spacing, point_spacing
    from core.prepare import prepare_sample
    from core.roi import attach_roi

    p = ensure(progress)
    out = []
    for i, ref in enumerate(refs):
        p.update(stage, i, len(refs), ref.name)
        sample = apply_units(ref.load(), xyz_units)
        spacing = None
        if spacings is not None and sample.xyz is not None:
            spacing = point_spacing(sample.xyz)
            spacings.append((str(sample.xyz_path or sample.source()), spacing))
        if config.requested_modalities() != ("rgb",):
            check_sample_spacing(sample, train_spacing, xyz_units, spacing)
        grid = sample.rgb if sample.rgb is not None else sample.xyz
        if sizes is not None and grid is not None:
            sizes.append(grid.shape[:2])
        sample = attach_roi(sample, roi, roi_source)
        out.append(prepare_sample(sample, config.image_size, config.preprocess, config.cache_path(), frame))
    p.update(stage, len(refs), len(refs))
    return out


def part_frame(refs, config: FitConfig, progress: Progress | None, xyz_units: str | None = None,
               min_side: int | None = None):
    """The model's crop around the part (core.object_frame.ObjectFrame) from the extents of the
    training parts ``refs`` after preprocessing, at least ``min_side`` (default the model grid)
    pixels (half that for data without point clouds with ``config.rgb_object_crop``: the part
    found by its colour, core.rgb_foreground, may be enlarged); None (the whole image) when
    ``config.object_crop`` is off, the data has point clouds that the model will not score, has
    none and ``rgb_object_crop`` is off, some training samples have clouds and others not, or the
    square would be no smaller than the images."""
    from core.data.units import apply_units
    from core.object_frame import frame_for
    from core.prepare import part_extent_px

    wanted = config.requested_modalities()
    clouds = [("xyz" in r.modalities) for r in refs]
    least = max(config.image_size, min_side or 0)
    if not config.object_crop or not refs:
        return None
    if all(clouds):
        if wanted is not None and "xyz" not in wanted:
            return None
    elif any(clouds) or not config.rgb_object_crop:
        return None
    else:  # RGB only: the part found by its colour; enlarged up to 2× (no cloud to duplicate)
        least = -(-least // 2)
    p = ensure(progress)
    stage = "Measuring the parts"
    radii, sides = [], []
    for i, ref in enumerate(refs):
        p.update(stage, i, len(refs), ref.name)
        radius, side = part_extent_px(apply_units(ref.load(), xyz_units), config.preprocess, config.cache_path())
        radii.append(radius)
        sides.append(side)
    p.update(stage, len(refs), len(refs))
    frame = frame_for(radii, least)
    return None if frame is None or frame.side_px >= max(sides) else frame  # None: it would crop nothing


def split_calibration(ds, category: str, config: FitConfig):
    """(train refs, calibration refs, description) for one category.

    Calibration (fusion statistics, thresholds, colour range) uses ``validation/good`` when it
    has at least MIN_CALIBRATION samples; otherwise a seeded CALIBRATION_SHARE of train/good is
    held out (MVTec AD layout, plain folders); with fewer than MIN_TRAIN_FOR_HOLDOUT training
    samples the training samples calibrate themselves (empty calibration list; optimistic).
    ``config.max_train`` caps the training samples after the split.
    """
    rng = np.random.default_rng(config.seed)
    train = ds.samples(category, "train")
    val = ds.samples(category, "validation") if "validation" in ds.splits(category) else []
    val = [r for r in val if r.label in (None, "good")]
    if len(val) >= MIN_CALIBRATION:
        source = f"validation/good ({len(val)} samples)"
    elif len(train) >= MIN_TRAIN_FOR_HOLDOUT:
        n_hold = max(MIN_CALIBRATION, int(round(CALIBRATION_SHARE * len(train))))
        hold = set(rng.choice(len(train), n_hold, replace=False).tolist())
        val = [r for i, r in enumerate(train) if i in hold]
        train = [r for i, r in enumerate(train) if i not in hold]
        source = f"{len(val)} of train/good held out (seed {config.seed}; no validation split)"
    else:
        val = []
        source = "training samples (too few to hold any out; thresholds are optimistic)"
    if config.max_train and len(train) > config.max_train:
        pick = rng.choice(len(train), config.max_train, replace=False)
        train = [train[i] for i in sorted(pick)]
    return train, val, source


def choose_modalities(config: FitConfig, samples: list[Sample], where: str) -> tuple[str, ...]:
    """Modalities to fit: the requested ones (checked against the data) or all the data has."""
    have = set.intersection(*(set(s.modalities) for s in samples)) if samples else set()
    requested = config.requested_modalities()
    if requested is None:
        mods = tuple(m for m in ("rgb", "xyz") if m in have)
        if not mods:
            raise UserError(f"{where}: training samples share no modality (RGB or xyz)")
        return mods
    missing = [m for m in requested if m not in have]
    if missing:
        lacking = [s.source() for s in samples if not set(missing) <= set(s.modalities)]
        raise UserError(
            f"{where}: --modalities {config.modalities} needs {'/'.join(missing)}, but "
            f"{len(lacking)} training sample(s) lack it (e.g. {lacking[0]}); "
            f"use --modalities {','.join(m for m in ('rgb', 'xyz') if m in have) or 'auto'}"
        )
    return requested


def create_extractors(config: FitConfig, modalities) -> dict:
    from core.features.registry import accepts, create_extractor, modality_of

    out = {}
    for m in modalities:
        name = config.rgb_backbone if m == "rgb" else config.xyz_backbone
        if modality_of(name) != m:
            raise UserError(f"backbone {name!r} is not a {m} feature extractor")
        weights = config.rgb_weights if m == "rgb" else config.xyz_weights
        kwargs = {}
        if weights:
            kwargs["weights"] = str(Path(weights).expanduser().resolve())
        if accepts(name, "device"):
            kwargs["device"] = config.device
        elif config.device != "cpu":
            log.info("%s runs on the CPU (no --device option)", name)
        if config.colour_contrast and accepts(name, "colour_weight"):
            from core.features.colour import ColourConfig

            kwargs["colour_weight"] = ColourConfig().weight
        out[m] = create_extractor(name, **kwargs)
    return out


def fit_model(
    dataset_root: str | Path,
    category: str,
    config: FitConfig | None = None,
    progress: Progress | None = None,
    xyz_units: str | None = None,
    roi: np.ndarray | None = None,
    roi_source: str = "region of interest",
    frame_min_side: int | None = None,
    frame=MEASURE_FRAME,
    ensemble_member: bool = False,
) -> Model:
    """Fit a model on ``train/good`` of one category; calibrate on ``validation/good``.
    ``xyz_units`` ("mm", "cm", "m"): unit of the point clouds on disk (default metres); stored
    as ``info["xyz_units"]``, the default unit for scoring with the model.
    ``roi``: region of interest in original image pixels (core.roi; from ``roi_source``, named in
    messages): stored on the model, and the thresholds are calibrated on maps masked by it (the
    memory banks hold every patch). ``frame``: the crop around the part (core.object_frame.ObjectFrame),
    None, or :data:`MEASURE_FRAME` (default): measured on the training parts, at least
    ``frame_min_side`` pixels (an ensemble's largest grid; its later members take the first
    member's frame). ``ensemble_member``: the ensemble sets the thresholds and the estimate with a
    self-check of its own, so this model runs one only when it has a choice to make (adapted or
    frozen features, or two modalities)."""
    from core import leave_one_out
    from core.bank_copies import copy_patches
    from core.data.units import check_fit_spacing, unit_scale
    from core.data.dataset import open_dataset
    from core.position_channel import PositionChannel
    from core.roi import check_roi, roi_stack
    from core.scoring.fusion import LateFusion
    from core.scoring.memory_bank import MemoryBank
    from core.tokens import extract_tokens, foreground, scoring_regions

    config = config or FitConfig()
    unit_scale(xyz_units)  # UserError for an unknown unit before any loading
    roi = None if roi is None else check_roi(roi, roi_source)
    p = ensure(progress)
    t_start = time.perf_counter()
    ds = open_dataset(dataset_root)
    where = f"{dataset_root} [{category}]"
    train_refs, val_refs, source = split_calibration(ds, category, config)
    if "held out" in source:
        log.info("%s: calibrating on %s", where, source)

    spacings: list = []
    sizes: list = []
    if frame is MEASURE_FRAME:
        frame = part_frame(train_refs, config, p, xyz_units, frame_min_side)
    train = load_prepared(train_refs, config, p, "Loading training samples", xyz_units, spacings, sizes=sizes,
                          roi=roi, roi_source=roi_source, frame=frame)
    train_spacing = check_fit_spacing(spacings, xyz_units) if config.requested_modalities() != ("rgb",) else None
    modalities = choose_modalities(config, train, where)
    extractors = create_extractors(config, modalities)
    tokens = extract_tokens(extractors, train, config.grid, config.batch_size, p, "Extracting features")
    fg = foreground(train, config.grid)
    if not fg.any():
        raise UserError(f"{where}: no training sample has any foreground point")

    adapter = None
    adapt_notes: list[str] = []
    frozen_tokens = tokens
    if config.skips_adaptation(modalities):
        adapt_notes.append(
            f"adaptation skipped: only {modalities[0]} data, so only the intra-modal losses would apply; "
            "they have no guard against collapse and did not help on the real tire data "
            "(pass --losses lc,gc to force them)"
        )
    elif config.adapt:
        from core.adaptation.engine import train_adapter

        adapter, adapt_notes = train_adapter(tokens, fg, config, p)
        if adapter is not None:
            tokens = adapter.apply(tokens, fg)
    for note in adapt_notes:
        log.info("adaptation: %s", note)

    regions = scoring_regions(fg, config.grid, modalities)

    calib = (load_prepared(val_refs, config, p, "Loading calibration samples", xyz_units, None, train_spacing,
                           roi=roi, roi_source=roi_source, frame=frame)
             if val_refs else train)
    check_self = config.self_check and len(val_refs) >= MIN_CALIBRATION
    if ensemble_member and adapter is None and len(modalities) == 1:
        check_self = False  # nothing to choose; the ensemble's own self-check seeds its thresholds
    variant_adapters = {("adapted" if adapter is not None else "frozen"): adapter}
    if adapter is not None and check_self:
        variant_adapters["frozen"] = None
    # Each variant's position channel, in the units of its own (adapted or frozen) features.
    positions = {name: (PositionChannel.measure(frozen_tokens if a is None else tokens, regions,
                                                config.position_weight, config.seed, p)
                        if frame is not None else None)
                 for name, a in variant_adapters.items()}
    extra = copy_patches(extractors, train, config, variant_adapters, modalities, p, positions)  # empty unless asked

    def build_model(variant: str) -> Model:
        adapter_or_none = variant_adapters[variant]
        toks = frozen_tokens if adapter_or_none is None else tokens
        if positions[variant] is not None:
            toks = positions[variant].apply(toks, config.grid)
        banks = {}
        for m in modalities:
            patches = toks[m][regions[m]]
            ratio = config.effective_coreset_ratio(len(patches))
            copies = extra[variant][m]
            if copies:  # the bank keeps the size it has without the copies
                kept = ratio * len(patches)
                patches = np.concatenate([patches, *copies])
                ratio = min(1.0, kept / len(patches))
            patches = np.ascontiguousarray(patches)
            banks[m] = MemoryBank.build(patches, ratio, config.seed, progress=p)
            leave_one_out.set_owners(banks[m], regions[m])
            if config.patch_distance == "relative":
                banks[m].spread()  # part of building the bank (one exact search of it against itself)
        out = Model(config, modalities, extractors, banks, LateFusion(config.fusion), LateFusion(config.fusion),
                    Thresholds(0.0, 0.0), (0.0, 1.0), adapter=adapter_or_none)
        out.object_frame = frame
        out.position = positions[variant]
        return out

    variants = {name: build_model(name) for name in variant_adapters}
    # Frozen features of the calibration samples, extracted once: the search check, the self-check
    # and the calibration scores share them (without a hold-out they are the training features).
    calib_features = (extract_tokens(extractors, calib, config.grid, config.batch_size, p,
                                     "Extracting features of calibration samples")
                      if val_refs else frozen_tokens)
    # Training parts scored leave-one-out for the seeded image threshold (not with bank copies:
    # a part's shifted or turned copies are its own patches too, and their owners are not tracked).
    loo_parts = (leave_one_out.scorable(leave_one_out.chosen_parts(len(train)),
                                        [b for v in variants.values() for b in v.banks.values()])
                 if config.threshold_training_parts and check_self and not any(any(c.values()) for c in extra.values())
                 else np.zeros(0, np.int64))
    loo_features = {m: f[loo_parts] for m, f in frozen_tokens.items()}
    del tokens, frozen_tokens, extra

    # Each variant's search is chosen before anything is scored with it, so the self-check and the
    # calibration scores come from the search the model scores parts with.
    t_search = time.perf_counter()
    for variant in variants.values():
        variant.choose_search(calib if val_refs else [], p, calib_features)
    search_check_s = time.perf_counter() - t_search

    def fit_fusion(model: Model, maps: dict) -> LateFusion:
        pix = np.stack([maps[m].reshape(-1) for m in modalities], axis=1)
        return LateFusion(config.fusion).fit(pix)

    check = None
    if check_self:
        from core import self_check

        t_check = time.perf_counter()
        loo_samples = [train[i] for i in loo_parts]
        left_out: dict = {}  # the chosen variant's maps of the left-out training parts, scored once
        loo_s = 0.0

        def left_out_maps(variant: Model) -> dict:
            nonlocal loo_s
            if left_out.get("model") is not variant:
                t_loo = time.perf_counter()
                left_out.update(model=variant, maps=leave_one_out.left_out_maps(variant, loo_samples, loo_features,
                                                                                loo_parts, p))
                loo_s += time.perf_counter() - t_loo
            return left_out["maps"]

        def pooled_units(variant: Model, good_maps: dict):
            # the units image score's units from the held-out and the left-out good parts together
            # (docs/evaluation.md, "the image score in units of how far the good parts reach")
            if not len(loo_parts):
                return None
            more = variant.modality_topk_scores(left_out_maps(variant), roi_stack(loo_samples))
            return variant.fit_image_units(good_maps, roi_stack(calib), more)

        check = self_check.run_self_check(variants, calib, fit_fusion, config.seed, p, calib_features,
                                          image_units=pooled_units)
        model = variants[check.chosen.variant]
        training_good = None
        if len(loo_parts):  # with a units image score, in the pooled units the self-check used
            training_good = leave_one_out.fused_scores(model, check.chosen, left_out_maps(model),
                                                       roi_stack(loo_samples), check.image_units)
            left_out.clear()
        self_check_s = time.perf_counter() - t_check
        if check.chosen.variant == "frozen" and adapter is not None:
            adapt_notes.append("self-check: frozen features scored better on synthetic defects; adaptors not kept")
    else:
        model = next(iter(variants.values()))
    if check is not None:  # the self-check already scored the calibration samples with this variant
        scores, maps = check.calibration[check.chosen.variant]
    else:
        scores, maps = model.modality_maps_batched(calib, p, "Calibrating", calib_features)
    del calib_features
    for m, bank in model.banks.items():
        log.info("%s: %s nearest-neighbour search: %s", where, m, bank.search.describe())
    model.pixel_fusion = check.chosen.fusion if check is not None else fit_fusion(model, maps)
    if check is not None and check.image_units is not None:  # the units the chosen candidate scores in
        model.image_fusion = check.image_units
    elif model.units_image_score:  # the same units the self-check scored with
        model.image_fusion = model.fit_image_units(maps, roi_stack(calib))
    else:
        model.image_fusion.fit(np.stack([scores[m] for m in modalities], axis=1))
    fused_img, fused_maps = model.fuse(scores, maps, roi_stack(calib))  # thresholds see the ROI

    if check is not None:
        # With a map-based image score (the mean of the top-k pixels, or the maximum) a part at or
        # above the image threshold has a pixel at or above it, so a pixel threshold equal to the
        # image threshold outlines every NG part. Measured against the best pixel F1 on the
        # synthetic defects (docs/evaluation.md): NG parts without an outline 17-100 % -> 0 %.
        # The per-modality top-k sum is at least the fused map's top-k mean, so there the pixel
        # threshold comes down until every flagged self-check sample is outlined.
        map_based = model.map_based_image_score
        outlined = map_based or config.fused_image_score in ("modality_topk", "modality_units")
        seeded = self_check.seeded_thresholds(check.chosen, check.masks, config.seed, pixel=not outlined,
                                              training_good=training_good)
        image_thr, pixel_thr = seeded.image, seeded.pixel
        how = self_check.seeded_how(len(check.masks), source, seeded, len(loo_parts))
        if map_based:
            pixel_thr = image_thr
            how += "; pixel threshold = image threshold (every NG part is outlined)"
        elif outlined:
            pixel_thr = self_check.outline_threshold(check.chosen, image_thr,
                                                     same_units=config.fused_image_score == "modality_topk")
            how += "; pixel threshold: the highest that outlines every flagged self-check sample"
        # Optional: NG only above every held-out good part, UNCERTAIN between the thresholds.
        # Not the default: on the confirmation parts most real defects then land in the band
        # (docs/evaluation.md, "uncertain band").
        band, how = self_check.band_with_note(check.chosen, image_thr, how, config.uncertain_band)
        spread = seeded.image_spread
    else:
        image_thr, pixel_thr = quantile_thresholds(fused_img, fused_maps, config.image_quantile, config.pixel_quantile)
        how = f"{source} good quantiles"
        band = spread = None
    model.thresholds = Thresholds(image_thr, pixel_thr, how, uncertain_until=band, image_spread=spread)
    from core.colour_range import fitted_colour_range

    model.display_range = fitted_colour_range(fused_maps, pixel_thr, config.pixel_quantile)
    model.set_roi(roi, roi_source)
    model.info = {
        "category": category,
        "dataset": str(dataset_root),
        "n_train": len(train),
        "n_calibration": len(calib),
        "calibration": source,
        "fit_seconds": round(time.perf_counter() - t_start, 3),
        "bank_sizes": {m: int(len(b.vectors)) for m, b in model.banks.items()},
        "search_check_seconds": round(search_check_s, 3),
        "xyz_spacing_m": train_spacing,
        "xyz_units": xyz_units or "m",
        "image_size": [int(v) for v in np.median(np.asarray(sizes), axis=0)] if sizes else None,
        "calibration_scores": {"median": float(np.median(fused_img)), "q999": float(np.quantile(fused_img, 0.999))},
        "adaptation_notes": adapt_notes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if check is not None:
        model.info["self_check"] = self_check.summary(check)
        model.info["self_check"]["seconds"] = round(self_check_s, 3)
        if training_good is not None:
            model.info["self_check"]["training_parts_left_out"] = {
                "n": int(len(training_good)), "median_score": float(np.median(training_good)),
                "seconds": round(loo_s, 3)}
        model.info["self_check"]["estimate"].update(self_check.held_out_good_flagged(check.chosen, image_thr,
                                                                                       training_good))
        est = model.info["self_check"]["estimate"]
        log.info("self-check (synthetic defects, an estimate): I-AUROC %.3f, AUPRO@0.3 %.3f; using %s, %s",
                 est["image_auroc"], est["aupro_30"], model.info["self_check"]["variant"],
                 model.info["self_check"]["fusion"])
    p.update("Done", 1, 1)
    return model
