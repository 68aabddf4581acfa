"""``lsfa score MODEL.lsfa INPUT... [--csv OUT.csv] [--parquet OUT.parquet] [--maps DIR [--annotate]]
[--report OUT.html] [--engine local|ray [--address ADDR] [--workers N]]``: score samples or folders.

One unusable input (missing file or partner file, corrupt file, wrong units) does not stop the
batch: it becomes a SKIPPED row with its reason, and the command exits 2 at the end. The Ray
engine (:mod:`core.ray_engine`, imported only for ``--engine ray``) gives the same rows, in the
same order, spread over a Ray cluster's workers. The table files are written at the end, each
atomically: an interrupted run leaves none. Before scoring, the model/data check
(:mod:`core.compat`) logs one warning line per finding."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from core.commands.fit import add_roi_arg, add_units_arg
from core.rows import COLUMNS, SCORE_COLUMNS  # noqa: F401  (COLUMNS: also the watch log's)
from core.score_rows import annotated_map_image, map_image  # noqa: F401  (the --maps overlays, also used by watch)

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("score", help="score single samples or folders with a fitted model")
    p.add_argument("model", type=Path, help="model file (.lsfa)")
    p.add_argument("inputs", type=Path, nargs="+", help="sample files or folders (any supported format)")
    p.add_argument("--csv", type=Path, help="write one row per sample here")
    p.add_argument("--parquet", type=Path, help="write the same table as a Parquet file here (needs pyarrow)")
    p.add_argument("--maps", type=Path, help="write heatmap overlay PNGs into this folder")
    p.add_argument("--annotate", action="store_true",
                   help="--maps PNGs carry the sample name, verdict, score, thresholds, a colour bar and "
                        "numbered boxes around the defect regions (default: the plain overlay)")
    p.add_argument("--report", type=Path, metavar="OUT.html",
                   help="write a self-contained HTML report: summary counts, a confusion table when labels "
                        "are known, a score histogram and one row per sample with its annotated overlay")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: score here, one sample at a time (default); ray: spread the samples over "
                        "the workers of a Ray cluster (needs ray[data]; every node must see the inputs "
                        "and the maps folder at these paths)")
    p.add_argument("--address", metavar="ADDR",
                   help="with --engine ray: join this Ray cluster ('auto', HOST:6379 or ray://HOST:10001); "
                        "default: start a local Ray instance")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="with --engine ray: scoring workers (1 CPU each); default: one per CPU of the cluster")
    add_units_arg(p)
    add_uncertain_arg(p)
    add_min_area_arg(p)
    add_roi_arg(p, what="for this run it replaces the ROI stored in the model file (default: the stored one, "
                   "else the whole image)")
    p.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def add_min_area_arg(p) -> None:
    p.add_argument("--min-defect-area", type=int, metavar="PX",
                   help="a part whose largest defect region (8-connected pixels of the anomaly map at or above "
                        "the pixel threshold, carried back to the original image) is smaller than PX original "
                        "pixels is OK whatever its "
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


def apply_scoring_options(model, args) -> None:
    """The options ``lsfa score`` and ``lsfa watch`` share, applied to a loaded model:
    ``--xyz-units``, ``--uncertain``, ``--min-defect-area`` and ``--roi``."""
    model.xyz_units = args.xyz_units
    apply_uncertain(model, args.uncertain, args.no_uncertain)
    apply_min_area(model, args.min_defect_area)
    if getattr(args, "roi", None) is not None:
        from core.roi import read_roi

        model.set_roi(read_roi(args.roi), str(args.roi))


def add_uncertain_arg(p) -> None:
    band = p.add_mutually_exclusive_group()
    band.add_argument("--uncertain", nargs=2, type=float, metavar=("LOW", "HIGH"),
                      help="uncertain band of image scores (raw units, LOW < HIGH): a part is OK below LOW, "
                           "UNCERTAIN from LOW up to HIGH, NG at or above HIGH (LOW replaces the model's "
                           "image threshold). Default: the model's band, if it has one (lsfa fit --uncertain-band)")
    band.add_argument("--no-uncertain", action="store_true",
                      help="no uncertain band: OK below the model's image threshold, NG at or above it")


def apply_uncertain(model, band, no_band: bool = False) -> None:
    """Set the model's uncertain band from ``--uncertain LOW HIGH`` (None: leave it), or drop it
    (``--no-uncertain``); UserError if invalid."""
    from core.errors import UserError
    from core.thresholds import check_band

    if no_band:
        model.thresholds.uncertain_until = None
        return
    if band is None:
        return
    try:
        low, high = check_band(*band)
    except ValueError as exc:
        raise UserError(f"--uncertain: {exc}") from None
    model.thresholds.image = low
    model.thresholds.uncertain_until = high
    model.thresholds.source = "user (--uncertain)"


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
    line; samples lacking a modality the model needs, or whose image is not the size of the
    model's region of interest, become SKIPPED rows (appended to ``rows``) without a line each.
    Returns the refs left to score."""
    from core.compat import check_inputs, missing_reason, roi_reason
    from core.rows import error_row

    for finding in check_inputs(model, refs, where):
        log.warning("model/data check: %s", finding.message)
    keep = []
    for ref in refs:
        reason = missing_reason(model, ref) or roi_reason(model, ref)
        if reason:
            rows.append(error_row(ref.source(), ref.name, reason, model.model_id))
        else:
            keep.append(ref)
    return keep


def run(args) -> int:
    from core.commands._progress import cli_progress
    from core.compat import check_scores
    from core.data.dataset import collect_inputs
    from core.data.sample import label_is_defect
    from core.errors import UserError
    from core.model_file import read_model_bytes
    from core.model_io import load_model
    from core.outputs import check_output_dir, check_output_file, write_output
    from core.report import ReportHeader, utc_now, write_report
    from core.rows import csv_text, error_row, parquet_bytes, require_pyarrow
    from core.score_rows import REPORT_PNG, score_rows

    if args.engine != "ray" and (args.address or args.workers):
        raise UserError("--address and --workers are options of --engine ray")
    model_data = read_model_bytes(args.model) if args.engine == "ray" else None
    model = load_model(args.model, data=model_data)
    apply_scoring_options(model, args)
    if args.csv:
        check_output_file(args.csv, "CSV file")
    if args.parquet:
        require_pyarrow()
        check_output_file(args.parquet, "Parquet file")
    if args.maps:
        check_output_dir(args.maps, "maps folder")
    if args.report:
        check_output_file(args.report, "HTML report")
    refs, bad_inputs = collect_inputs(args.inputs)
    rows = [error_row(path, Path(path).stem, reason, model.model_id) for path, reason in bad_inputs]
    for path, reason in bad_inputs:
        log.error("skipped: %s: %s", path, reason)
    found = bool(refs or bad_inputs)
    refs = check_before_scoring(model, refs, ", ".join(map(str, args.inputs)), rows)

    progress, sink = cli_progress()
    try:
        if args.engine == "ray":
            from core.ray_engine import score_on_ray

            scored = score_on_ray(args.model, model_data, model, refs, maps=args.maps, address=args.address,
                                  workers=args.workers, progress=progress, annotate=args.annotate,
                                  report=bool(args.report))
            for _i, row in scored:
                if row["error"]:
                    log.error("skipped: %s: %s", row["path"], row["error"])
        else:
            scored = score_rows(model, refs, maps=args.maps, progress=progress, annotate=args.annotate,
                                report=bool(args.report))
        rows += [row for _i, row in scored]
    finally:
        sink.close()
    if not found:
        raise UserError(f"no samples found in {', '.join(map(str, args.inputs))}")
    pngs = {row["path"]: row.pop(REPORT_PNG) for row in rows if REPORT_PNG in row}
    scores = [float(r["image_score"]) for r in rows if r["verdict"] != "SKIPPED" and r["image_score"] != ""]
    for finding in check_scores(model, scores):
        log.warning("model/data check: %s", finding.message)
    date = utc_now()
    text = csv_text(rows, date)
    if args.parquet:
        write_output(args.parquet, parquet_bytes(rows, date), "Parquet file")
    if args.csv:
        write_output(args.csv, text.encode(), "CSV file")
    elif not args.parquet:
        print(text, end="")
    if args.report:
        by_path = {ref.source(): ref for ref in refs}
        extras = {path: (by_path[path].label, label_is_defect(by_path[path].label), png)
                  for path, png in pngs.items() if path in by_path}
        thr = model.thresholds
        header = ReportHeader(model=str(args.model), model_id=model.model_id, image_threshold=thr.image,
                              pixel_threshold=thr.pixel, uncertain_until=thr.uncertain_until,
                              min_defect_area=thr.min_defect_area, date=date)
        write_report(args.report, report_rows(rows, extras), header)
    scored_rows = [r for r in rows if r["verdict"] != "SKIPPED"]
    failures = len(rows) - len(scored_rows)
    ng = sum(r["verdict"] == "NG" for r in scored_rows)
    unsure = sum(r["verdict"] == "UNCERTAIN" for r in scored_rows)
    log.info("scored %d sample(s): %d NG, %s%d OK%s", len(scored_rows), ng,
             f"{unsure} UNCERTAIN, " if unsure else "", len(scored_rows) - ng - unsure,
             f", {failures} skipped" if failures else "")
    return 2 if failures else 0
