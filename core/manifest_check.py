"""Validation of a model manifest against what the engine can use: types, ranges, finiteness
and consistency with the tensors. A checksum only detects accidental edits (anyone can
recompute it), so every entry is checked here before a model is rebuilt from it."""

from __future__ import annotations

import math
import re

import numpy as np

from core.data.units import XYZ_UNITS
from core.thresholds import check_min_defect_area

MODALITIES = ("rgb", "xyz")


class ManifestProblem(ValueError):
    """What is wrong with a manifest, as one short phrase."""


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ManifestProblem(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _mapping(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ManifestProblem(f"{what} must be a mapping, got {type(value).__name__}")
    return value


def check_param(name: str, key: str, value, default, annotation: str = "") -> None:
    """An extractor parameter must have the kind of value its factory's default (or, for a
    None default, its annotation) says."""
    what = f"extractor {name} parameter {key}"
    if default is None:
        if value is None:
            return
        if "str" in annotation and isinstance(value, str):
            return
        if ("float" in annotation or "int" in annotation) and not isinstance(value, str):
            _finite(value, what)
            return
        raise ManifestProblem(f"{what} has an unexpected value {value!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ManifestProblem(f"{what} must be true/false, got {value!r}")
    elif isinstance(default, (int, float)):
        _finite(value, what)
    elif isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or not value:
            raise ManifestProblem(f"{what} must be a non-empty list, got {value!r}")
        for v in value:
            _finite(v, what)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ManifestProblem(f"{what} must be text, got {value!r}")


def check_manifest(manifest: dict, tensors: dict[str, np.ndarray]) -> None:
    """ManifestProblem naming the first entry that cannot be used."""
    mods = _check_identity(manifest)
    _mapping(manifest.get("config"), "config")
    extractors = _mapping(manifest.get("extractors"), "extractors")
    positioned = _check_position_channel(manifest, mods)
    bank_dims = {}
    for m in mods:
        spec = _mapping(extractors.get(m), f"extractor entry for {m}")
        if not isinstance(spec.get("name"), str):
            raise ManifestProblem(f"extractor entry for {m} has no name")
        _mapping(spec.get("params", {}), f"extractor {m} params")
        dim = spec.get("dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ManifestProblem(f"extractor {m} dim must be a positive whole number, got {dim!r}")
        if not isinstance(spec.get("weights_id"), (str, type(None))):
            raise ManifestProblem(f"extractor {m} weights_id must be text")
        bank_dims[m] = dim + (m in positioned)  # the position channel is one more feature
        vectors = tensors.get(f"bank.{m}.vectors")
        if vectors is None:
            raise ManifestProblem(f"the {m} memory bank is missing from the tensors")
        if vectors.ndim != 2 or vectors.shape[0] < 1 or vectors.shape[1] != bank_dims[m]:
            raise ManifestProblem(f"the {m} memory bank is {vectors.shape}, not N×{bank_dims[m]} as its extractor "
                                  "(and position channel) say")
        if not np.isfinite(vectors).all():
            raise ManifestProblem(f"the {m} memory bank holds non-finite values")
        spread = tensors.get(f"bank.{m}.spread")
        if spread is not None and (spread.dtype != np.float32 or spread.shape != (vectors.shape[0],)
                                   or not (np.isfinite(spread) & (spread > 0)).all()):
            raise ManifestProblem(f"the {m} memory bank's spread is not {vectors.shape[0]} positive numbers")
    _check_search(manifest.get("search", {}), tensors, mods, bank_dims)
    for key in tensors:
        section, _, rest = key.partition(".")
        if section == "bank" and rest.split(".")[0] not in mods:
            raise ManifestProblem(f"tensor {key} belongs to no modality of the model")
        if section not in ("bank", "adapt") and key != "roi":
            raise ManifestProblem(f"unexpected tensor {key}")
    _check_roi(manifest.get("roi"), tensors.get("roi"))
    _check_object_frame(manifest)
    _check_outputs(manifest)
    for key in ("fusion_image", "fusion_pixel"):
        _mapping(manifest.get(key), key)
    has_adapt = any(k.startswith("adapt.") for k in tensors)
    if "adaptation" in manifest:
        meta = _mapping(manifest["adaptation"], "adaptation")
        _mapping(meta.get("config"), "adaptation config")
        expected = meta.get("modalities")
        if expected is not None:
            if not isinstance(expected, list) or not set(expected) <= set(mods):
                raise ManifestProblem(f"adaptation modalities must be a list of the model's, got {expected!r}")
            for m in expected:
                if not any(k.startswith(f"adapt.{m}.") for k in tensors):
                    raise ManifestProblem(f"the {m} adaptor's tensors are missing")
        elif not has_adapt:
            raise ManifestProblem("adaptation is recorded but the adaptor tensors are missing")
    elif has_adapt:
        raise ManifestProblem("adaptor tensors present but no adaptation entry")
    _check_info(manifest)


def _check_object_frame(manifest: dict) -> None:
    """The crop around the part (core.object_frame), when the model has one."""
    if "object_frame" not in manifest:
        return
    from core.object_frame import ObjectFrame

    frame = _mapping(manifest["object_frame"], "object_frame")
    try:
        ObjectFrame.from_dict(frame)
    except (KeyError, ValueError) as exc:
        raise ManifestProblem(f"object_frame: {exc}") from None


def _check_position_channel(manifest: dict, mods: list) -> set:
    """Each patch's distance from the part's centre (core.position_channel), when the model has it:
    one finite, non-negative unit per modality of the model; the modalities that have it."""
    if "position_channel" not in manifest:
        return set()
    from core.position_channel import PositionChannel

    entry = _mapping(manifest["position_channel"], "position_channel")
    try:
        channel = PositionChannel.from_dict(entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestProblem(f"position_channel: {exc}") from None
    extra = sorted(set(channel.units_per_cell) - set(mods))
    if extra:
        raise ManifestProblem(f"position_channel: modalities the model does not have: {', '.join(extra)}")
    return set(channel.units_per_cell)


def _check_identity(manifest: dict) -> list:
    """The model id and the modalities (returned)."""
    model_id = manifest.get("model_id")
    if not isinstance(model_id, str) or not re.fullmatch(r"[0-9a-f]{12}", model_id):
        raise ManifestProblem(f"model_id must be 12 hex digits, got {model_id!r}")
    mods = manifest.get("modalities")
    if not isinstance(mods, list) or not mods or len(set(mods)) != len(mods) or not set(mods) <= set(MODALITIES):
        raise ManifestProblem(f"modalities must be a non-empty list of rgb/xyz, got {mods!r}")
    return mods


def _check_outputs(manifest: dict) -> None:
    """The thresholds and the colour range."""
    thresholds = _mapping(manifest.get("thresholds"), "thresholds")
    for key in ("image", "pixel"):
        _finite(thresholds.get(key), f"{key} threshold")
    if "min_defect_area" in thresholds:
        try:
            check_min_defect_area(thresholds["min_defect_area"])
        except ValueError as exc:
            raise ManifestProblem(str(exc)) from None
    if "image_spread" in thresholds:
        spread = thresholds["image_spread"]
        if not isinstance(spread, list) or len(spread) != 2:
            raise ManifestProblem(f"thresholds image_spread must be two numbers, got {spread!r}")
        lo, hi = (_finite(v, "thresholds image_spread") for v in spread)
        if not lo <= hi:
            raise ManifestProblem(f"thresholds image_spread must not fall, got {spread!r}")
    rng = manifest.get("display_range")
    if not isinstance(rng, list) or len(rng) != 2:
        raise ManifestProblem(f"display_range must be two numbers, got {rng!r}")
    lo, hi = (_finite(v, "display_range") for v in rng)
    if not lo < hi:
        raise ManifestProblem(f"display_range must rise, got {rng!r}")


def _check_info(manifest: dict) -> None:
    """The info entries the engine reads."""
    info = _mapping(manifest.get("info", {}), "info")
    if info.get("category") is not None and not isinstance(info["category"], str):
        raise ManifestProblem("info category must be text")
    if info.get("xyz_spacing_m") is not None and not _finite(info["xyz_spacing_m"], "info xyz_spacing_m") > 0:
        raise ManifestProblem("info xyz_spacing_m must be positive")
    if info.get("xyz_units") is not None and info["xyz_units"] not in XYZ_UNITS:
        raise ManifestProblem(f"info xyz_units must be m, cm or mm, got {info['xyz_units']!r}")
    size = info.get("image_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(_finite(v, "info image_size") >= 1 for v in size)):
        raise ManifestProblem(f"info image_size must be [height, width] in pixels, got {size!r}")
    calib = info.get("calibration_scores")
    if calib is not None:
        for key, value in _mapping(calib, "info calibration_scores").items():
            _finite(value, f"info calibration_scores {key}")


def check_ensemble_entries(manifest: dict, tensors: dict[str, np.ndarray], max_members: int) -> list[dict]:
    """ManifestProblem naming the first unusable entry of an ensemble's own manifest (its
    members are checked as single models when they are rebuilt); returns the member manifests."""
    mods = _check_identity(manifest)
    _mapping(manifest.get("config"), "config")
    members = manifest.get("members")
    if not isinstance(members, list) or not 2 <= len(members) <= max_members:
        raise ManifestProblem(f"an ensemble needs 2 to {max_members} members, got {members!r:.60}")
    for i, member in enumerate(members):
        _mapping(member, f"ensemble member {i + 1}")
        if member.get("modalities") != mods:
            raise ManifestProblem(f"ensemble member {i + 1} has other modalities than the ensemble")
        if "roi" in member or "members" in member:
            raise ManifestProblem(f"ensemble member {i + 1} holds entries only the ensemble may hold")
    for key in tensors:
        head = key.partition(".")[0]
        if key != "roi" and head not in {f"member{i}" for i in range(len(members))}:
            raise ManifestProblem(f"unexpected tensor {key}")
    _check_roi(manifest.get("roi"), tensors.get("roi"))
    _check_outputs(manifest)
    _check_info(manifest)
    return members


def _check_roi(entry, roi) -> None:
    """The region of interest (core.roi): a manifest entry {height, width, ...} and an
    height×width uint8 tensor of 0/1 with at least one 1 come together, or neither."""
    if entry is None and roi is None:
        return
    if entry is None or roi is None:
        raise ManifestProblem("the region of interest is recorded in only one of the manifest and the tensors")
    entry = _mapping(entry, "roi")
    shape = (entry.get("height"), entry.get("width"))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise ManifestProblem(f"roi height and width must be whole numbers of pixels, got {shape!r}")
    if roi.dtype != np.uint8 or roi.shape != shape:
        raise ManifestProblem(f"the region of interest must be a {shape[1]}×{shape[0]} uint8 mask, "
                              f"got {roi.shape} {roi.dtype}")
    if roi.max() > 1:
        raise ManifestProblem("the region of interest holds values other than 0 and 1")
    if not roi.any():
        raise ManifestProblem("the region of interest ignores every pixel")


def _check_search(search, tensors: dict[str, np.ndarray], mods: list, bank_dims: dict) -> None:
    """The banks' search entries (absent: exact) and the IVF centroids they need ({modality: the
    bank's feature count} ``bank_dims``)."""
    from core.scoring.ann import SearchChoice

    search = _mapping(search, "search")
    for m in search:
        if m not in mods:
            raise ManifestProblem(f"search entry {m!r} belongs to no modality of the model")
    for m in mods:
        try:
            choice = SearchChoice.from_dict(search[m]) if m in search else SearchChoice()
        except ValueError as exc:
            raise ManifestProblem(f"{m} {exc}") from None
        centroids = tensors.get(f"bank.{m}.ivf_centroids")
        if choice.kind == "exact":
            if centroids is not None:
                raise ManifestProblem(f"the {m} memory bank has IVF centroids but its search is exact")
            continue
        dim = bank_dims[m]
        if centroids is None or centroids.dtype != np.float32 or centroids.shape != (choice.nlist, dim):
            got = None if centroids is None else f"{centroids.shape} {centroids.dtype}"
            raise ManifestProblem(f"the {m} IVF search needs {choice.nlist}×{dim} float32 centroids, got {got}")
        if not np.isfinite(centroids).all():
            raise ManifestProblem(f"the {m} IVF centroids hold non-finite values")
