"""Export of inspection results: one row per sample (CSV / JSON) and overlay PNGs (Qt-free).

Rows carry the thresholds in effect and the model, so an exported table can be traced back.
Files are written atomically (temp file in the same folder + ``os.replace``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from core import render
from core.atomic import atomic_write
from core.naming import safe_name
from lsfa_gui.state import InspectionState, SampleEntry, normalised

FIELDS = (
    "name", "split", "label", "gt_defect", "image_score", "image_score_normalised", "verdict",
    "image_threshold", "pixel_threshold", "min_defect_area", "defect_pixels", "regions", "largest_region_px",
    "largest_region_mm2", "max_pixel_score", "seconds",
    "source", "model",
)


def result_rows(state: InspectionState) -> list[dict]:
    """One dict per sample (unscored samples included with empty score fields)."""
    rng = state.image_score_range()
    thr = state.thresholds
    rows = []
    for e in state.entries:
        amap = None if e.result is None else np.asarray(e.result.anomaly_map)
        regions = state.regions(e)
        largest = regions[0] if regions else None
        rows.append({
            "name": e.name,
            "split": e.split,
            "label": e.label,
            "gt_defect": e.is_defect,
            "image_score": e.image_score,
            "image_score_normalised": normalised(e.image_score, rng),
            "verdict": state.verdict(e),
            "image_threshold": thr.image,
            "pixel_threshold": thr.pixel,
            "min_defect_area": thr.min_defect_area or None,
            "defect_pixels": None if amap is None or thr.pixel is None else int(np.sum(amap >= thr.pixel)),
            "regions": None if amap is None or thr.pixel is None else len(regions),
            "largest_region_px": None if amap is None or thr.pixel is None else (largest.area_px if largest else 0),
            "largest_region_mm2": None if largest is None else largest.area_mm2,
            "max_pixel_score": None if amap is None else float(amap.max()),
            "seconds": e.seconds,
            "source": e.source,
            "model": state.model.path,
        })
    return rows


def export_csv(state: InspectionState, path: str | Path) -> Path:
    path = Path(path)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in result_rows(state):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic_write(path, buf.getvalue().encode())
    return path


def export_json(state: InspectionState, path: str | Path) -> Path:
    path = Path(path)
    doc = {
        "model": state.model.path,
        "dataset": state.dataset_root,
        "category": state.category,
        "thresholds": {"image": state.thresholds.image, "pixel": state.thresholds.pixel},
        "colour_range": state.colour_range,
        "samples": result_rows(state),
    }
    for row, entry in zip(doc["samples"], state.entries):
        row["region_list"] = [r.to_dict() for r in state.regions(entry)]
    atomic_write(path, (json.dumps(doc, indent=1) + "\n").encode())
    return path


def overlay_image(state: InspectionState, entry: SampleEntry, lut: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 overlay of a scored entry, exactly as the RGB view draws it."""
    r = entry.result
    if r is None:
        raise ValueError(f"{entry.name}: not scored")
    amap = np.asarray(r.anomaly_map, np.float32)
    d = state.display
    rng = state.display_range(entry) or (float(amap.min()), float(amap.max()) + 1e-6)
    return render.render_result(
        r, rng,
        pixel_threshold=state.thresholds.pixel if d.show_prediction else None,
        lut=lut,
        opacity=d.opacity if d.show_heatmap else 0.0,
        gt_mask=entry.mask if d.show_ground_truth else None,
        hide_below_threshold=d.hide_below_threshold,
        fade=d.fade_low_scores,
    )


def export_overlay_png(state: InspectionState, index: int, path: str | Path, lut: np.ndarray) -> Path:
    path = Path(path)
    atomic_write(path, render.png_bytes(overlay_image(state, state.entries[index], lut)))
    return path


def export_all_overlays(state: InspectionState, folder: str | Path, lut: np.ndarray, progress=None) -> list[Path]:
    """One PNG per scored sample, named ``NNNN_<split>_<label>_<name>.png``."""
    from core.progress import ensure

    p = ensure(progress)
    folder = Path(folder)
    scored = state.scored
    out = []
    for k, i in enumerate(scored):
        e = state.entries[i]
        stem = safe_name("_".join(x for x in (e.split, e.label or "", e.name) if x))
        out.append(export_overlay_png(state, i, folder / f"{i:04d}_{stem}.png", lut))
        p.update("Export overlays", k + 1, len(scored))
    return out
