"""``lsfa score MODEL.lsfa INPUT... [--csv OUT.csv] [--parquet OUT.parquet] [--maps DIR]
[--engine local|ray [--address ADDR] [--workers N]]``: score samples or folders.

One unusable input (missing file or partner file, corrupt file, wrong units) does not stop the
batch: it becomes a SKIPPED row with its reason, and the command exits 2 at the end. The Ray
engine (:mod:`core.ray_engine`, imported only for ``--engine ray``) gives the same rows, in the
same order, spread over a Ray cluster's workers. The table files are written at the end, each
atomically: an interrupted run leaves none."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from core.commands.fit import add_units_arg
from core.rows import COLUMNS  # noqa: F401  (the score CSV columns, also used by watch)
from core.score_rows import map_image  # noqa: F401  (the --maps overlay, also used by watch)

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("score", help="score single samples or folders with a fitted model")
    p.add_argument("model", type=Path, help="model file (.lsfa)")
    p.add_argument("inputs", type=Path, nargs="+", help="sample files or folders (any supported format)")
    p.add_argument("--csv", type=Path, help="write one row per sample here")
    p.add_argument("--parquet", type=Path, help="write the same table as a Parquet file here (needs pyarrow)")
    p.add_argument("--maps", type=Path, help="write heatmap overlay PNGs into this folder")
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
    p.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


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


def run(args) -> int:
    from core.commands._progress import cli_progress
    from core.data.dataset import collect_inputs
    from core.errors import UserError
    from core.model_file import read_model_bytes
    from core.model_io import load_model
    from core.outputs import check_output_dir, check_output_file, write_output
    from core.rows import csv_text, error_row, parquet_bytes, require_pyarrow
    from core.score_rows import score_rows

    if args.engine != "ray" and (args.address or args.workers):
        raise UserError("--address and --workers are options of --engine ray")
    model_data = read_model_bytes(args.model) if args.engine == "ray" else None
    model = load_model(args.model, data=model_data)
    model.xyz_units = args.xyz_units
    apply_uncertain(model, args.uncertain)
    if args.csv:
        check_output_file(args.csv, "CSV file")
    if args.parquet:
        require_pyarrow()
        check_output_file(args.parquet, "Parquet file")
    if args.maps:
        check_output_dir(args.maps, "maps folder")
    refs, bad_inputs = collect_inputs(args.inputs)
    rows = [error_row(path, Path(path).stem, reason, model.model_id) for path, reason in bad_inputs]
    for path, reason in bad_inputs:
        log.error("skipped: %s: %s", path, reason)

    progress, sink = cli_progress()
    try:
        if args.engine == "ray":
            from core.ray_engine import score_on_ray

            scored = score_on_ray(args.model, model_data, model, refs, maps=args.maps, address=args.address,
                                  workers=args.workers, progress=progress)
            for _i, row in scored:
                if row["error"]:
                    log.error("skipped: %s: %s", row["path"], row["error"])
        else:
            scored = score_rows(model, refs, maps=args.maps, progress=progress)
        rows += [row for _i, row in scored]
    finally:
        sink.close()
    if not refs and not bad_inputs:
        raise UserError(f"no samples found in {', '.join(map(str, args.inputs))}")
    text = csv_text(rows)
    if args.parquet:
        write_output(args.parquet, parquet_bytes(rows), "Parquet file")
    if args.csv:
        write_output(args.csv, text.encode(), "CSV file")
    elif not args.parquet:
        print(text, end="")
    scored_rows = [r for r in rows if r["verdict"] != "SKIPPED"]
    failures = len(rows) - len(scored_rows)
    ng = sum(r["verdict"] == "NG" for r in scored_rows)
    unsure = sum(r["verdict"] == "UNCERTAIN" for r in scored_rows)
    log.info("scored %d sample(s): %d NG, %s%d OK%s", len(scored_rows), ng,
             f"{unsure} UNCERTAIN, " if unsure else "", len(scored_rows) - ng - unsure,
             f", {failures} skipped" if failures else "")
    return 2 if failures else 0
