"""``lsfa score MODEL.lsfa INPUT... [--csv OUT.csv] [--maps DIR]``: score samples or folders.

One unusable input (missing file or partner file, corrupt file, wrong units) does not stop the
batch: it becomes a SKIPPED row with its reason, and the command exits 2 at the end."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from core.commands.fit import add_units_arg
from core.rows import COLUMNS  # noqa: F401  (the score CSV columns, also used by watch)

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("score", help="score single samples or folders with a fitted model")
    p.add_argument("model", type=Path, help="model file (.lsfa)")
    p.add_argument("inputs", type=Path, nargs="+", help="sample files or folders (any supported format)")
    p.add_argument("--csv", type=Path, help="write one row per sample here")
    p.add_argument("--maps", type=Path, help="write heatmap overlay PNGs into this folder")
    add_units_arg(p)
    add_uncertain_arg(p)
    p.set_defaults(func=run)


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
    (colours from the pixel threshold up to the top of the model's colour range) and the pixel
    threshold's outline (equal to the GUI's PNG export)."""
    from core.render import DEFAULT_FROM_THRESHOLD, range_from_threshold, render_result

    pixel = model.thresholds.pixel
    rng = range_from_threshold(model.display_range, pixel) if DEFAULT_FROM_THRESHOLD else tuple(model.display_range)
    return render_result(result, rng, pixel, gt_mask=result.mask)


def run(args) -> int:
    from core.commands._progress import cli_progress
    from core.data.dataset import collect_inputs
    from core.errors import UserError
    from core.model_io import load_model
    from core.naming import safe_name
    from core.outputs import check_output_dir, check_output_file, csv_safe, write_output
    from core.render import save_png
    from core.rows import error_reason, error_row, result_row

    model = load_model(args.model)
    model.xyz_units = args.xyz_units
    apply_uncertain(model, args.uncertain)
    if args.csv:
        check_output_file(args.csv, "CSV file")
    if args.maps:
        check_output_dir(args.maps, "maps folder")
    refs, bad_inputs = collect_inputs(args.inputs)
    rows = [error_row(path, Path(path).stem, reason, model.model_id) for path, reason in bad_inputs]
    for path, reason in bad_inputs:
        log.error("skipped: %s: %s", path, reason)

    def skip(_i, ref, exc) -> None:
        reason = error_reason(exc)
        if isinstance(exc, UserError):
            log.error("skipped: %s", exc)
        else:
            log.error("skipped: %s: %s", ref.source(), reason)
        rows.append(error_row(ref.source(), ref.name, reason, model.model_id))

    progress, sink = cli_progress()
    try:
        for i, ref, result in model.score_each(refs, progress, "Scoring", on_error=skip):
            rows.append(result_row(ref, result, model))
            if args.maps:
                target = args.maps / f"{i:04d}_{safe_name(ref.name)}.png"
                try:
                    save_png(target, map_image(result, model))
                except OSError as exc:
                    raise UserError(f"{target}: cannot write the map ({exc.strerror or exc})") from None
    finally:
        sink.close()
    if not refs and not bad_inputs:
        raise UserError(f"no samples found in {', '.join(map(str, args.inputs))}")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_safe(v) for k, v in row.items()} for row in rows)
    if args.csv:
        write_output(args.csv, buf.getvalue().encode(), "CSV file")
    else:
        print(buf.getvalue(), end="")
    scored = [r for r in rows if r["verdict"] != "SKIPPED"]
    failures = len(rows) - len(scored)
    ng = sum(r["verdict"] == "NG" for r in scored)
    unsure = sum(r["verdict"] == "UNCERTAIN" for r in scored)
    log.info("scored %d sample(s): %d NG, %s%d OK%s", len(scored), ng,
             f"{unsure} UNCERTAIN, " if unsure else "", len(scored) - ng - unsure,
             f", {failures} skipped" if failures else "")
    return 2 if failures else 0
