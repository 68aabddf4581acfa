"""Model <-> ``.lsfa`` file: which manifest entries and tensors make up a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core import __version__
from core.config import FitConfig
from core.ensemble import EnsembleModel
from core.model import Model
from core.errors import ModelFileError, UserError
from core.model_file import read_model_file, write_model_file
from core.results import Thresholds
from core.roi import inspected_share


def _model_parts(model: Model) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, tensors) of one single-resolution model."""
    manifest = {
        "app_version": __version__,
        "config": model.config.to_dict(),
        "modalities": list(model.modalities),
        "extractors": {
            m: {"name": ex.name, "params": dict(getattr(ex, "params", {}) or {}), "weights_id": ex.weights_id, "dim": int(ex.dim)}
            for m, ex in model.extractors.items()
        },
        "thresholds": model.thresholds.to_dict(),
        "display_range": list(model.display_range),
        "info": {k: v for k, v in model.info.items() if k != "model_id"},
    }
    tensors: dict[str, np.ndarray] = {}
    for m, bank in model.banks.items():
        for key, arr in bank.state().items():
            tensors[f"bank.{m}.{key}"] = np.asarray(arr)
    manifest["search"] = {m: bank.search.to_dict() for m, bank in model.banks.items()}
    for level, fusion in (("image", model.image_fusion), ("pixel", model.pixel_fusion)):
        manifest[f"fusion_{level}"] = fusion.state()
    if model.object_frame is not None:
        manifest["object_frame"] = model.object_frame.to_dict()
    if model.position is not None:
        manifest["position_channel"] = model.position.to_dict()
    if model.adapter is not None:
        meta, arrays = model.adapter.state()
        meta["modalities"] = sorted({k.split(".")[0] for k in arrays})
        manifest["adaptation"] = meta
        tensors.update({f"adapt.{k}": v for k, v in arrays.items()})
    return manifest, tensors


def save_model(model: Model | EnsembleModel, path: str | Path) -> str:
    """Write ``model`` atomically to ``path``; returns (and records on the model) its model id.
    An ensemble's file holds each member's manifest under ``members`` and its tensors under
    ``member<i>.`` (core.ensemble)."""
    if isinstance(model, EnsembleModel):
        manifest = {
            "app_version": __version__,
            "kind": "ensemble",
            "config": model.config.to_dict(),
            "modalities": list(model.modalities),
            "thresholds": model.thresholds.to_dict(),
            "display_range": list(model.display_range),
            "info": {k: v for k, v in model.info.items() if k != "model_id"},
            "members": [],
        }
        tensors: dict[str, np.ndarray] = {}
        for i, member in enumerate(model.members):
            part, arrays = _model_parts(member)
            manifest["members"].append(part)
            tensors.update({f"member{i}.{k}": v for k, v in arrays.items()})
    else:
        manifest, tensors = _model_parts(model)
    if model.roi is not None:  # region of interest, original image pixels (core.roi)
        h, w = model.roi.shape
        manifest["roi"] = {"height": int(h), "width": int(w),
                           "inspected_share": round(inspected_share(model.roi), 6)}
        tensors["roi"] = model.roi.astype(np.uint8)
    model.model_id = write_model_file(path, manifest, tensors)
    model.info["model_id"] = model.model_id
    return model.model_id


def _section(tensors: dict, prefix: str) -> dict:
    n = len(prefix)
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_model(path: str | Path, data: bytes | None = None) -> Model | EnsembleModel:
    """Read a ``.lsfa`` file (never unpickles) and validate every manifest entry before the
    model is rebuilt. Raises ModelFileError with the reason. ``data``: the file's bytes when
    they were read already (``path`` then only names the model in messages)."""
    path = Path(path)
    manifest, tensors = read_model_file(path, data)
    if manifest.get("kind") == "ensemble":
        return _load_ensemble(path, manifest, tensors)
    return _load_single(path, manifest, tensors)


def _load_single(path: Path, manifest: dict, tensors: dict) -> Model:
    """One single-resolution model from its manifest and tensors, every entry checked first."""
    from core.manifest_check import ManifestProblem, check_manifest, check_param

    try:
        check_manifest(manifest, tensors)
        config = FitConfig.from_dict(manifest["config"])
        for m in manifest["modalities"]:
            spec = manifest["extractors"][m]
            defaults = _param_defaults(path, m, spec["name"])
            for key, value in spec.get("params", {}).items():
                if key in defaults:
                    check_param(spec["name"], key, value, *defaults[key])
    except (ManifestProblem, UserError) as exc:
        raise ModelFileError(path, f"model manifest is invalid: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(path, f"model manifest is incomplete or malformed ({exc!r})") from None
    try:
        return _rebuild(path, manifest, tensors, config)
    except ModelFileError:
        raise
    except (UserError, KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise ModelFileError(path, f"model cannot be rebuilt from its manifest ({exc})") from None


MAX_MEMBERS = 4  # models in one ensemble file (core.config allows 1 + 3)


def _load_ensemble(path: Path, manifest: dict, tensors: dict) -> EnsembleModel:
    """An ensemble file: each member checked and rebuilt as a single model's file is, then the
    ensemble's own entries (every one checked before use)."""
    from core.manifest_check import ManifestProblem, check_ensemble_entries

    try:
        members_spec = check_ensemble_entries(manifest, tensors, MAX_MEMBERS)
        config = FitConfig.from_dict(manifest["config"])
    except (ManifestProblem, UserError) as exc:
        raise ModelFileError(path, f"model manifest is invalid: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(path, f"model manifest is incomplete or malformed ({exc!r})") from None
    members = []
    for i, spec in enumerate(members_spec):
        part = {**spec, "model_id": manifest["model_id"]}
        try:
            member = _load_single(path, part, _section(tensors, f"member{i}."))
        except ModelFileError as exc:
            raise ModelFileError(path, f"ensemble member {i + 1}: {exc.problem}") from None
        members.append(member)
    stored = [(m.config.image_size, m.config.grid) for m in members]
    if all(stored != [(c.image_size, c.grid) for c in config.member_configs(point_clouds)]
           for point_clouds in (True, False)):  # "auto" resolves by the training data
        raise ModelFileError(path, "model manifest is invalid: the ensemble's members do not match its config")
    info = dict(manifest.get("info", {}))
    info["model_id"] = manifest["model_id"]
    try:
        model = EnsembleModel(config, members, Thresholds.from_dict(manifest["thresholds"]),
                              tuple(float(v) for v in manifest["display_range"]), info)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(path, f"model manifest is incomplete or malformed ({exc!r})") from None
    if "roi" in tensors:
        model.set_roi(tensors["roi"].astype(bool), f"stored in {path}")
    return model


def _param_defaults(path: Path, modality: str, name: str) -> dict:
    from core.features.registry import param_defaults

    try:
        return param_defaults(name)
    except UserError as exc:
        raise ModelFileError(path, f"cannot rebuild the {modality} feature extractor: {exc}") from None


def _rebuild(path: Path, manifest: dict, tensors: dict, config: FitConfig) -> Model:
    from core.features.registry import accepts, create_extractor
    from core.scoring.fusion import LateFusion
    from core.scoring.memory_bank import MemoryBank

    modalities = tuple(manifest["modalities"])
    thresholds = Thresholds.from_dict(manifest["thresholds"])
    display_range = tuple(float(v) for v in manifest["display_range"])
    extractor_specs = manifest["extractors"]
    fusion_image = LateFusion.from_state(manifest["fusion_image"])
    fusion_pixel = LateFusion.from_state(manifest["fusion_pixel"])
    search = manifest.get("search", {})  # absent in files written before approximate search: exact
    banks = {m: MemoryBank.from_state(_section(tensors, f"bank.{m}."), search.get(m)) for m in modalities}
    extractors = {}
    for m in modalities:
        spec = extractor_specs[m]
        params = dict(spec.get("params", {}))
        if accepts(spec["name"], "device"):
            import torch

            params["device"] = config.device if torch.cuda.is_available() else "cpu"
        try:
            ex = create_extractor(spec["name"], **params)
        except UserError as exc:
            raise ModelFileError(path, f"cannot rebuild the {m} feature extractor: {exc}") from None
        if ex.weights_id != spec["weights_id"]:
            raise ModelFileError(
                path,
                f"the {m} backbone weights differ from those the model was fitted with "
                f"({ex.weights_id} != {spec['weights_id']})",
            )
        if int(ex.dim) != spec["dim"]:
            raise ModelFileError(path, f"the {m} feature extractor gives {ex.dim} features, the model "
                                       f"records {spec['dim']}")
        extractors[m] = ex
    adapter = None
    if "adaptation" in manifest:
        from core.adaptation.engine import Adapter

        adapter = Adapter.from_state(manifest["adaptation"], _section(tensors, "adapt."))
        kept = set(adapter._set.adaptors)
        if not kept or not kept <= set(modalities):
            raise ModelFileError(path, "adaptation is recorded but its adaptors cannot be rebuilt")
    info = dict(manifest.get("info", {}))
    info["model_id"] = manifest["model_id"]
    model = Model(
        config, modalities, extractors, banks, fusion_image, fusion_pixel, thresholds, display_range,
        adapter=adapter, info=info,
    )
    if "object_frame" in manifest:  # checked by core.manifest_check
        from core.object_frame import ObjectFrame

        model.object_frame = ObjectFrame.from_dict(manifest["object_frame"])
    if "position_channel" in manifest:  # checked by core.manifest_check
        from core.position_channel import PositionChannel

        model.position = PositionChannel.from_dict(manifest["position_channel"])
    if "roi" in tensors:  # checked by core.manifest_check
        model.set_roi(tensors["roi"].astype(bool), f"stored in {path}")
    return model
