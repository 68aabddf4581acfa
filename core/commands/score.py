"""``lsfa score MODEL.lsfa INPUT... [--csv OUT.csv] [--maps DIR]``: score samples or folders.

One unusable input (missing file or partner file, corrupt file, wrong units) does not stop the
batch: it becomes a SKIPPED row with its reason, and the command exits 2 at the end."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from core.commands.fit import add_units_arg
from core.rows import COLUMNS, SCORE_COLUMNS  # noqa: F401  (COLUMNS: also the watch log's)

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("score", help="score single samples or folders with a fitted model")
    p.add_argument("model", type=Path, help="model file (.lsfa)")
    p.add_argument("inputs", type=Path, nargs="+", help="sample files or folders (any supported format)")
    p.add_argument("--csv", type=Path, help="write one row per sample here")
    p.add_argument("--maps", type=Path, help="write heatmap overlay PNGs into this folder")
    p.add_argument("--annotate", action="store_true",
                   help="--maps PNGs carry the sample name, verdict, score, thresholds, a colour bar and "
                        "numbered boxes around the defect regions (default: the plain overlay)")
    p.add_argument("--report", type=Path, metavar="OUT.html",
                   help="write a self-contained HTML report: summary counts, a confusion table when labels "
                        "are known, a score histogram and one row per sample with its annotated overlay")
    add_units_arg(p)
    add_uncertain_arg(p)
    add_min_area_arg(p)
    p.set_defaults(func=run)


def add_min_area_arg(p) -> None:
    p.add_argument("--min-defect-area", type=int, metavar="PX",
                   help="a part whose largest defect region (8-connected pixels of the anomaly map at or above "
                        "the pixel threshold, on the model grid) is smaller than PX pixels is OK whatever its "
                        "score. Default: the model file's value (0 = off)")


def apply_min_area(model, pixels) -> None:
    """Set the model's minimum defect area from ``--min-defect-area`` (None: leave it); UserError if invalid."""
    from core.errors import UserError
    from core.thresholds import check_min_defect_area

    if pixels is None:
        return
    try:
        model.thresholds.min_defect_area = check_min_defect_area(pixels)
    except ValueError as exc:
        raise UserError(f"--min-defect-area: {exc}") from None


def add_uncertain_arg(p) -> None:
    p.add_argument("--uncertain", nargs=2, type=float, metavar=("LOW", "HIGH"),
                   help="uncertain band of image scores (raw units, LOW < HIGH): a part is OK below LOW, "
                        "UNCERTAIN from LOW up to HIGH, NG at or above HIGH (LOW replaces the model's "
                        "image threshold). Default: no band, OK/NG at the model's image threshold")


def apply_uncertain(model, band) -> None:
    """Set the model's uncertain band from ``--uncertain LOW HIGH`` (None: leave it); UserError if invalid."""
    from core.errors import UserError
    from core.thresholds import check_band

    if band is None:
        return
    try:
        low, high = check_band(*band)
    except ValueError as exc:
        raise UserError(f"--uncertain: {exc}") from None
    model.thresholds.image = low
    model.thresholds.uncertain_until = high
    model.thresholds.source = "user (--uncertain)"


def map_image(result, model):
    """The ``--maps`` PNG of one result: core.render's overlay with the GUI's display defaults
    at the model's colour range and pixel threshold (equal to the GUI's PNG export)."""
    from core.render import render_result

    return render_result(result, model.display_range, model.thresholds.pixel, gt_mask=result.mask)


def annotated_map_image(result, model):
    """The annotated report image of one result (core.render.annotate over :func:`map_image`)."""
    from core.render import annotate

    thr = model.thresholds
    return annotate(map_image(result, model), result.name, result.verdict(thr), result.image_score, thr,
                    model.display_range, regions=result.regions(thr.pixel))


def report_rows(rows: list[dict], extras: dict) -> list:
    """core.report rows of CSV rows; ``extras``: path -> (label, is_defect, PNG bytes) of scored samples."""
    from core.report import ReportRow

    out = []
    for row in rows:
        label, is_defect, png = extras.get(row["path"], (None, None, None))
        mm2, px = row.get("largest_region_mm2"), row.get("largest_region_px")
        largest = f"{mm2} mm²" if mm2 not in ("", None) else (f"{px} px" if px not in ("", None, 0) else "")
        out.append(ReportRow(name=row["name"], verdict=row["verdict"],
                             image_score=float(row["image_score"]) if row["image_score"] != "" else None,
                             is_defect=is_defect, label=label,
                             regions=row["regions"] if row["regions"] != "" else None,
                             largest_region=largest, source=row["path"], error=row["error"], png=png))
    return out


def check_before_scoring(model, refs, where: str, rows: list) -> list:
    """The model/data check (core.compat) before a batch: each finding is logged as one warning
    line; samples lacking a modality the model needs become SKIPPED rows (appended to ``rows``)
    without a line each. Returns the refs left to score."""
    from core.compat import check_inputs, missing_reason
    from core.rows import error_row

    for finding in check_inputs(model, refs, where):
        log.warning("model/data check: %s", finding.message)
    keep = []
    for ref in refs:
        reason = missing_reason(model, ref)
        if reason:
            rows.append(error_row(ref.source(), ref.name, reason, model.model_id))
        else:
            keep.append(ref)
    return keep


def run(args) -> int:
    from core.commands._progress import cli_progress
    from core.compat import check_scores
    from core.data.dataset import collect_inputs
    from core.errors import UserError
    from core.model_io import load_model
    from core.naming import safe_name
    from core.outputs import check_output_dir, check_output_file, csv_safe, write_output
    from core.render import png_bytes, save_png
    from core.data.sample import label_is_defect
    from core.report import ReportHeader, utc_now, write_report
    from core.rows import REPORT_DIGITS, error_reason, error_row, result_row

    model = load_model(args.model)
    model.xyz_units = args.xyz_units
    apply_uncertain(model, args.uncertain)
    apply_min_area(model, args.min_defect_area)
    if args.csv:
        check_output_file(args.csv, "CSV file")
    if args.maps:
        check_output_dir(args.maps, "maps folder")
    if args.report:
        check_output_file(args.report, "HTML report")
    refs, bad_inputs = collect_inputs(args.inputs)
    rows = [error_row(path, Path(path).stem, reason, model.model_id) for path, reason in bad_inputs]
    for path, reason in bad_inputs:
        log.error("skipped: %s: %s", path, reason)
    refs = check_before_scoring(model, refs, ", ".join(map(str, args.inputs)), rows)

    def skip(_i, ref, exc) -> None:
        reason = error_reason(exc)
        if isinstance(exc, UserError):
            log.error("skipped: %s", exc)
        else:
            log.error("skipped: %s: %s", ref.source(), reason)
        rows.append(error_row(ref.source(), ref.name, reason, model.model_id))

    progress, sink = cli_progress()
    scores = []
    extras: dict[str, tuple] = {}  # path -> (label, is_defect, report PNG)
    try:
        for i, ref, result in model.score_each(refs, progress, "Scoring", on_error=skip):
            rows.append(result_row(ref, result, model, REPORT_DIGITS))
            scores.append(result.image_score)
            annotated = annotated_map_image(result, model) if args.report or (args.maps and args.annotate) else None
            if args.report:
                extras[ref.source()] = (ref.label, label_is_defect(ref.label), png_bytes(annotated))
            if args.maps:
                target = args.maps / f"{i:04d}_{safe_name(ref.name)}.png"
                try:
                    save_png(target, annotated if args.annotate else map_image(result, model))
                except OSError as exc:
                    raise UserError(f"{target}: cannot write the map ({exc.strerror or exc})") from None
    finally:
        sink.close()
    for finding in check_scores(model, scores):
        log.warning("model/data check: %s", finding.message)
    if not rows:
        raise UserError(f"no samples found in {', '.join(map(str, args.inputs))}")
    date = utc_now()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SCORE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({"date": date, **{k: csv_safe(v) for k, v in row.items()}} for row in rows)
    if args.csv:
        write_output(args.csv, buf.getvalue().encode(), "CSV file")
    else:
        print(buf.getvalue(), end="")
    if args.report:
        thr = model.thresholds
        header = ReportHeader(model=str(args.model), model_id=model.model_id, image_threshold=thr.image,
                              pixel_threshold=thr.pixel, uncertain_until=thr.uncertain_until,
                              min_defect_area=thr.min_defect_area, date=date)
        write_report(args.report, report_rows(rows, extras), header)
    scored = [r for r in rows if r["verdict"] != "SKIPPED"]
    failures = len(rows) - len(scored)
    ng = sum(r["verdict"] == "NG" for r in scored)
    unsure = sum(r["verdict"] == "UNCERTAIN" for r in scored)
    log.info("scored %d sample(s): %d NG, %s%d OK%s", len(scored), ng,
             f"{unsure} UNCERTAIN, " if unsure else "", len(scored) - ng - unsure,
             f", {failures} skipped" if failures else "")
    return 2 if failures else 0
