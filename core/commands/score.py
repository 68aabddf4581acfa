"""``lsfa score MODEL.lsfa INPUT... [--csv OUT.csv] [--maps DIR]``: score samples or folders."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("score", help="score single samples or folders with a fitted model")
    p.add_argument("model", type=Path, help="model file (.lsfa)")
    p.add_argument("inputs", type=Path, nargs="+", help="sample files or folders (any supported format)")
    p.add_argument("--csv", type=Path, help="write one row per sample here")
    p.add_argument("--maps", type=Path, help="write heatmap overlay PNGs into this folder")
    p.set_defaults(func=run)


COLUMNS = ["path", "name", "image_score", "verdict", "image_threshold", "pixel_threshold", "defect_pixels", "model_id"]


def map_image(result, model):
    """The ``--maps`` PNG of one result: core.render's overlay with the GUI's display defaults
    at the model's colour range and pixel threshold (equal to the GUI's PNG export)."""
    from core.render import render_result

    return render_result(result, model.display_range, model.thresholds.pixel, gt_mask=result.mask)


def run(args) -> int:
    from core.commands._progress import cli_progress
    from core.data.dataset import load_inputs
    from core.errors import UserError
    from core.model_io import load_model
    from core.model_file import atomic_write_bytes
    from core.naming import safe_name
    from core.render import save_png

    model = load_model(args.model)
    refs = load_inputs(args.inputs)
    if not refs:
        raise UserError(f"no samples found in {', '.join(map(str, args.inputs))}")
    if args.maps:
        args.maps.mkdir(parents=True, exist_ok=True)
    thr = model.thresholds
    rows, failed = [], []

    def skip(_i, _ref, exc) -> None:
        failed.append(exc)
        log.error("skipped: %s", exc)

    progress, sink = cli_progress()
    try:
        for i, ref, result in model.score_each(refs, progress, "Scoring", on_error=skip):
            defect = result.defect_mask(thr.pixel)
            rows.append({
                "path": ref.source(),
                "name": ref.name,
                "image_score": f"{result.image_score:.6g}",
                "verdict": result.verdict(thr),
                "image_threshold": f"{thr.image:.6g}",
                "pixel_threshold": f"{thr.pixel:.6g}",
                "defect_pixels": int(defect.sum()),
                "model_id": model.model_id,
            })
            if args.maps:
                save_png(args.maps / f"{i:04d}_{safe_name(ref.name)}.png", map_image(result, model))
    finally:
        sink.close()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if args.csv:
        atomic_write_bytes(args.csv, buf.getvalue().encode())
    else:
        print(buf.getvalue(), end="")
    ng = sum(r["verdict"] == "NG" for r in rows)
    log.info("scored %d sample(s): %d NG, %d OK%s", len(rows), ng, len(rows) - ng,
             f", {len(failed)} failed" if failed else "")
    return 2 if failed else 0
