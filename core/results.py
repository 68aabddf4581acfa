"""Per-sample scoring results and the model's decision thresholds (raw score units)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.data.sample import Sample, label_is_defect, valid_points
from core.grid_map import GridMap
from core.regions import Region, find_regions, largest_area_px
from core.thresholds import check_min_defect_area, verdict


@dataclass
class Thresholds:
    """Decision thresholds in raw fused-score units. NG iff score >= threshold."""

    image: float  # part verdict: image score >= image -> NG
    pixel: float  # defect region: map value >= pixel -> defect pixel
    source: str = ""  # how they were chosen ("validation quantile", "best F1", "user")
    # optional uncertain band: image <= score < uncertain_until -> UNCERTAIN (core.thresholds.verdict)
    uncertain_until: float | None = None
    # optional: a part whose largest defect region is smaller than this (original pixels) stays OK
    min_defect_area: int = 0
    # a self-check-seeded image threshold: (low, high) raw units between which 80 % of its bootstrap
    # resamples' best-F1 cuts fell (core.self_check.seeded_thresholds); None otherwise
    image_spread: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        d = {"image": float(self.image), "pixel": float(self.pixel), "source": self.source}
        if self.uncertain_until is not None:
            d["uncertain_until"] = float(self.uncertain_until)
        if self.min_defect_area:
            d["min_defect_area"] = int(self.min_defect_area)
        if self.image_spread is not None:
            d["image_spread"] = [float(v) for v in self.image_spread]
        return d

    def describe(self) -> str:
        """One line for the CLI: the thresholds, the uncertain band and how they were chosen."""
        text = f"image {self.image:.4g}, pixel {self.pixel:.4g}"
        if self.uncertain_until is not None and self.uncertain_until > self.image:
            text += f"; UNCERTAIN from {self.image:.4g} up to {self.uncertain_until:.4g}, NG at or above it"
        if self.min_defect_area:
            text += f"; minimum defect area {self.min_defect_area} px"
        return text + (f" ({self.source})" if self.source else "")

    @classmethod
    def from_dict(cls, d: dict) -> "Thresholds":
        upper = d.get("uncertain_until")
        spread = d.get("image_spread")
        return cls(float(d["image"]), float(d["pixel"]), str(d.get("source", "")),
                   None if upper is None else float(upper), check_min_defect_area(d.get("min_defect_area", 0)),
                   None if spread is None else (float(spread[0]), float(spread[1])))


@dataclass
class SampleResult:
    """Scores of one sample on the model grid (S×S pixels). ``grid`` places that grid on the
    original image (None: the arrays are at original resolution); regions, defect pixels and the
    minimum defect area are counted in original pixels."""

    name: str
    label: str | None  # "good" / defect type / None when unknown
    image_score: float  # raw fused image score (higher = more anomalous)
    anomaly_map: np.ndarray  # S×S float32 raw fused pixel scores
    modality_scores: dict[str, float] = field(default_factory=dict)  # raw per-modality image scores
    modality_maps: dict[str, np.ndarray] = field(default_factory=dict)  # S×S raw kNN distances
    rgb: np.ndarray | None = None  # S×S×3 uint8 (preprocessed, model grid)
    xyz: np.ndarray | None = None  # S×S×3 float32 metres, 0 = invalid
    mask: np.ndarray | None = None  # S×S bool ground truth, None when unknown
    category: str = ""
    split: str = ""
    source: str = ""  # file the sample came from
    seconds: float = 0.0  # wall time to score this sample (load excluded)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    roi: np.ndarray | None = None  # S×S bool region of interest it was scored with (None: all inspected)
    grid: GridMap | None = None  # model grid -> original image (core.grid_map); None = identity
    # the sample as loaded (original resolution), kept only when asked (Model.score(keep_original=True))
    original: Sample | None = field(default=None, repr=False, compare=False)

    @property
    def valid(self) -> np.ndarray | None:
        """S×S bool of measured 3D points, None without xyz."""
        return None if self.xyz is None else valid_points(self.xyz)

    @property
    def is_defect(self) -> bool | None:
        return label_is_defect(self.label)

    def verdict(self, thresholds: Thresholds) -> str:
        """OK / NG / UNCERTAIN at ``thresholds`` (core.thresholds.verdict; the region size is
        measured only when a minimum defect area is set)."""
        largest = (largest_area_px(self.anomaly_map, thresholds.pixel, self.grid)
                   if thresholds.min_defect_area else None)
        return verdict(self.image_score, thresholds.image, thresholds.uncertain_until, largest,
                       thresholds.min_defect_area)

    def regions(self, pixel_threshold: float | None) -> list[Region]:
        """The defect regions at a raw pixel threshold, largest first, in original pixels (mm²
        areas when xyz is known)."""
        return find_regions(self.anomaly_map, pixel_threshold, self.xyz, self.grid)

    def original_map(self) -> np.ndarray:
        """H×W float32 raw scores on the original image (bilinear, core.grid_map)."""
        if self.grid is None:
            return np.asarray(self.anomaly_map, np.float32)
        return self.grid.scores_to_original(self.anomaly_map)

    def on_whole_frame(self, amap: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(map, ground-truth mask) on the grid of the whole padded image: ``amap`` (default the
        anomaly map; e.g. a modality's map) carried there when this grid is a crop around the part
        (:meth:`core.grid_map.GridMap.to_whole_frame`), so that pixel metrics cover the same
        pixels with or without the crop."""
        amap = self.anomaly_map if amap is None else amap
        return (amap, self.mask) if self.grid is None else self.grid.to_whole_frame(amap, self.mask)

    def defect_mask(self, pixel_threshold: float) -> np.ndarray:
        """S×S bool predicted defect region at a raw pixel threshold (model grid)."""
        return self.anomaly_map >= pixel_threshold

    def point_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(N×3 points in metres, N raw scores) for every valid point: the score of its pixel."""
        if self.xyz is None:
            return np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
        valid = self.valid
        return self.xyz[valid], self.anomaly_map[valid]
