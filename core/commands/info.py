"""``lsfa info DATA_ROOT``: what a dataset folder holds (format, categories, splits, types,
sample counts and modalities); ``lsfa info MODEL.lsfa``: what a fitted model is (category,
modalities, backbones, calibration, thresholds and how they were chosen, the self-check's
estimate on synthetic defects, whether a region of interest is stored). Text by default, ``--json`` for machines."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe a dataset folder",
        description="List format, categories, splits, defect types, sample counts and modalities "
        "(rgb/xyz/gt) of a dataset folder (MVTec 3D-AD, raw Eyecandies, MVTec AD / MPDD / BTAD (2D) "
        "or a plain folder of samples).",
    )
    p.add_argument("data_root", metavar="DATA_ROOT|MODEL", help="dataset folder, or a .lsfa model file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def format_table(info: dict) -> str:
    """Human-readable table of ``Dataset.info()``."""
    lines = [f"{info['root']}  (format: {info['format']})"]
    header = ("category", "split", "type", "samples", "rgb", "xyz", "gt")
    rows = []
    for cat, cinfo in info["categories"].items():
        for split, sinfo in cinfo["splits"].items():
            mods = sinfo["modalities"]
            rows.append((cat, split, "(all)", sinfo["samples"], mods["rgb"], mods["xyz"], mods["gt"]))
            if len(sinfo["types"]) > 1 or split not in ("train", "validation"):
                for t, n in sinfo["types"].items():
                    rows.append(("", "", t, n, "", "", ""))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'>' if i >= 3 else '<'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*header))
    lines.append(fmt.format(*("-" * w for w in widths)))
    lines += [fmt.format(*(str(v) for v in r)) for r in rows]
    for cat, cinfo in info["categories"].items():
        types = ", ".join(cinfo["defect_types"]) or "none"
        lines.append(f"{cat}: defect types: {types}")
    return "\n".join(lines)


def _scoring_fields(model) -> dict:
    """Backbones, adaptors, fusion, search and banks of one single-resolution model."""
    return {
        "backbones": {m: ex.name + (" + colour contrast" if ex.params.get("colour_weight") else "")
                      for m, ex in model.extractors.items()},
        "adapted": model.adapted,
        "fusion": model.pixel_fusion.mode,
        "fusion_weights": None if model.pixel_fusion.weights is None else list(model.pixel_fusion.weights),
        "image_score": model.config.fused_image_score + (
            f" ({'largest' if model.image_fusion.mode in ('tail_max', 'max') else 'sum'} of the modalities' units)"
            if model.units_image_score and model.image_fusion.fitted else ""),
        "patch_distance": model.config.patch_distance,
        "search": {m: b.search.to_dict() for m, b in model.banks.items()},
        "bank_sizes": {m: b.size for m, b in model.banks.items()},
        "position_weight": model.config.position_weight if model.position is not None else 0.0,
    }


def model_summary(model) -> dict:
    """JSON-ready description of a fitted model (an ensemble's members under ``members``)."""
    from core.roi import inspected_share

    info = model.info
    members = getattr(model, "members", None)
    frame = (members[0] if members else model).object_frame  # the crop around the part; members share one
    if members is None:
        scoring = _scoring_fields(model)
    else:
        first = _scoring_fields(members[0])
        scoring = {"backbones": first["backbones"], "adapted": model.adapted,
                   "fusion": "ensemble: the largest of the members' maps and good-part-unit image scores",
                   "fusion_weights": None, "image_score": "ensemble", "patch_distance": first["patch_distance"],
                   "search": {}, "bank_sizes": {}, "position_weight": first["position_weight"],
                   "members": [{"image_size": m.config.image_size, "grid": m.config.grid, **_scoring_fields(m),
                                "self_check": m.info.get("self_check")} for m in members]}
    return {
        "model_id": model.model_id,
        "category": info.get("category"),
        "dataset": info.get("dataset"),
        "modalities": list(model.modalities),
        **scoring,
        "adaptation_notes": info.get("adaptation_notes", []),
        "n_train": info.get("n_train"),
        "calibration": info.get("calibration"),
        "thresholds": model.thresholds.to_dict(),
        "self_check": info.get("self_check"),
        "created": info.get("created"),
        "xyz_units": info.get("xyz_units", "m") if "xyz" in model.modalities else None,
        "object_frame_px": None if frame is None else frame.side_px,
        "roi": None if model.roi is None else {
            "height": int(model.roi.shape[0]), "width": int(model.roi.shape[1]),
            "inspected_share": round(inspected_share(model.roi), 4)},
    }


def format_model(summary: dict) -> str:
    from core.data.units import UNIT_NAMES
    from core.results import Thresholds

    t = summary["thresholds"]
    lines = [
        f"model {summary['model_id']}: category {summary['category']} (fitted on {summary['dataset']})",
        f"modalities: {', '.join(summary['modalities'])}; backbones: "
        + ", ".join(f"{m} {n}" for m, n in summary["backbones"].items()),
        f"LSFA adaptors: {'kept' if summary['adapted'] else 'none'}; fusion {summary['fusion']}"
        + (f" weights {summary['fusion_weights']}" if summary["fusion_weights"] else "")
        + f"; image score {summary['image_score']}"
        + (f"; patch distance {summary['patch_distance']}" if summary.get("patch_distance") else ""),
        f"training samples: {summary['n_train']}; calibration: {summary['calibration']}",
        *([f"point units: {UNIT_NAMES.get(summary['xyz_units'], summary['xyz_units'])} (the unit of the training clouds; "
           "scoring reads clouds in it unless --xyz-units says otherwise)"]
          if summary.get("xyz_units") else []),
        f"thresholds: {Thresholds.from_dict(t).describe()}",
    ]
    side = summary.get("object_frame_px")
    lines.append("crop around the part: none (the whole image is resized to the model grid)" if side is None else
                 f"crop around the part: a {side}×{side} px square centred on each part, resized to the model grid")
    weight = summary.get("position_weight") or 0.0
    lines.append("position channel: none (a patch is compared with training patches anywhere on the part)" if not weight
                 else f"position channel: weight {weight:g} (a patch is compared with training patches at about "
                      "the same distance from the part's centre)")
    roi = summary.get("roi")
    lines.append("region of interest: none (the whole image is inspected)" if roi is None else
                 f"region of interest: {roi['width']}×{roi['height']} px mask, "
                 f"{100 * roi['inspected_share']:.1f} % of the image inspected")
    from core.scoring.ann import SearchChoice

    for m, entry in summary.get("search", {}).items():
        lines.append(f"{m} nearest-neighbour search ({summary['bank_sizes'][m]} bank patches): "
                     + SearchChoice.from_dict(entry).describe())
    for i, member in enumerate(summary.get("members") or []):
        own = (member.get("self_check") or {}).get("estimate") or {}
        lines.append(f"ensemble member {i + 1}: {member['image_size']} px, {member['grid']}×{member['grid']} patches; "
                     f"LSFA adaptors {'kept' if member['adapted'] else 'none'}; fusion {member['fusion']}"
                     + (f" weights {member['fusion_weights']}" if member["fusion_weights"] else "")
                     + (f"; its own self-check estimate I-AUROC {own['image_auroc']:.3f}" if own else ""))
        for m, entry in member["search"].items():
            lines.append(f"  {m} nearest-neighbour search ({member['bank_sizes'][m]} bank patches): "
                         + SearchChoice.from_dict(entry).describe())
    check = summary.get("self_check")
    if check:
        from core.self_check import describe_good_flagged, describe_weak_modalities, interval_text

        est = check["estimate"]
        lines.append(
            f"self-check ESTIMATE (synthetic defects, not real ones): I-AUROC {est['image_auroc']:.3f}"
            f"{interval_text(est)}, AUPRO@0.3 {est['aupro_30']:.3f} — {est['what']}"
        )

        lines += [line for line in (describe_good_flagged(est), describe_weak_modalities(check)) if line]
    else:
        lines.append("self-check: not run (no held-out calibration samples, or --no-self-check)")
    lines += [f"note: {n}" for n in summary["adaptation_notes"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.data.dataset import open_dataset

    if Path(args.data_root).suffix == ".lsfa" and Path(args.data_root).is_file():
        from core.model_io import load_model

        summary = model_summary(load_model(args.data_root))
        print(json.dumps(summary, indent=2, default=str) if args.json else format_model(summary))
        return 0
    info = open_dataset(args.data_root).info()
    print(json.dumps(info, indent=2) if args.json else format_table(info))
    return 0
