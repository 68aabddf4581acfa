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
from core.report import ReportHeader, ReportRow, utc_now, write_report
from lsfa_gui.state import InspectionState, SampleEntry, normalised

FIELDS = (
    "date", "name", "split", "label", "gt_defect", "image_score", "image_score_normalised", "verdict",
    "image_threshold", "pixel_threshold", "min_defect_area", "defect_pixels", "regions", "largest_region_px",
    "largest_region_mm2", "max_pixel_score", "seconds",
    "source", "model", "model_id",
)
CSV_DIGITS = 4  # significant digits of the floats in the CSV export (report grade; the JSON keeps them all)


def result_rows(state: InspectionState) -> list[dict]:
    """One dict per sample (unscored samples included with empty score fields); ``date`` is the
    export time (ISO 8601 UTC), ``model_id`` the model file's id (its tensors' checksum prefix)."""
    rng = state.image_score_range()
    date = utc_now()
    thr = state.thresholds
    rows = []
    for e in state.entries:
        amap = None if e.result is None else np.asarray(e.result.anomaly_map)
        regions = state.regions(e)
        largest = regions[0] if regions else None
        rows.append({
            "date": date,
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
            "defect_pixels": None if amap is None or thr.pixel is None else sum(r.area_px for r in regions),
            "regions": None if amap is None or thr.pixel is None else len(regions),
            "largest_region_px": None if amap is None or thr.pixel is None else (largest.area_px if largest else 0),
            "largest_region_mm2": None if largest is None else largest.area_mm2,
            "max_pixel_score": None if amap is None else float(amap.max()),
            "seconds": e.seconds,
            "source": e.source,
            "model": state.model.path,
            "model_id": state.model.model_id,
        })
    return rows


def export_csv(state: InspectionState, path: str | Path) -> Path:
    path = Path(path)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in result_rows(state):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    atomic_write(path, buf.getvalue().encode())
    return path


def _cell(value) -> str:
    """A CSV cell: floats to CSV_DIGITS significant digits, None empty, text made formula-safe."""
    from core.outputs import csv_safe

    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{CSV_DIGITS}g}"
    return csv_safe(value)


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


def original_sample(state: InspectionState, entry: SampleEntry):
    """The entry's sample at original resolution: kept on the state, else loaded from its files
    (None when it has none or they cannot be read: the export is then on the model grid)."""
    from core.errors import UserError

    original = state.original(entry)
    if original is None and hasattr(entry.ref, "load"):
        try:
            original = entry.ref.load()
        except (UserError, OSError):
            original = None
    return original


def overlay_image(state: InspectionState, entry: SampleEntry, lut: np.ndarray, original=None) -> np.ndarray:
    """H×W×3 uint8 overlay of a scored entry, exactly as the RGB view draws it: on the original
    image (``original``, else :func:`original_sample`) when it is known."""
    r = entry.result
    if r is None:
        raise ValueError(f"{entry.name}: not scored")
    amap = np.asarray(r.anomaly_map, np.float32)
    d = state.display
    rng = state.display_range(entry) or (float(amap.min()), float(amap.max()) + 1e-6)
    original = original_sample(state, entry) if original is None else original
    return render.render_result(
        r, rng,
        pixel_threshold=state.thresholds.pixel if d.show_prediction else None,
        lut=lut,
        opacity=d.opacity if d.show_heatmap else 0.0,
        gt_mask=entry.mask if d.show_ground_truth else None,
        hide_below_threshold=d.hide_below_threshold,
        fade=d.fade_low_scores,
        original=original,
    )


def export_overlay_png(state: InspectionState, index: int, path: str | Path, lut: np.ndarray) -> Path:
    path = Path(path)
    atomic_write(path, render.png_bytes(overlay_image(state, state.entries[index], lut)))
    return path


def export_all_overlays(state: InspectionState, folder: str | Path, lut: np.ndarray, progress=None,
                        annotated: bool = False) -> list[Path]:
    """One PNG per scored sample, named ``NNNN_<split>_<label>_<name>.png`` (``annotated``: the
    report version, :func:`annotated_image`)."""
    from core.progress import ensure

    p = ensure(progress)
    folder = Path(folder)
    scored = state.scored
    out = []
    for k, i in enumerate(scored):
        e = state.entries[i]
        stem = safe_name("_".join(x for x in (e.split, e.label or "", e.name) if x))
        target = folder / f"{i:04d}_{stem}.png"
        if annotated:
            atomic_write(target, render.png_bytes(annotated_image(state, e, lut)))
            out.append(target)
        else:
            out.append(export_overlay_png(state, i, target, lut))
        p.update("Export overlays", k + 1, len(scored))
    return out


def annotated_image(state: InspectionState, entry: SampleEntry, lut: np.ndarray) -> np.ndarray:
    """The overlay of a scored entry as the RGB view draws it, annotated for reports
    (core.render.annotate: name, verdict, score, thresholds, colour bar, numbered regions)."""
    original = original_sample(state, entry)
    image = overlay_image(state, entry, lut, original)
    amap = np.asarray(entry.result.anomaly_map, np.float32)
    rng = state.display_range(entry) or (float(amap.min()), float(amap.max()) + 1e-6)
    # region boxes are in original pixels: drawn unless the overlay is on the model grid
    boxes = getattr(entry.result, "grid", None) is None or render.drawn_on_original(entry.result, original)
    return render.annotate(image, entry.name, state.verdict(entry), entry.image_score, state.thresholds, rng,
                           lut, regions=state.regions(entry), boxes=boxes)


def export_report(state: InspectionState, path: str | Path, lut: np.ndarray, progress=None) -> Path:
    """The HTML batch report (core.report) of every sample in the browser, at the current
    thresholds and display settings; unscored samples are listed as SKIPPED."""
    from core.progress import ensure

    p = ensure(progress)
    rows = []
    for k, e in enumerate(state.entries):
        p.update("Export report", k, len(state.entries), e.name)
        if e.result is None:
            rows.append(ReportRow(e.name, "SKIPPED", is_defect=e.is_defect, label=e.label, source=e.source,
                                  error="not scored"))
            continue
        regions = state.regions(e)
        largest = ""
        if regions:
            big = regions[0]
            largest = f"{big.area_mm2:.4g} mm²" if big.area_mm2 is not None else f"{big.area_px} px"
        rows.append(ReportRow(e.name, state.verdict(e) or "", e.image_score, e.is_defect, e.label, len(regions),
                              largest, e.source, png=render.png_bytes(annotated_image(state, e, lut))))
    thr = state.thresholds
    header = ReportHeader(model=state.model.path or state.model.name, model_id=state.model.model_id,
                          image_threshold=thr.image, pixel_threshold=thr.pixel,
                          uncertain_until=thr.uncertain_until, min_defect_area=thr.min_defect_area)
    out = write_report(path, rows, header)
    p.update("Export report", len(state.entries), len(state.entries))
    return out
