"""Engine entry points shared by the CLI, batch runs and the GUI: fit, evaluate, score.

Every function reports progress through :class:`core.progress.Progress` and stops with
:class:`core.progress.Cancelled` within one step when the user cancels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import AUTO_ENSEMBLE, FitConfig
from core.ensemble import EnsembleModel
from core.ensemble_fit import fit_ensemble
from core.fitting import (  # noqa: F401  (re-exported: the engine's one import point)
    CALIBRATION_SHARE, MIN_CALIBRATION, MIN_TRAIN_FOR_HOLDOUT, choose_modalities, create_extractors,
    fit_model, load_prepared, split_calibration,
)
from core.model import Model
from core.model_io import load_model
from core.progress import Progress
from core.results import SampleResult, Thresholds


def fit(
    dataset_root: str | Path,
    category: str,
    config: FitConfig | None = None,
    progress: Progress | None = None,
    xyz_units: str | None = None,
    roi: np.ndarray | None = None,
    roi_source: str = "region of interest",
) -> Model | EnsembleModel:
    """Fit a model on ``train/good`` of one category and calibrate it on held-out good samples
    (:func:`core.fitting.fit_model`); with further resolutions (``config.ensemble``: the accurate
    preset, or the default ``auto`` on data without point clouds) one model per resolution,
    combined (:func:`core.ensemble_fit.fit_ensemble`). Arguments as :func:`core.fitting.fit_model`.
    torch runs on :data:`core.cpu.ENGINE_TORCH_THREADS` threads meanwhile (the same model from the
    same data whatever ran before in the process)."""
    from core.cpu import ENGINE_TORCH_THREADS
    from core.scoring._threads import torch_threads_at_most

    config = config or FitConfig()
    point_clouds = config.ensemble != AUTO_ENSEMBLE or training_has_point_clouds(dataset_root, category)
    with torch_threads_at_most(ENGINE_TORCH_THREADS):
        if config.further_resolutions(point_clouds):
            return fit_ensemble(dataset_root, category, config, progress, xyz_units, roi, roi_source, point_clouds)
        return fit_model(dataset_root, category, config, progress, xyz_units, roi, roi_source)


def training_has_point_clouds(dataset_root: str | Path, category: str) -> bool:
    """Whether any ``train/good`` sample of the category has a point cloud (what ``ensemble: auto``
    resolves by); DataError for a missing or unreadable dataset, as the fit would give."""
    from core.data.dataset import open_dataset

    return any("xyz" in r.modalities for r in open_dataset(dataset_root).samples(category, "train"))


@dataclass
class EvalReport:
    """Metrics of one category's test split. Metrics are None when not defined."""

    category: str
    n_good: int
    n_defect: int
    image_auroc: float | None
    pixel_auroc: float | None
    aupro_30: float | None
    seconds_per_sample: float
    modality_image_auroc: dict[str, float | None] = field(default_factory=dict)
    defect_type_image_auroc: dict[str, float | None] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # median seconds per stage
    results: list[SampleResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "category": self.category,
            "image_auroc": self.image_auroc,
            "pixel_auroc": self.pixel_auroc,
            "aupro_30": self.aupro_30,
            "n_good": self.n_good,
            "n_defect": self.n_defect,
            "seconds_per_sample": self.seconds_per_sample,
            "modality_image_auroc": self.modality_image_auroc,
            "defect_type_image_auroc": self.defect_type_image_auroc,
            "timings": self.timings,
        }


def metrics_for(results: list[SampleResult], modalities=()) -> dict:
    """I-AUROC, P-AUROC, AUPRO@0.3 (100 thresholds; on the grid of the whole padded image, see
    :meth:`core.grid_map.GridMap.to_whole_frame`) and per-modality/per-type I-AUROC."""
    from core.metrics import aupro, image_auroc, pixel_auroc

    labelled = [r for r in results if r.label is not None]
    labels = np.array([r.is_defect for r in labelled], dtype=bool)
    scores = np.array([r.image_score for r in labelled], dtype=np.float64)
    with_masks = [r for r in labelled if r.mask is not None]
    frames = [r.on_whole_frame() for r in with_masks]  # the same pixels with or without a crop
    masks = [mask for _, mask in frames]
    maps = [amap for amap, _ in frames]
    out = {
        "image_auroc": image_auroc(labels, scores) if len(labelled) else None,
        "pixel_auroc": pixel_auroc(masks, maps) if with_masks else None,
        "aupro_30": aupro(masks, maps, fpr_limit=0.3, num_thresholds=100) if with_masks else None,
        "modality_image_auroc": {
            m: image_auroc(labels, np.array([r.modality_scores[m] for r in labelled])) for m in modalities
        },
        "defect_type_image_auroc": {},
    }
    good = [r.image_score for r in labelled if r.label == "good"]
    for t in sorted({r.label for r in labelled if r.label != "good"}):
        bad = [r.image_score for r in labelled if r.label == t]
        lab = np.r_[np.zeros(len(good), bool), np.ones(len(bad), bool)]
        out["defect_type_image_auroc"][t] = image_auroc(lab, np.r_[good, bad]) if good else None
    return out


def evaluate(
    model: Model | EnsembleModel,
    dataset_root: str | Path,
    category: str,
    progress: Progress | None = None,
    keep_results: bool = True,
) -> EvalReport:
    """Score ``test/*`` of a category and compute the metrics at the model grid."""
    from core.data.dataset import open_dataset

    ds = open_dataset(dataset_root)
    refs = ds.samples(category, "test")
    results = list(model.score_refs(refs, progress, "Scoring test samples"))
    m = metrics_for(results, model.modalities)
    stages = sorted({k for r in results for k in r.timings})
    timings = {k: float(np.median([r.timings.get(k, 0.0) for r in results])) for k in stages}
    return EvalReport(
        category=category,
        n_good=sum(r.label == "good" for r in results),
        n_defect=sum(r.is_defect is True for r in results),
        image_auroc=m["image_auroc"],
        pixel_auroc=m["pixel_auroc"],
        aupro_30=m["aupro_30"],
        seconds_per_sample=float(np.mean([r.seconds for r in results])) if results else 0.0,
        modality_image_auroc=m["modality_image_auroc"],
        defect_type_image_auroc=m["defect_type_image_auroc"],
        timings=timings,
        results=results if keep_results else [],
    )


__all__ = ["FitConfig", "fit", "evaluate", "EvalReport", "Model", "load_model", "SampleResult", "Thresholds"]
