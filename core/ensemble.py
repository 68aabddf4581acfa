"""Models of one category at several resolutions, scored as one (the ``accurate`` preset).

Each member is a complete single-resolution model (:class:`core.model.Model`, fitted by
:func:`core.fitting.fit_model` with its own self-check, adaptors and fusion). For a sample:

- image score: the largest of the members' image scores, each in units of its own held-out good
  parts, u = (s - median) / (q99.9 - median) of that member's held-out good image scores
  (``info["calibration_scores"]``): 1 is as far as this product's good parts reach on that member;
- anomaly map: the largest of the members' fused maps (good-tail units, core.scoring.fusion) on
  the finest member's grid, coarser maps resized bilinearly;
- per-modality scores and maps, and the sample as drawn: the finest member's.

The thresholds, the colour range and the self-check estimate are the ensemble's own, seeded at
fit time on held-out good samples and synthetic defects scored by every member
(:func:`core.ensemble_fit.calibrate_ensemble`). Measured in docs/evaluation.md, "the two-resolution ensemble".
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from core.config import FitConfig
from core.data.sample import Sample
from core.model import Loaded, Model
from core.results import SampleResult, Thresholds
from core.scoring_loop import ScoringLoop


@dataclass
class EnsembleLoaded:
    """A sample brought to every member's grid (from :meth:`EnsembleModel.prepare_for_scoring`)."""

    members: list[Loaded]


def member_units(model: Model, scores) -> np.ndarray:
    """A member's fused image scores in units of its held-out good parts:
    (s - median) / (q99.9 - median) of its calibration image scores."""
    cal = model.info.get("calibration_scores") or {}
    med, top = float(cal.get("median", 0.0)), float(cal.get("q999", 1.0))
    spread = max(top - med, 1e-6 * max(1.0, abs(med)))
    return (np.asarray(scores, np.float64) - med) / spread


def on_member_threads(calls: list) -> list:
    """The results of the members' scoring ``calls``, side by side on the cores
    (:func:`core.cpu.side_by_side`), each with torch on ``ENGINE_TORCH_THREADS`` threads in its own
    thread and BLAS on one thread, set here before the side threads start (a limit that a side
    thread sets itself did not reach that thread's own products: its maps differed from one after
    the other by 1e-7). The same bits as one after the other (tests/test_ensemble.py), in about the
    slower member's time on two cores."""
    from core.cpu import ENGINE_TORCH_THREADS, side_by_side, single_thread_blas
    from core.scoring._threads import torch_threads_at_most

    def pinned(call):
        def run():
            with torch_threads_at_most(ENGINE_TORCH_THREADS):
                return call()
        return run

    with single_thread_blas():
        return side_by_side([pinned(c) for c in calls])


def to_grid(sample: Sample, size: int) -> Sample:
    """A sample on one model grid resized to ``size``×``size`` (RGB bicubic, xyz and masks
    nearest), its grid map following."""
    from core.data.resize import resize_sample

    if sample.shape == (size, size):
        return sample
    out = resize_sample(sample, size)
    grid = sample.meta.get("grid")
    if grid is not None:
        out.meta["grid"] = dataclasses.replace(grid, size=size)
    return out


def resize_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """(B, S, S) maps resized bilinearly to (B, size, size) (values kept, no blur)."""
    from core.scoring.maps import upsample_and_blur_batch

    maps = np.asarray(maps, np.float32)
    if maps.shape[-1] == size:
        return maps
    return upsample_and_blur_batch(maps, size, 0.0)


class EnsembleModel(ScoringLoop):
    """Member models, coarse to fine (the last one is the finest), with the ensemble's thresholds
    (image: good-part units; pixel: fused good-tail units) and colour range."""

    def __init__(self, config: FitConfig, members: list[Model], thresholds: Thresholds,
                 display_range: tuple[float, float], info: dict | None = None):
        self.config = config
        self.members = list(members)
        self.thresholds = thresholds
        self.display_range = (float(display_range[0]), float(display_range[1]))
        self.info = dict(info or {})
        self.model_id = self.info.get("model_id", "unsaved")
        self.roi: np.ndarray | None = None
        self.roi_source = "region of interest"

    # ----------------------------------------------------------------- what callers read
    @property
    def modalities(self) -> tuple[str, ...]:
        return self.members[0].modalities

    @property
    def adapted(self) -> bool:
        """True when any member kept its LSFA adaptors."""
        return any(m.adapted for m in self.members)

    @property
    def trained_on_point_clouds(self) -> bool:
        return self.members[0].trained_on_point_clouds

    @property
    def xyz_units(self) -> str | None:
        return self.members[0].xyz_units

    @xyz_units.setter
    def xyz_units(self, value: str | None) -> None:
        for m in self.members:
            m.xyz_units = value

    def check_sample(self, sample: Sample) -> None:
        self.members[0].check_sample(sample)

    def set_roi(self, roi: np.ndarray | None, source: str = "region of interest") -> None:
        for m in self.members:
            m.set_roi(roi, source)
        self.roi, self.roi_source = self.members[0].roi, source

    # ----------------------------------------------------------------- scoring
    def features_ahead(self) -> tuple[str, ...]:
        return self.members[0].features_ahead()

    def prepare_for_scoring(self, sample: Sample, features: tuple[str, ...] = ()) -> EnsembleLoaded:
        """The sample on every member's grid. Units, point spacing, preprocessing and ROI are the
        same for all members (one config but the resolution, one ROI), so they run once, in the
        first member; the time they took counts in its result."""
        t0 = time.perf_counter()
        first = self.members[0]
        sample = first.in_scoring_units(sample)
        grids = first.prepare_sizes(sample, [m.config.image_size for m in self.members])
        seconds = time.perf_counter() - t0
        return EnsembleLoaded([m.loaded(sample, grid, seconds if i == 0 else 0.0, features)
                               for i, (m, grid) in enumerate(zip(self.members, grids))])

    def score_loaded(self, loaded: EnsembleLoaded, keep_original: bool = False) -> SampleResult:
        """The members' results combined. The members score side by side (:func:`on_member_threads`),
        so the result's seconds are that step's wall time plus the sample's preparation."""
        t0 = time.perf_counter()
        results = on_member_threads([lambda m=m, one=one: m.score_loaded(one, keep_original)
                                     for m, one in zip(self.members, loaded.members)])
        wall = time.perf_counter() - t0
        combined = self.combine(results)
        combined.seconds = wall + sum(one.seconds + sum(one.timings.values()) for one in loaded.members)
        return combined

    def score_prepared_members(self, prepared: list[list[Sample]]) -> list[SampleResult]:
        """Combined results of samples already on each member's grid (``prepared[i]`` on member i's)."""
        per_member = on_member_threads([lambda m=m, p=p: m.score_prepared(p) for m, p in zip(self.members, prepared)])
        return [self.combine(list(rs)) for rs in zip(*per_member)]

    def combine(self, results: list[SampleResult]) -> SampleResult:
        """One result from the members' results of the same sample (see the module docstring)."""
        from core.roi import apply_roi

        fine = results[-1]
        size = fine.anomaly_map.shape[0]
        amap = np.max([resize_maps(r.anomaly_map[None], size)[0] for r in results], axis=0)
        score = max(float(member_units(m, r.image_score)) for m, r in zip(self.members, results))
        timings: dict[str, float] = {}
        for r in results:
            for k, v in r.timings.items():
                timings[k] = timings.get(k, 0.0) + v
        return dataclasses.replace(fine, image_score=score, anomaly_map=apply_roi(amap, fine.roi).astype(np.float32),
                                   seconds=sum(r.seconds for r in results), timings=timings)

    def describe_members(self) -> str:
        return " + ".join(f"{m.config.image_size} px" for m in self.members)


__all__ = ["EnsembleModel", "EnsembleLoaded", "member_units", "on_member_threads", "to_grid", "resize_maps"]
