"""Fit settings, stored verbatim in the model file."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from core.errors import UserError

MODALITY_CHOICES = ("auto", "rgb", "xyz", "rgb,xyz")
FUSION_CHOICES = ("tail_sum", "tail_max", "sum", "ocsvm")  # see core.scoring.fusion
FUSED_IMAGE_SCORE_CHOICES = ("map_topk", "map_max", "late")
# Resolution presets: model grid side (px), patch grid, map blur (px at that size).
PRESETS = {
    "fast": {"image_size": 224, "grid": 28, "blur_sigma": 4.0},  # the default
    "accurate": {"image_size": 320, "grid": 40, "blur_sigma": 5.7},  # finer patches: ~2-3x slower
}


MAX_IMAGE_SIZE = 1024  # model grid side limit: memory grows with its square (accurate = 320)


def _whole(option: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` as an int; UserError unless it is a whole number in [lo, hi]."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"≥ {lo}"
        raise UserError(f"{option} must be a whole number {bound}, got {value!r}")
    return int(value)


def _number(option: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{option} must be a finite number, got {value!r}")


@dataclass
class FitConfig:
    modalities: str = "auto"  # "auto" (all the training data has), "rgb", "xyz" or "rgb,xyz"
    rgb_backbone: str = "efficientnet_lite0"
    xyz_backbone: str = "fpfh_surface"  # FPFH + multi-scale surface height (core.features.surface)
    rgb_weights: str | None = None  # checkpoint file for backbones that need one
    xyz_weights: str | None = None
    device: str = "cpu"
    image_size: int = 224  # model grid side S in pixels
    grid: int = 28  # patch grid side
    coreset_ratio: float = 0.1  # fraction of training patches kept per memory bank
    min_bank_size: int = 10000  # keep at least this many patches (all if fewer): small training
    #                             sets need every patch; the ratio only bites on large ones
    image_score: str = "max"  # per-modality image score: "max" patch distance or PatchCore "reweighted"
    fusion: str = "tail_sum"  # fusion of modalities, one of FUSION_CHOICES (core.scoring.fusion)
    fused_image_score: str = "map_topk"  # "map_topk": mean of the image_topk highest fused-map
    #   pixels; "map_max": maximum of the fused map; "late": late fusion of the per-modality
    #   image scores (M3DM decision layer)
    image_topk: int = 250  # pixels averaged by "map_topk", counted at 224×224 (scaled with image_size²)
    preprocess: bool = True  # background-plane removal + largest cluster + square padding
    blur_sigma: float = 4.0  # Gaussian blur of the upsampled map, pixels at image_size
    seed: int = 0
    batch_size: int = 8
    max_train: int | None = None  # cap on training samples (None = all)
    image_quantile: float = 0.99  # image threshold = this quantile of good validation scores
    pixel_quantile: float = 0.999  # pixel threshold = this quantile of good validation pixels
    cache_dir: str | None = None  # preprocessing cache (None = per-user default)
    adapt: bool = True  # LSFA feature adaptation (helps mean I-AUROC on held-out demo seeds; bench_ablation)
    adaptation: dict = field(default_factory=dict)  # AdaptConfig overrides
    self_check: bool = True  # fit-time self-check on synthetic defects (core.self_check): keeps
    #   LSFA adaptors only where they help, chooses the fusion, seeds thresholds, estimates quality

    def __post_init__(self):
        self.grid = _whole("--grid", self.grid, 1, MAX_IMAGE_SIZE)
        self.image_size = _whole("--image-size", self.image_size, 1, MAX_IMAGE_SIZE)
        self.min_bank_size = _whole("--min-bank", self.min_bank_size, 1)
        self.image_topk = _whole("--image-topk", self.image_topk, 1)
        self.seed = _whole("--seed", self.seed, 0)
        self.batch_size = _whole("batch size", self.batch_size, 1)
        if self.max_train is not None:
            self.max_train = _whole("--max-train", self.max_train, 1)
        _number("--coreset", self.coreset_ratio)
        _number("blur sigma", self.blur_sigma)
        _number("image quantile", self.image_quantile)
        _number("pixel quantile", self.pixel_quantile)
        if not (0 < self.image_quantile < 1 and 0 < self.pixel_quantile < 1):
            raise UserError("threshold quantiles must be between 0 and 1")
        if self.blur_sigma < 0:
            raise UserError(f"blur sigma must be ≥ 0, got {self.blur_sigma}")
        for name in ("preprocess", "adapt", "self_check"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.adaptation, dict):
            raise UserError(f"adaptation settings must be a mapping, got {self.adaptation!r}")
        for name in ("rgb_backbone", "xyz_backbone", "device"):
            if not isinstance(getattr(self, name), str):
                raise UserError(f"{name} must be text, got {getattr(self, name)!r}")
        if self.modalities not in MODALITY_CHOICES:
            raise UserError(
                f"--modalities must be one of {', '.join(MODALITY_CHOICES)}, got {self.modalities!r}"
            )
        if self.fusion not in FUSION_CHOICES:
            raise UserError(f"--fusion must be one of {', '.join(FUSION_CHOICES)}, got {self.fusion!r}")
        if self.image_score not in ("max", "reweighted"):
            raise UserError(f"image score must be 'max' or 'reweighted', got {self.image_score!r}")
        if self.fused_image_score not in FUSED_IMAGE_SCORE_CHOICES:
            raise UserError(
                f"fused image score must be one of {', '.join(FUSED_IMAGE_SCORE_CHOICES)}, "
                f"got {self.fused_image_score!r}"
            )
        if not (isinstance(self.image_topk, int) and self.image_topk >= 1):
            raise UserError(f"image top-k must be a positive number of pixels, got {self.image_topk!r}")
        if not 0 < self.coreset_ratio <= 1:
            raise UserError(f"--coreset must be in (0, 1], got {self.coreset_ratio}")
        if self.image_size % self.grid:
            raise UserError(f"--image-size {self.image_size} must be a multiple of --grid {self.grid}")

    def effective_coreset_ratio(self, n_patches: int) -> float:
        """Coreset ratio for a bank of ``n_patches``: the configured one, raised so that at
        least ``min_bank_size`` patches are kept."""
        if n_patches <= 0:
            return 1.0
        return float(min(1.0, max(self.coreset_ratio, self.min_bank_size / n_patches)))

    def topk_pixels(self) -> int:
        """Pixels averaged by the "map_topk" image score at this model's image size."""
        return max(1, int(round(self.image_topk * (self.image_size / 224) ** 2)))

    def requested_modalities(self) -> tuple[str, ...] | None:
        """Explicitly requested modalities, or None for "auto"."""
        return None if self.modalities == "auto" else tuple(self.modalities.split(","))

    def cache_path(self) -> Path:
        from core.prepare import default_cache_dir

        return Path(self.cache_dir) if self.cache_dir else default_cache_dir() / "preprocessed"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FitConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
