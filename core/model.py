"""A fitted inspection model: frozen extractors (+ optional LSFA adaptors), one memory bank
per modality, late fusion, thresholds. Scores samples (``core.model_io`` reads and writes ``.lsfa`` files)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from core.config import FitConfig
from core.data.sample import Sample
from core.errors import UserError
from core.progress import Progress, ensure
from core.results import SampleResult, Thresholds
from core.scoring_loop import ScoringLoop


@dataclass
class Loaded:
    """A sample ready for :meth:`Model.score_loaded` (from :meth:`Model.prepare_for_scoring`)."""

    original: Sample  # as read, xyz in metres
    prepared: Sample  # on the model grid
    seconds: float  # spent preprocessing (units, checks, preprocessing, resizing)
    tokens: dict = field(default_factory=dict)  # {modality: (1, grid*grid, dim)} features computed already
    timings: dict = field(default_factory=dict)  # their seconds, {"features_<modality>": s}


class Model(ScoringLoop):
    """Everything needed to score a sample. Build with :func:`core.pipeline.fit` or :func:`core.model_io.load_model`;
    save with :func:`core.model_io.save_model`."""

    def __init__(
        self,
        config: FitConfig,
        modalities: tuple[str, ...],
        extractors: dict,
        banks: dict,
        image_fusion,
        pixel_fusion,
        thresholds: Thresholds,
        display_range: tuple[float, float],
        adapter=None,
        info: dict | None = None,
    ):
        self.config = config
        self.modalities = tuple(modalities)
        self.extractors = extractors  # {modality: FeatureExtractor}
        self.banks = banks  # {modality: MemoryBank}
        self.image_fusion = image_fusion
        self.pixel_fusion = pixel_fusion
        self.thresholds = thresholds
        self.display_range = (float(display_range[0]), float(display_range[1]))
        self.adapter = adapter  # core.adaptation.Adapter or None
        self.info = dict(info or {})
        self.model_id = self.info.get("model_id", "unsaved")
        # unit of the clouds to score (a load option, not saved); None: the fitted unit
        # (info["xyz_units"]), see core.data.units.scoring_units
        self.xyz_units: str | None = None
        # the square around the part each image is cropped to (core.object_frame), or None: whole image
        self.object_frame = None
        # each patch's distance from the part's centre as a feature (core.position_channel), or None
        self.position = None
        # region of interest in original image pixels (core.roi; True = inspected), or None
        self.roi: np.ndarray | None = None
        self.roi_source = "region of interest"  # where it came from, for messages (a file name)

    @property
    def adapted(self) -> bool:
        """True when the model scores with LSFA-adapted features."""
        return self.adapter is not None

    @property
    def trained_on_point_clouds(self) -> bool:
        """Whether its training data had point clouds (it scores them, or crops around the part by
        them; a crop found by colour, ``rgb_object_crop``, is only made without them): what
        ``ensemble: auto`` resolved by (core.config.FitConfig.further_resolutions)."""
        if "xyz" in self.modalities:
            return True
        return self.object_frame is not None and not self.config.rgb_object_crop

    # ----------------------------------------------------------------- scoring
    def check_sample(self, sample: Sample) -> None:
        """UserError if the sample lacks a modality this model needs."""
        missing = [m for m in self.modalities if m not in sample.modalities]
        if missing:
            names = {"rgb": "RGB image", "xyz": "point cloud (xyz)"}
            raise UserError(
                f"{sample.source()}: this model needs {' and '.join('an ' + names[m] if m == 'rgb' else 'a ' + names[m] for m in self.modalities)}, "
                f"but the sample has no {' or '.join(names[m] for m in missing)}"
            )

    def set_roi(self, roi: np.ndarray | None, source: str = "region of interest") -> None:
        """Inspect only ``roi`` (H×W, original image pixels, non-zero = inspect; None: everything);
        UserError naming ``source`` when it is not a usable mask (core.roi.check_roi)."""
        from core.roi import check_roi

        self.roi = None if roi is None else check_roi(roi, source)
        self.roi_source = source

    def prepare(self, sample: Sample) -> Sample:
        """The sample (its modalities checked, this model's ROI attached) on the model grid."""
        return self.prepare_sizes(sample, (self.config.image_size,))[0]

    def prepare_sizes(self, sample: Sample, sizes) -> list[Sample]:
        """:meth:`prepare` on several grid sizes with this model's preprocessing, crop around the
        part and ROI, which run once (an ensemble's members share them)."""
        from core.prepare import prepare_sample_sizes
        from core.roi import attach_roi

        self.check_sample(sample)
        sample = attach_roi(sample, self.roi, self.roi_source)
        return prepare_sample_sizes(sample, sizes, self.config.preprocess, self.config.cache_path(),
                                    self.object_frame)

    def scored_tokens(self, prepared: list[Sample], batch_size: int, timings: dict | None = None,
                      progress: Progress | None = None, stage: str = "Extracting features",
                      features: dict | None = None):
        """({modality: (B, grid*grid, dim)} patch features as the banks see them (adapted when
        the model has adaptors, with the position channel when it has one), {modality:
        (B, grid*grid) bool} cells that are scored).
        ``features``: {modality: (B, grid*grid, dim)} frozen features of these samples extracted
        already (those extractors are not run again)."""
        from core.tokens import as_banked, extract_tokens, foreground, scoring_regions

        g = self.config.grid
        done = features or {}
        rest = {m: ex for m, ex in self.extractors.items() if m not in done}
        tokens = {**extract_tokens(rest, prepared, g, batch_size, progress, stage, timings), **done}
        fg = foreground(prepared, g)
        t1 = time.perf_counter()
        tokens = as_banked(tokens, fg, self.adapter, self.position, g)
        if timings is not None:  # the position channel's few ms count with the adaptors'
            timings["adaptation"] = timings.get("adaptation", 0.0) + (time.perf_counter() - t1)
        return tokens, scoring_regions(fg, g, self.modalities)

    def choose_search(self, calibration: list[Sample], progress: Progress | None = None,
                      features: dict | None = None) -> dict:
        """Choose each bank's nearest-neighbour search (exact or IVF-Flat, core.scoring.ann) by
        checking it on the held-out good ``calibration`` samples' patches; {modality: SearchChoice}.
        ``config.search == "exact"`` keeps exact search without checking. ``features``:
        {modality: (B, grid*grid, dim)} frozen features of ``calibration`` extracted already
        (see :meth:`scored_tokens`)."""
        from core.scoring import ann

        out = {}
        large = [m for m in self.modalities if self.banks[m].size >= ann.ANN_MIN_BANK]
        if self.config.search == "exact" or not large or not calibration:
            why = ("--search exact" if self.config.search == "exact"
                   else "no held-out good samples to check approximate search on" if large and not calibration
                   else f"bank below {ann.ANN_MIN_BANK} patches")
            for m in self.modalities:
                self.banks[m].use_search(ann.SearchChoice(reason=why))
                out[m] = self.banks[m].search
            return out
        p = ensure(progress)
        n = -(-ann.MAX_CHECK_QUERIES // self.config.grid**2)  # samples with enough patches
        calibration = calibration[:n]
        done = None if features is None else {m: f[:n] for m, f in features.items()}
        tokens, regions = self.scored_tokens(calibration, self.config.batch_size, progress=p,
                                             stage="Checking approximate search", features=done)
        for m in self.modalities:
            queries = [tokens[m][b][regions[m][b]] for b in range(len(calibration))]
            out[m] = self.banks[m].choose_search(queries, self.config.seed)
        return out

    def modality_scores(self, prepared: list[Sample], timings: dict | None = None, features: dict | None = None,
                        leave_out=None):
        """Per-modality raw scores of prepared samples.

        Returns ({modality: (B,) image scores}, {modality: (B,S,S) maps of patch distance}): raw
        kNN distance, or relative to the bank's spread there (``config.patch_distance``).
        A sample's region of interest (``Sample.roi`` on the grid) restricts its image scores to
        the patches of the cells it touches; the maps stay whole (the fusion's units do not
        depend on the ROI), :meth:`fuse` masks the fused map. ``features``: see :meth:`scored_tokens`.
        ``leave_out``: for training samples, each one's number in the banks' ``owners``: it is
        scored without its own bank rows (MemoryBank.nearest_excluding, with the bank's own search).
        """
        from core.roi import roi_cells
        from core.scoring.maps import upsample_and_blur
        from core.scoring.patchcore import reweighted_image_score

        cfg = self.config
        g, size = cfg.grid, cfg.image_size
        tokens, regions = self.scored_tokens(prepared, len(prepared) or 1, timings, features=features)
        scores, maps = {}, {}
        knn_s = map_s = 0.0
        for m in self.modalities:
            bank = self.banks[m]
            tk = tokens[m]
            scores[m] = np.zeros(len(prepared), np.float32)
            maps[m] = np.zeros((len(prepared), size, size), np.float32)
            for b in range(len(prepared)):
                ta = time.perf_counter()
                q = np.ascontiguousarray(tk[b][regions[m][b]])
                patch = np.zeros(g * g, np.float32)
                roi = getattr(prepared[b], "roi", None)
                if len(q):
                    dist, idx = bank.nearest(q) if leave_out is None else bank.nearest_excluding(q, leave_out[b])
                    if cfg.patch_distance == "relative":
                        dist = bank.relative(dist, idx)
                    patch[regions[m][b]] = dist
                    keep = slice(None) if roi is None else roi_cells(roi, g)[regions[m][b]]
                    if roi is None or keep.any():  # else no scored cell is inspected: score 0
                        if cfg.image_score == "reweighted":
                            scores[m][b] = reweighted_image_score(q[keep], dist[keep], idx[keep], bank,
                                                                 relative=cfg.patch_distance == "relative")
                        else:
                            scores[m][b] = float(dist[keep].max())
                tb = time.perf_counter()
                maps[m][b] = upsample_and_blur(patch.reshape(g, g), size=size, sigma=cfg.blur_sigma)
                knn_s += tb - ta
                map_s += time.perf_counter() - tb
        if timings is not None:
            timings["knn"] = timings.get("knn", 0.0) + knn_s
            timings["maps"] = timings.get("maps", 0.0) + map_s
        return scores, maps

    def modality_maps_batched(self, samples: list[Sample], progress=None, stage: str = "Scoring",
                              features: dict | None = None, leave_out=None):
        """({modality: (B,) image scores}, {modality: (B,S,S) patch-distance maps}) of prepared
        samples, in batches of ``config.batch_size`` with progress and cancellation.
        ``features``: {modality: (B, grid*grid, dim)} frozen features of all ``samples``
        extracted already (see :meth:`scored_tokens`); ``leave_out``: see :meth:`modality_scores`."""
        p = ensure(progress)
        bs = self.config.batch_size
        scores: dict[str, list] = {m: [] for m in self.modalities}
        maps: dict[str, list] = {m: [] for m in self.modalities}
        for start in range(0, len(samples), bs):
            p.update(stage, start, len(samples))
            done = None if features is None else {m: f[start:start + bs] for m, f in features.items()}
            out = None if leave_out is None else leave_out[start:start + bs]
            sc, mp = self.modality_scores(samples[start : start + bs], features=done, leave_out=out)
            for m in self.modalities:
                scores[m].append(sc[m])
                maps[m].append(mp[m])
        p.update(stage, len(samples), len(samples))
        s = self.config.image_size
        return (
            {m: np.concatenate(v) if v else np.zeros(0, np.float32) for m, v in scores.items()},
            {m: np.concatenate(v) if v else np.zeros((0, s, s), np.float32) for m, v in maps.items()},
        )

    def fuse_maps(self, maps: dict, fusion=None, roi: np.ndarray | None = None,
                  image_units=None) -> tuple[np.ndarray, np.ndarray]:
        """(image scores (B,), fused maps (B,S,S)) from per-modality raw maps, with the model's
        pixel fusion or ``fusion``. The image score follows ``config.fused_image_score``: with
        "modality_topk" and a tail fusion, the sum over modalities of each modality's top-k
        mean in good-tail units; with "modality_units" (the default) and two or more modalities,
        each modality's top-k mean put in the units of the good parts' top-k means (the held-out and
        the left-out training parts) by the model's image fusion or ``image_units``
        (:meth:`fit_image_units`) and fused (summed, or the largest: ``config.units_fusion``); otherwise map-based (top-k
        mean, else the map maximum). ``roi``: (B,S,S) bool regions of interest on the grid
        (core.roi.roi_stack): ignored pixels score 0 before the image score is taken. A modality
        that ``fusion``'s weights drop leaves the image score, and the map only as
        :meth:`map_fusion` says."""
        from core.roi import apply_roi

        fusion = fusion or self.pixel_fusion
        mods = self.modalities
        b, s, _ = maps[mods[0]].shape
        stacked = np.stack([maps[m].reshape(-1) for m in mods], axis=1)
        map_fusion = self.map_fusion(fusion)
        if self.config.fused_image_score == "modality_topk" and fusion.mode.startswith("tail_"):
            shown = np.asarray(map_fusion.tail_terms(stacked), np.float32)
            # the weighted terms are the map's times the weights (weights ≥ 0 commute with the clip at 0)
            terms = shown if map_fusion is fusion else shown * fusion.weights.astype(np.float32)
            pix = shown.max(axis=1) if fusion.mode == "tail_max" else shown.sum(axis=1)
            pix = apply_roi(pix.reshape(b, s, s), roi)
            own = [apply_roi(terms[:, i].reshape(b, s, s), roi) for i in range(len(mods))]
            return np.sum([self._topk_mean(t) for t in own], axis=0).astype(np.float32), pix
        pix = apply_roi(np.asarray(map_fusion.transform(stacked), np.float32).reshape(b, s, s), roi)
        if self.units_image_score:
            units = (image_units or self.image_fusion).weighted_as(fusion)
            return np.asarray(units.transform(self.modality_topk_scores(maps, roi)), np.float32), pix
        return self._map_image_scores(pix), pix

    def map_fusion(self, fusion):
        """The fusion of the anomaly map: ``fusion`` without its per-modality weights when
        ``config.dropped_modality_in_map`` and the image score is not a statistic of the map (a
        modality the self-check dropped then leaves the image score only), else ``fusion``.
        Measured: docs/evaluation.md, "a dropped modality stays in the map"."""
        if (self.config.dropped_modality_in_map and fusion.weights is not None
                and fusion.mode.startswith("tail_") and not self.map_based_image_score):
            return fusion.with_weights(np.ones(len(self.modalities)))
        return fusion

    @property
    def units_image_score(self) -> bool:
        """True when the fused image score is "modality_units" with two or more modalities (with
        one, "modality_units" is the map's top-k mean, as "map_topk")."""
        return self.config.fused_image_score == "modality_units" and len(self.modalities) > 1

    @property
    def map_based_image_score(self) -> bool:
        """True when the image score is a statistic of the fused map (its top-k mean or maximum),
        so a part at or above the image threshold has a pixel at or above it."""
        score = self.config.fused_image_score
        return score in ("map_topk", "map_max") or (score == "modality_units" and not self.units_image_score)

    def modality_topk_scores(self, maps: dict, roi: np.ndarray | None = None) -> np.ndarray:
        """(B, modalities) float32: each modality's top-k mean (patch distance) inside ``roi``."""
        from core.roi import apply_roi

        b = len(maps[self.modalities[0]])
        if not b:
            return np.zeros((0, len(self.modalities)), np.float32)
        return np.stack([self._topk_mean(apply_roi(maps[m], roi)) for m in self.modalities], axis=1).astype(np.float32)

    def fit_image_units(self, maps: dict, roi: np.ndarray | None = None, more_topk: np.ndarray | None = None):
        """The image fusion of "modality_units": a LateFusion of ``config.fusion``'s mode fitted on
        the per-modality top-k means (:meth:`modality_topk_scores`) of held-out good samples' raw
        ``maps``, so that one unit is how far this product's good parts reach on each modality.
        ``more_topk``: (n, modalities) top-k means of further good parts pooled with them (training
        parts scored leave-one-out, core.leave_one_out)."""
        from core.scoring.fusion import LateFusion

        good = self.modality_topk_scores(maps, roi)
        if more_topk is not None and len(more_topk):
            good = np.concatenate([good, np.asarray(more_topk, np.float32)])
        return LateFusion(self.units_fusion_mode).fit(good)

    @property
    def units_fusion_mode(self) -> str:
        """The LateFusion mode of the units image score: ``config.fusion``, or with
        ``config.units_fusion`` "max" its maximum form (tail_max for the tail modes, else max)."""
        mode = self.config.fusion
        if self.config.units_fusion == "max":
            return "tail_max" if mode.startswith("tail_") else "max"
        return mode

    def _map_image_scores(self, pix: np.ndarray) -> np.ndarray:
        """(B,) image scores of (B,S,S) maps: the mean of the top-k pixels ("modality_topk",
        "map_topk"), else the maximum."""
        if self.config.fused_image_score in ("modality_units", "modality_topk", "map_topk"):
            return self._topk_mean(pix)
        b = pix.shape[0]
        return pix.reshape(b, -1).max(axis=1) if b else np.zeros(0, np.float32)

    def _topk_mean(self, pix: np.ndarray) -> np.ndarray:
        """(B,) mean of the top-k pixels of (B,S,S) maps (k = ``config.topk_pixels()``), in the
        maps' float dtype. Only the values above a map's minimum are partitioned: fused good-tail
        maps are mostly 0, and numpy's partition of a row full of equal values is ~50x slower
        (bottle self-check: 0.19 s of 0.8 s)."""
        b, s, _ = pix.shape
        if not b:
            return np.zeros(0, np.float32)
        k = min(self.config.topk_pixels(), s * s)
        flat = pix.reshape(b, -1)
        out = np.empty(b, flat.dtype if flat.dtype.kind == "f" else np.float64)
        for i, (row, lo) in enumerate(zip(flat, flat.min(axis=1))):
            above = row[row > lo]
            n = len(above)
            top = (np.partition(above, n - k)[n - k:] if n >= k
                   else np.concatenate([above, np.full(k - n, lo, row.dtype)]))
            out[i] = top.mean()
        return out

    def fuse(self, scores: dict, maps: dict, roi: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fused image scores (B,) and maps (B,S,S) in fused units; ``roi`` as in :meth:`fuse_maps`."""
        img, pix = self.fuse_maps(maps, roi=roi)
        if self.config.fused_image_score == "late":
            img = self.image_fusion.transform(np.stack([scores[m] for m in self.modalities], axis=1))
        return np.asarray(img, np.float32), pix

    def score_prepared(self, prepared: list[Sample], features: dict | None = None) -> list[SampleResult]:
        """Score samples already on the model grid (see :meth:`prepare`; a sample's ROI applies:
        its fused and per-modality maps are 0 outside it). ``features``: see :meth:`scored_tokens`."""
        from core.roi import apply_roi, roi_stack

        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        scores, maps = self.modality_scores(prepared, timings, features)
        tf = time.perf_counter()
        fused_img, fused_map = self.fuse(scores, maps, roi_stack(prepared))
        timings["fusion"] = time.perf_counter() - tf
        per = (time.perf_counter() - t0) / max(len(prepared), 1)
        per_timings = {k: v / max(len(prepared), 1) for k, v in timings.items()}
        out = []
        for i, s in enumerate(prepared):
            out.append(
                SampleResult(
                    name=s.name,
                    label=s.label,
                    image_score=float(fused_img[i]),
                    anomaly_map=fused_map[i],
                    modality_scores={m: float(scores[m][i]) for m in self.modalities},
                    modality_maps={m: apply_roi(maps[m][i], s.roi) for m in self.modalities},
                    rgb=s.rgb,
                    xyz=s.xyz,
                    mask=s.mask,
                    roi=s.roi,
                    category=s.category,
                    split=s.split,
                    source=s.source(),
                    seconds=per,
                    timings=dict(per_timings),
                    grid=s.meta.get("grid"),
                )
            )
        return out

    def prepare_for_scoring(self, sample: Sample, features: tuple[str, ...] = ()) -> Loaded:
        """The loaded sample brought to the model grid for :meth:`score_loaded`, with the patch
        features of the ``features`` modalities extracted too (see :meth:`features_ahead`).
        UserError when its units, point spacing or modalities do not fit."""
        t0 = time.perf_counter()
        sample = self.in_scoring_units(sample)
        return self.loaded(sample, self.prepare(sample), time.perf_counter() - t0, features)

    def in_scoring_units(self, sample: Sample) -> Sample:
        """The loaded sample's cloud in metres (from the scoring unit), its point spacing checked
        against the training clouds'; UserError when it does not fit."""
        from core.data.units import apply_units, check_sample_spacing, scoring_units

        if "xyz" in self.modalities:
            units = scoring_units(self)
            sample = apply_units(sample, units)
            check_sample_spacing(sample, self.info.get("xyz_spacing_m"), units)
        return sample

    def loaded(self, sample: Sample, prepared: Sample, seconds: float, features: tuple[str, ...] = ()) -> Loaded:
        """:class:`Loaded` of ``prepared`` (on this model's grid; ``seconds`` spent getting it) with
        the patch features of the ``features`` modalities extracted."""
        from core.tokens import extract_tokens

        loaded = Loaded(sample, prepared, seconds)
        if features:
            extractors = {m: self.extractors[m] for m in features}
            loaded.tokens = extract_tokens(extractors, [loaded.prepared], self.config.grid, 1, timings=loaded.timings)
        return loaded

    def features_ahead(self) -> tuple[str, ...]:
        """Modalities whose features a background thread extracts with the preprocessing while
        the previous sample is scored (core.prefetch): RGB when the model also has xyz. Then
        both threads have about half the work (demo-301 puck: reading, preprocessing and RGB
        features against 3D features, search and fusion)."""
        return ("rgb",) if set(self.modalities) == {"rgb", "xyz"} else ()

    def score_loaded(self, loaded: Loaded, keep_original: bool = False) -> SampleResult:
        """Score the output of :meth:`prepare_for_scoring` (its seconds count in the result's)."""
        result = self.score_prepared([loaded.prepared], loaded.tokens or None)[0]
        result.timings.update(loaded.timings)
        result.timings["preprocess"] = loaded.seconds
        result.seconds += loaded.seconds + sum(loaded.timings.values())
        if keep_original:
            result.original = loaded.original
        return result


__all__ = ["Loaded", "Model"]
