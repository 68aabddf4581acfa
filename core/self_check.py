"""Fit-time self-check on synthetic defects: choose, calibrate and estimate without defective parts.

After the memory banks are built, the held-out good calibration samples (``validation/good`` or
a held-out share of ``train/good``; never test data) are scored as they are and with synthetic
defects painted on (:mod:`core.pseudo_defects`). On these labelled pseudo-samples the fit:

1. chooses a *variant*: LSFA-adapted features or frozen ones. The adapted variant is kept only
   when its self-check score beats the frozen one by ``ADAPT_MARGIN`` and, in at least
   ``ADAPT_CONFIDENCE`` of paired bootstrap resamples of the self-check samples, its I-AUROC on
   them is higher (:func:`adapted_wins_share`): with 10 good parts and 30 synthetic defects a
   difference of a few hundredths is noise, and the frozen features are the simpler choice;
2. shrinks an uninformative modality: a modality whose own image score tells the synthetic
   defects that change only it (RGB: stains, cut-paste, scratches; xyz: dents, bumps) from good
   samples with an I-AUROC below ``UNINFORMATIVE_AUROC`` in ``DROP_CONFIDENCE`` of bootstrap
   resamples (:func:`informativeness_upper`) gets fusion weight 0 while the other modality does
   better: it leaves the image score. With 10 held-out good parts a point AUROC below 0.6 flipped
   with the fit's seed, and dropping a useful modality cost far more than keeping a useless one
   (docs/evaluation.md, sixteenth session); the anomaly map keeps it unless
   ``FitConfig.dropped_modality_in_map`` is off (:meth:`core.model.Model.map_fusion`). (Choosing the fusion by the pseudo-defects' overall score was measured
   on the suite's tuning group and rejected: the mix of synthetic defect types decides the
   winner, and it switched to worse fusions on real defects.)
3. seeds the image and pixel thresholds at the best F1 of pseudo-defects vs good samples (the
   image threshold as the median of that cut over bootstrap resamples, which moves less with the
   fit's seed: docs/evaluation.md, "the bagged seeded threshold"), and
   on request (``FitConfig.uncertain_band``) an uncertain band above the image threshold up to
   the highest held-out good score (:func:`seeded_uncertain_until`);
4. reports the estimate (I-AUROC and AUPRO@0.3 on ``WIDE_PER_SAMPLE`` synthetic defects per good
   sample drawn from subtle to gross, :func:`chosen_estimate`), labelled as such, and how many
   held-out good parts the image threshold flags (:func:`held_out_good_flagged`). The subtle
   defects the choices are made on are hard on purpose and left out of the estimate: they
   underestimate real test sets, which mix subtle and gross defects (docs/evaluation.md).

The self-check score of a candidate is the mean of its image AUROC and AUPRO@0.3 on the
pseudo-samples. All map values are in fused good-tail units (core.scoring.fusion). With the units
image score (``modality_units``, the default) the choices are made in units fitted on the held-out
parts; the chosen candidate, its thresholds and the estimate then use the units the fit passes in
(``run_self_check(image_units=...)``: the held-out and the left-out training parts together).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from core.data.sample import Sample
from core.progress import Progress, ensure

log = logging.getLogger(__name__)

PSEUDO_PER_SAMPLE = 3  # synthetic defects painted on each calibration sample
WIDE_PER_SAMPLE = 2  # from subtle to gross, for the estimate only (docs/evaluation.md)
ADAPT_MARGIN = 0.01  # the adapted variant must beat frozen by this self-check score
ADAPT_CONFIDENCE = 0.9  # ... and win in this share of paired bootstrap resamples (stated, not tuned)
DROP_CONFIDENCE = 0.9  # a modality is dropped only when below UNINFORMATIVE_AUROC in this share of resamples (as above)
BOOTSTRAP_ROUNDS = 1000
INTERVAL_LEVEL = 0.9  # the estimate's bootstrap interval (auroc_interval)


@dataclass
class VariantMaps:
    """Per-modality raw maps (B, S, S) of one model variant on good and pseudo-defect samples."""

    good: dict[str, np.ndarray]
    pseudo: dict[str, np.ndarray]
    good_roi: np.ndarray | None = None  # (B, S, S) bool regions of interest (core.roi.roi_stack), or None
    pseudo_roi: np.ndarray | None = None


@dataclass
class SelfCheck:
    chosen: "Candidate"
    candidates: list
    masks: list  # pseudo-defect masks (S, S) bool, in the order of the pseudo scores
    n_good: int
    estimate: dict  # the estimate record of chosen_estimate
    calibration: dict = field(default_factory=dict)  # {variant: (scores, maps)} of the good samples
    adapted_wins: float | None = None  # adapted_wins_share, when both variants were compared
    image_units: object = None  # the units image score's units (LateFusion) the chosen candidate scores in, if any


@dataclass
class Candidate:
    variant: str
    fusion_name: str
    fusion: object  # core.scoring.fusion.LateFusion
    image_auroc: float
    aupro: float
    good_scores: np.ndarray = field(repr=False)
    pseudo_scores: np.ndarray = field(repr=False)
    good_maps: np.ndarray = field(repr=False)
    pseudo_maps: np.ndarray = field(repr=False)
    informativeness: dict = field(default_factory=dict)
    informativeness_upper: dict = field(default_factory=dict)  # informativeness_upper of the same maps
    good_topk: np.ndarray | None = field(default=None, repr=False)  # (n, modalities) raw top-k means, units score only
    pseudo_topk: np.ndarray | None = field(default=None, repr=False)

    @property
    def score(self) -> float:
        return 0.5 * (self.image_auroc + self.aupro)


ONLY_CHANGES = {"rgb": ("stain", "cutpaste", "scratch"), "xyz": ("dent", "bump")}  # pseudo kinds per modality
UNINFORMATIVE_AUROC = 0.6  # a modality that tells its own synthetic defects from good parts no better is dropped


def own_defect_scores(model, maps: VariantMaps, kinds: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
    """{modality: (its own image scores of the good samples, of the synthetic defects that change
    only it)}; None when there are none, e.g. a single-modality model."""
    out: dict = {}
    for m in model.modalities:
        own = [i for i, k in enumerate(kinds) if k in ONLY_CHANGES.get(m, ())]
        if len(model.modalities) < 2 or not own:
            out[m] = None
            continue
        out[m] = (np.asarray(model._map_image_scores(maps.good[m]), float),
                  np.asarray(model._map_image_scores(maps.pseudo[m][own]), float))
    return out


def modality_informativeness(model, maps: VariantMaps, kinds: list[str],
                             scores: dict | None = None) -> dict[str, float | None]:
    """{modality: I-AUROC of its own image score on the synthetic defects that change only it}
    (None when there are none, e.g. a single-modality model). ``scores``: :func:`own_defect_scores`
    if computed already."""
    from core.metrics import image_auroc

    scores = own_defect_scores(model, maps, kinds) if scores is None else scores
    return {m: None if s is None else float(image_auroc(np.r_[np.zeros(len(s[0]), bool), np.ones(len(s[1]), bool)],
                                                        np.r_[s[0], s[1]]))
            for m, s in scores.items()}


def informativeness_upper(scores: dict, seed: int, rounds: int = BOOTSTRAP_ROUNDS) -> dict[str, float | None]:
    """{modality: the DROP_CONFIDENCE percentile of its informativeness under bootstrap resamples
    of the good parts and its own synthetic defects} for :func:`own_defect_scores` ``scores``: below
    UNINFORMATIVE_AUROC, the modality is uninformative in at least that share of resamples."""
    return {m: None if s is None else float(auroc_percentiles(*s, seed, [100.0 * DROP_CONFIDENCE], rounds)[0])
            for m, s in scores.items()}


def shrink_uninformative(base_fusion, upper: dict[str, float | None], modalities):
    """(fusion, name): weight 0 for a modality whose :func:`informativeness_upper` is below
    UNINFORMATIVE_AUROC while another modality's is not; otherwise ``base_fusion`` unchanged."""
    values = [upper.get(m) for m in modalities]
    weak = [v is not None and v < UNINFORMATIVE_AUROC for v in values]
    if not base_fusion.mode.startswith("tail_") or not any(weak) or all(weak):
        return base_fusion, f"{base_fusion.mode} (equal weights)"
    w = np.array([0.0 if k else 1.0 for k in weak])
    kept = [m for m, k in zip(modalities, weak) if not k]
    return base_fusion.with_weights(w), f"{'+'.join(kept)} only ({', '.join(m for m, k in zip(modalities, weak) if k)} uninformative)"


def evaluate_candidate(model, fusion, maps: VariantMaps, masks: list[np.ndarray], units=None):
    """(image scores good, image scores pseudo, fused maps good, fused maps pseudo, I-AUROC, AUPRO).
    ``units``: the units image score's units (:meth:`core.model.Model.fit_image_units`); None: fitted
    on ``maps.good`` when the model has a units image score."""
    from core.metrics import aupro, image_auroc

    if units is None and model.units_image_score:
        units = model.fit_image_units(maps.good, maps.good_roi)
    good_img, good_maps = model.fuse_maps(maps.good, fusion, maps.good_roi, units)
    bad_img, bad_maps = model.fuse_maps(maps.pseudo, fusion, maps.pseudo_roi, units)
    labels = np.r_[np.zeros(len(good_img), bool), np.ones(len(bad_img), bool)]
    i_auroc = image_auroc(labels, np.r_[good_img, bad_img])
    all_masks = [np.zeros(m.shape, bool) for m in good_maps] + list(masks)
    pro = aupro(all_masks, list(good_maps) + list(bad_maps), 0.3, 100)
    return good_img, bad_img, good_maps, bad_maps, float(i_auroc), float(pro)


def select_fusion(model, base_fusion, maps: VariantMaps, masks: list[np.ndarray], kinds: list[str], variant: str = ""):
    """The Candidate of ``base_fusion`` after :func:`shrink_uninformative`, and the informativeness
    (the bootstrap of :func:`informativeness_upper` is seeded with the model's seed)."""
    scores = own_defect_scores(model, maps, kinds)
    info = modality_informativeness(model, maps, kinds, scores)
    upper = informativeness_upper(scores, model.config.seed)
    fusion, name = shrink_uninformative(base_fusion, upper, model.modalities)
    gi, bi, gm, bm, ia, pro = evaluate_candidate(model, fusion, maps, masks)
    topk = ((model.modality_topk_scores(maps.good, maps.good_roi), model.modality_topk_scores(maps.pseudo, maps.pseudo_roi))
            if model.units_image_score else (None, None))
    return Candidate(variant, name, fusion, ia, pro, gi, bi, gm, bm, info, upper, *topk), info


def in_image_units(candidate: Candidate, units) -> Candidate:
    """``candidate`` with its image scores (and I-AUROC) in other ``units`` of the units image
    score (its maps, fusion and AUPRO unchanged): the units fitted on more good parts than the
    held-out ones it was chosen with."""
    from dataclasses import replace

    from core.metrics import image_auroc

    units = units.weighted_as(candidate.fusion)
    good = np.asarray(units.transform(candidate.good_topk), np.float32)
    bad = np.asarray(units.transform(candidate.pseudo_topk), np.float32)
    labels = np.r_[np.zeros(len(good), bool), np.ones(len(bad), bool)]
    return replace(candidate, good_scores=good, pseudo_scores=bad,
                   image_auroc=float(image_auroc(labels, np.r_[good, bad])))


def _pair_wins(good: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """(G, B) 1 where a synthetic defect scores above a good part, 0.5 on ties, else 0."""
    return (bad[None, :] > good[:, None]) + 0.5 * (bad[None, :] == good[:, None])


def _resampled_aurocs(pair_values: np.ndarray, seed: int, rounds: int) -> np.ndarray:
    """(rounds,) the mean of a (G, B) good-by-defect matrix (e.g. :func:`_pair_wins`: an AUROC)
    under bootstrap resamples that draw the good parts and the synthetic defects with replacement,
    each resample = c_g^T M c_b / (G B) with c_g, c_b the draw counts (seeded)."""
    n_good, n_bad = pair_values.shape
    rng = np.random.default_rng(seed + 104729)
    counts_good = rng.multinomial(n_good, np.full(n_good, 1 / n_good), size=rounds).astype(float)
    counts_bad = rng.multinomial(n_bad, np.full(n_bad, 1 / n_bad), size=rounds).astype(float)
    return np.einsum("rg,gb,rb->r", counts_good, pair_values, counts_bad) / (n_good * n_bad)


def adapted_wins_share(adapted: Candidate, frozen: Candidate, seed: int, rounds: int = BOOTSTRAP_ROUNDS) -> float:
    """Share of paired bootstrap resamples in which ``adapted``'s image AUROC on the self-check
    samples is strictly higher than ``frozen``'s. Each resample draws the good parts and the
    synthetic defects with replacement, the same draws for both candidates (both scored the same
    samples)."""
    if len(adapted.good_scores) == 0 or len(adapted.pseudo_scores) == 0:
        return 0.0
    diff = (_pair_wins(adapted.good_scores, adapted.pseudo_scores)
            - _pair_wins(frozen.good_scores, frozen.pseudo_scores))
    return float(np.mean(_resampled_aurocs(diff, seed, rounds) > 1e-12))


def auroc_percentiles(good_scores, bad_scores, seed: int, percents, rounds: int = BOOTSTRAP_ROUNDS) -> np.ndarray:
    """The given percentiles (0-100) of the I-AUROC of ``bad_scores`` against ``good_scores``
    under seeded bootstrap resamples of both (:func:`_resampled_aurocs`); NaN when either is empty."""
    wins = _pair_wins(np.asarray(good_scores, float), np.asarray(bad_scores, float))
    if wins.size == 0:
        return np.full(len(percents), np.nan)
    return np.percentile(_resampled_aurocs(wins, seed, rounds), percents)


def auroc_interval(good_scores, bad_scores, seed: int, level: float = INTERVAL_LEVEL,
                   rounds: int = BOOTSTRAP_ROUNDS) -> tuple[float, float]:
    """(low, high) percentile bootstrap interval of the I-AUROC of synthetic defects against good
    samples: how much the estimate moves with which few samples happened to be drawn. It does not
    cover the gap between synthetic and real defects."""
    tail = 50.0 * (1.0 - level)
    low, high = auroc_percentiles(good_scores, bad_scores, seed, [tail, 100.0 - tail], rounds)
    return float(low), float(high)


def choose_variant(adapted: Candidate, frozen: Candidate, seed: int) -> tuple[Candidate, float]:
    """(the kept candidate, :func:`adapted_wins_share`): ``adapted`` only when its self-check
    score beats ``frozen``'s by ADAPT_MARGIN and it wins in ADAPT_CONFIDENCE of the resamples."""
    wins = adapted_wins_share(adapted, frozen, seed)
    log.info("self-check: adapted beats frozen in %.0f%% of bootstrap resamples", 100 * wins)
    keep = adapted.score >= frozen.score + ADAPT_MARGIN and wins >= ADAPT_CONFIDENCE
    return (adapted if keep else frozen), wins


def run_self_check(
    variants: dict,
    calib: list[Sample],
    fusion_fitter,
    seed: int,
    progress: Progress | None = None,
    good_features: dict | None = None,
    image_units=None,
) -> SelfCheck:
    """Score ``calib`` and its pseudo-defects with each model variant ({name: Model}, the first
    is the default) and choose a variant and fusion. Each variant scores with its banks' own
    search (:meth:`core.model.Model.choose_search` runs before, as the fit does), as it will score parts.

    ``fusion_fitter(model, good_maps) -> LateFusion`` fits the default fusion on good maps.
    ``good_features``: {modality: (len(calib), grid*grid, dim)} frozen features of ``calib``
    extracted already (not extracted again).
    ``image_units(model, good_maps) -> LateFusion | None``: called with the chosen variant's model and
    its maps of ``calib`` once the choices are made (they are made in units fitted on ``calib``); the
    units it returns (e.g. fitted on more good parts) are what the chosen candidate and the estimate
    score in from then on, and :attr:`SelfCheck.image_units`.
    Samples carrying a region of interest (``Sample.roi``) are judged inside it only."""
    from core.pseudo_defects import make_pseudo_defects
    from core.roi import roi_stack

    p = ensure(progress)
    first = next(iter(variants.values()))
    rng = np.random.default_rng(seed + 7919)
    pseudo = make_pseudo_defects(calib, first.modalities, PSEUDO_PER_SAMPLE, rng)
    masks = [s.mask for s in pseudo]
    kinds = [s.label.removeprefix("pseudo_") for s in pseudo]
    all_candidates: list[Candidate] = []
    calibration: dict = {}
    best_per_variant: dict[str, Candidate] = {}
    # the variants differ only after the frozen features: extract them once; a synthetic defect's
    # point cloud that it left as it was keeps its good part's 3D features (core.tokens.known_features)
    from core.tokens import extract_tokens, known_features

    grid, bs = first.config.grid, first.config.batch_size
    shared_good = good_features
    if shared_good is None:
        shared_good = extract_tokens(first.extractors, calib, grid, bs, p, "Self-check: features of good samples")
    known = known_features(calib, shared_good)
    shared_bad = extract_tokens(first.extractors, pseudo, grid, bs, p, "Self-check: features of synthetic defects",
                                known=known)
    for vi, (vname, model) in enumerate(variants.items()):
        p.update("Self-check on synthetic defects", vi, len(variants), vname)
        good_scores, good = model.modality_maps_batched(calib, p, f"Self-check ({vname}): good samples", shared_good)
        calibration[vname] = (good_scores, good)
        bad = model.modality_maps_batched(pseudo, p, f"Self-check ({vname}): synthetic defects", shared_bad)[1]
        maps = VariantMaps(good, bad, roi_stack(calib), roi_stack(pseudo))
        best, _ = select_fusion(model, fusion_fitter(model, good), maps, masks, kinds, vname)
        all_candidates.append(best)
        best_per_variant[vname] = best
    names = list(variants)
    chosen, wins = best_per_variant[names[0]], None
    if len(names) > 1:  # names[0] = adapted, names[1] = frozen
        chosen, wins = choose_variant(chosen, best_per_variant[names[1]], seed)
    units = None
    if image_units is not None and chosen.good_topk is not None:
        units = image_units(variants[chosen.variant], calibration[chosen.variant][1])
        if units is not None:
            chosen = in_image_units(chosen, units)
    estimate = chosen_estimate(variants[chosen.variant], chosen, calib, calibration[chosen.variant][1], seed, p, units,
                               known)
    p.update("Self-check on synthetic defects", len(variants), len(variants))
    return SelfCheck(chosen, all_candidates, masks, len(calib), estimate, calibration, wins, units)


def estimate_defects(calib: list[Sample], modalities, seed: int) -> list[Sample]:
    """The estimate's synthetic defects: ``WIDE_PER_SAMPLE`` per held-out good sample, drawn from
    subtle to gross (core.pseudo_defects.WIDE), seeded apart from the subtle ones."""
    from core.pseudo_defects import WIDE, make_pseudo_defects

    return make_pseudo_defects(calib, modalities, WIDE_PER_SAMPLE, np.random.default_rng(seed + 15485863), WIDE)


def synthetic_estimate(good_scores, bad_scores, good_maps, bad_maps, bad_masks, seed: int) -> dict:
    """The estimate record (:func:`estimate_record`: I-AUROC with its bootstrap interval, AUPRO@0.3)
    of synthetic defects (``bad_*``) against held-out good samples (``good_*``), on image scores
    and maps in the same units."""
    from core.metrics import aupro, image_auroc

    labels = np.r_[np.zeros(len(good_scores), bool), np.ones(len(bad_scores), bool)]
    masks = [np.zeros(m.shape, bool) for m in good_maps] + list(bad_masks)
    return estimate_record(float(image_auroc(labels, np.r_[good_scores, bad_scores])),
                           float(aupro(masks, list(good_maps) + list(bad_maps), 0.3, 100)),
                           len(bad_scores), len(good_scores), auroc_interval(good_scores, bad_scores, seed))


def chosen_estimate(model, chosen: Candidate, calib: list[Sample], good_maps: dict, seed: int,
                    progress: Progress | None = None, units=None, known: dict | None = None) -> dict:
    """The estimate record (:func:`estimate_record`) of the chosen candidate on the estimate's own
    synthetic defects (:func:`estimate_defects`; not the subtle ones its choices were made on);
    ``units``: as :func:`evaluate_candidate`'s; ``known``: the good parts' features to reuse
    (core.tokens.known_features)."""
    from core.roi import roi_stack
    from core.tokens import extract_tokens

    extra = estimate_defects(calib, model.modalities, seed)
    stage = "Self-check: synthetic defects for the estimate"
    features = extract_tokens(model.extractors, extra, model.config.grid, model.config.batch_size, progress, stage,
                              known=known)
    bad = model.modality_maps_batched(extra, progress, stage, features)[1]
    maps = VariantMaps(good_maps, bad, roi_stack(calib), roi_stack(extra))
    good_img, bad_img, _, _, i_auroc, pro = evaluate_candidate(model, chosen.fusion, maps, [s.mask for s in extra], units)
    return estimate_record(i_auroc, pro, len(bad_img), len(good_img), auroc_interval(good_img, bad_img, seed))


CUT_SPREAD = (10.0, 90.0)  # percentiles of the bootstrap cuts reported with the seeded image threshold


class SeededThresholds(NamedTuple):
    image: float  # the bagged best-F1 cut (raw fused units), raised off the score's floor (see seeded_thresholds)
    pixel: float | None  # the best pixel F1 cut, when asked for
    image_spread: tuple[float, float]  # CUT_SPREAD percentiles of the resamples' cuts
    raised_from_floor: bool = False  # the cut sat at the floor (0) and was raised to the lowest good score above it


def seeded_thresholds(chosen: Candidate, masks: list[np.ndarray], seed: int,
                      pixel: bool = True, training_good=None) -> SeededThresholds:
    """Thresholds from pseudo-defects vs good calibration samples: the image threshold is the
    median of the best-F1 cut over bootstrap resamples (core.thresholds.bagged_best_f1_threshold,
    seeded with ``seed``), reported with how far the resamples' cuts spread; the pixel threshold is
    the best pixel F1, None unless ``pixel`` (its best-F1 search is the costly part).
    ``training_good``: fused image scores of training parts scored leave-one-out
    (core.leave_one_out), pooled with the held-out good parts for the image threshold, each good
    part weighted so that together they count as many as the held-out ones (the synthetic defects,
    painted on the held-out parts, keep their share).

    A cut at the floor of a score that cannot go below 0 (the units image score: a good part below
    the median on every modality scores exactly 0) flags every part there will ever be; it is raised
    to the lowest good score above 0, so the parts at the floor pass (docs/evaluation.md, "the
    seeded threshold off the score's floor")."""
    from core.thresholds import bootstrap_best_f1_cuts, pixel_best_f1_threshold

    extra = np.zeros(0) if training_good is None else np.asarray(training_good, float)
    good = np.r_[chosen.good_scores, extra]
    labels = np.r_[np.zeros(len(good), bool), np.ones(len(chosen.pseudo_scores), bool)]
    weight = len(chosen.good_scores) / len(good) if len(good) else 1.0
    cuts = bootstrap_best_f1_cuts(labels, np.r_[good, chosen.pseudo_scores], seed, good_weight=weight)
    image_thr = float(np.median(cuts))
    low, high = (float(v) for v in np.percentile(cuts, CUT_SPREAD))
    above_floor = good[good > 0.0]
    raised = bool(image_thr <= 0.0 <= good.min() and len(above_floor))
    if raised:
        image_thr = float(above_floor.min())
    pixel_thr = None
    if pixel:
        all_masks = [np.zeros(m.shape, bool) for m in chosen.good_maps] + list(masks)
        pixel_thr = float(pixel_best_f1_threshold(all_masks, list(chosen.good_maps) + list(chosen.pseudo_maps))[0])
    return SeededThresholds(image_thr, pixel_thr, (low, high), raised)


def seeded_how(n_defects: int, source: str, seeded: SeededThresholds, n_training: int = 0) -> str:
    """How the seeded image threshold was chosen, with the spread of its bootstrap cuts (one phrase
    for the model's thresholds record); ``n_training``: training parts scored leave-one-out among
    the good parts."""
    low, high = seeded.image_spread
    share = CUT_SPREAD[1] - CUT_SPREAD[0]
    also = (f" and {n_training} training parts scored leave-one-out (all good parts together weighted as the "
            f"held-out ones)" if n_training else "")
    floor = ("; that cut (0) flagged every part, so it was raised to the lowest good score above 0"
             if seeded.raised_from_floor else "")
    return (f"best F1 on {n_defects} synthetic defects vs {source}{also}, the median over bootstrap resamples "
            f"({share:.0f} % of their cuts within {low:.4g}–{high:.4g}){floor}")


def outline_threshold(chosen: Candidate, image_threshold: float, same_units: bool = True) -> float:
    """Pixel threshold (fused units) for an image score that is not a statistic of the fused map
    (``modality_topk``, ``modality_units``): the highest value at which every self-check sample
    (held-out good or synthetic defect) at or above the image threshold has at least one outlined
    pixel; at most the image threshold when the two are in the same units (``modality_topk``).
    (With a map-based image score the image threshold itself does.)"""
    scores = np.r_[chosen.good_scores, chosen.pseudo_scores]
    maps = list(chosen.good_maps) + list(chosen.pseudo_maps)
    peaks = [float(np.max(m)) for m, sc in zip(maps, scores) if sc >= image_threshold]
    cap = [image_threshold] if same_units or not peaks else []
    return float(min([*cap, *peaks]))


def seeded_uncertain_until(chosen: Candidate, image_threshold: float) -> float | None:
    """Upper end of the uncertain band (raw fused units): just above the highest held-out good
    calibration score, or None when that is below the image threshold (no band).

    The best-F1 image threshold weighs 3 synthetic defects against each good part, so it flags
    most held-out good parts on most products (docs/evaluation.md). Above every held-out good
    score a verdict is confident: a new good part drawn like the n held-out ones scores higher
    with probability at most 1/(n + 1). Parts between the two ends are UNCERTAIN (check them)."""
    if len(chosen.good_scores) == 0:
        return None
    top = float(np.max(chosen.good_scores))
    upper = float(np.nextafter(top, np.inf))  # the highest good part itself is UNCERTAIN, not NG
    return upper if upper > image_threshold else None


def band_with_note(chosen: Candidate, image_threshold: float, how: str, wanted: bool) -> tuple[float | None, str]:
    """(upper end of the uncertain band or None, ``how`` with a note on it): the band of
    :func:`seeded_uncertain_until` when ``wanted`` (``FitConfig.uncertain_band``)."""
    band = seeded_uncertain_until(chosen, image_threshold) if wanted else None
    if band is not None:
        how += f"; UNCERTAIN up to the highest of {len(chosen.good_scores)} held-out good scores, NG above"
    return band, how


def held_out_good_flagged(chosen: Candidate, image_threshold: float, training_good=None) -> dict:
    """How many held-out good parts are at or above the image threshold (an estimate of the
    false-reject rate, from the same samples the threshold was chosen on), and the highest
    held-out good score (raw fused units), for the estimate record; with ``training_good`` (fused
    scores of training parts scored leave-one-out) also how many of those are flagged
    ("training_flagged" of "n_training")."""
    good = np.asarray(chosen.good_scores, dtype=float)
    out = {"good_flagged": int((good >= image_threshold).sum()), "n_good": int(good.size),
           "highest_good_score": float(good.max()) if good.size else None}
    if training_good is not None:
        training = np.asarray(training_good, dtype=float)
        out.update(training_flagged=int((training >= image_threshold).sum()), n_training=int(training.size))
    return out


def training_flagged_text(estimate: dict) -> str:
    """"training parts scored leave-one-out at or above it: k of n" ("" when not recorded)."""
    n, k = estimate.get("n_training"), estimate.get("training_flagged")
    return f"training parts scored leave-one-out at or above it: {k} of {n}" if n and k is not None else ""


def describe_good_flagged(estimate: dict) -> str:
    """One line on the held-out good parts the image threshold flags ("" when not recorded),
    with the band that would make NG mean "above every held-out good part"."""
    n, k, top = estimate.get("n_good"), estimate.get("good_flagged"), estimate.get("highest_good_score")
    if not n or k is None:
        return ""
    line = f"held-out good parts at or above the fitted image threshold: {k} of {n}"
    training = training_flagged_text(estimate)
    if training:
        line += f"; {training}"
    if k and top is not None:
        line += (f" (expect false rejects; an uncertain band up to just above {top:.4g} makes NG mean "
                 "'above every held-out good part': lsfa fit --uncertain-band, or lsfa score --uncertain)")
    return line


def _chosen_candidate(record: dict) -> dict | None:
    return next((c for c in record.get("candidates", []) if c.get("variant") == record.get("variant")), None)


def weak_kept_modalities(record: dict) -> list[tuple[str, float, float | None]]:
    """[(modality, informativeness, its upper end)] of the modalities the chosen candidate of a
    self-check ``record`` (:func:`summary`) kept although their own synthetic defects scored below
    ``UNINFORMATIVE_AUROC`` (not confidently enough to drop them)."""
    chosen = _chosen_candidate(record)
    if chosen is None:
        return []
    upper = chosen.get("informativeness_upper") or {}
    fusion = str(record.get("fusion", ""))
    return [(m, float(v), upper.get(m)) for m, v in (chosen.get("modality_informativeness") or {}).items()
            if v is not None and v < UNINFORMATIVE_AUROC and f"{m} uninformative" not in fusion]


def describe_weak_modalities(record: dict) -> str:
    """One line per modality of :func:`weak_kept_modalities` ("" when none): its branch told its own
    synthetic defects from the held-out good parts about as well as chance, yet it was kept. On the
    suite such a branch was noise on real defects as often as it was useful (docs/evaluation.md), so
    the line asks for a comparison on real defective parts rather than advising a choice."""
    modalities = list((_chosen_candidate(record) or {}).get("modality_informativeness") or {})
    lines = []
    for m, v, up in weak_kept_modalities(record):
        other = next((o for o in modalities if o != m), None)
        why = (f"not below {UNINFORMATIVE_AUROC:.2f} in {DROP_CONFIDENCE:.0%} of bootstrap resamples"
               + (f", upper end {up:.2f}" if up is not None else ""))
        lines.append(
            f"self-check: the {m} branch told its own synthetic defects from the held-out good parts at "
            f"I-AUROC {v:.2f} (0.50 = chance) and was kept ({why}); whether it helps on real defects is "
            "unknown"
            + (f": with defective samples, compare `lsfa eval` of this model with one fitted with "
               f"--modalities {other}" if other else ""))
    return "\n".join(lines)


def interval_text(estimate: dict, digits: int = 3) -> str:
    """" (90 % bootstrap interval 0.741–0.902)" for an estimate record that has one, else ""."""
    interval = estimate.get("image_auroc_interval")
    if not interval:
        return ""
    level = estimate.get("interval_level", INTERVAL_LEVEL)
    return f" ({100 * level:.0f} % bootstrap interval {interval[0]:.{digits}f}–{interval[1]:.{digits}f})"


def estimate_record(i_auroc: float, pro: float, n_defects: int, n_good: int,
                    interval: tuple[float, float] | None = None) -> dict:
    """The estimate as stored in a model file's self-check record (labelled as an estimate), with
    the I-AUROC's bootstrap interval (:func:`auroc_interval`) when given."""
    record = {"image_auroc": round(i_auroc, 4), "aupro_30": round(pro, 4),
              "what": f"estimate from {n_defects} synthetic defects (subtle to gross) on {n_good} held-out good "
                      "samples, not real defects"}
    if interval is not None and np.all(np.isfinite(interval)):
        record["image_auroc_interval"] = [round(interval[0], 4), round(interval[1], 4)]
        record["interval_level"] = INTERVAL_LEVEL
    return record


def summary(check: SelfCheck) -> dict:
    """JSON-able record for the model file and ``lsfa info``."""
    chosen, candidates = check.chosen, check.candidates
    return {
        "estimate": dict(check.estimate),  # a copy: the fit adds the held-out good parts flagged
        "variant": chosen.variant,
        **({} if check.adapted_wins is None else {"adapted_wins_share": round(check.adapted_wins, 3)}),
        "fusion": chosen.fusion_name,
        "candidates": [
            {"variant": c.variant, "fusion": c.fusion_name, "image_auroc": round(c.image_auroc, 4),
             "aupro_30": round(c.aupro, 4),
             "modality_informativeness": {m: (None if v is None else round(v, 4)) for m, v in c.informativeness.items()},
             "informativeness_upper": {m: (None if v is None else round(v, 4))
                                       for m, v in c.informativeness_upper.items()}}
            for c in candidates
        ],
    }


__all__ = ["run_self_check", "seeded_thresholds", "SeededThresholds", "seeded_how", "seeded_uncertain_until", "band_with_note", "held_out_good_flagged", "training_flagged_text", "describe_good_flagged", "outline_threshold", "summary", "shrink_uninformative", "modality_informativeness", "own_defect_scores", "informativeness_upper", "DROP_CONFIDENCE",
           "PSEUDO_PER_SAMPLE", "WIDE_PER_SAMPLE", "estimate_defects", "synthetic_estimate", "estimate_record", "auroc_interval", "interval_text", "weak_kept_modalities", "describe_weak_modalities", "INTERVAL_LEVEL", "ADAPT_MARGIN", "ADAPT_CONFIDENCE", "adapted_wins_share", "choose_variant", "UNINFORMATIVE_AUROC"]
