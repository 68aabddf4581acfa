"""``lsfa eval MODEL.lsfa DATA_ROOT --category C``: metrics on the test split."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from core.commands.fit import add_units_arg

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("eval", help="score test/* and print I-AUROC, P-AUROC, AUPRO@0.3")
    p.add_argument("model", type=Path, help="model file (.lsfa)")
    p.add_argument("data_root", type=Path)
    p.add_argument("--category", "-c", required=True)
    p.add_argument("--json", type=Path, help="also write the metrics as JSON here")
    p.add_argument("--strict", action="store_true",
                   help="refuse a model fitted on another category (default: a warning)")
    add_units_arg(p)
    p.set_defaults(func=run)


def _fmt(v) -> str:
    return "not defined" if v is None else f"{v:.3f}"


def run(args) -> int:
    from core.commands._progress import cli_progress
    from core.errors import UserError
    from core.model_io import load_model
    from core.outputs import check_output_file, write_output
    from core.pipeline import evaluate

    model = load_model(args.model)
    model.xyz_units = args.xyz_units
    fitted_on = model.info.get("category")
    if fitted_on and fitted_on != args.category:
        text = f"{args.model}: fitted on category {fitted_on!r}, evaluated on {args.category!r}"
        if args.strict:
            raise UserError(f"{text} (--strict)")
        log.warning("warning: %s; the metrics say little about either", text)
    if args.json:
        check_output_file(args.json, "JSON report")
    progress, sink = cli_progress()
    try:
        report = evaluate(model, args.data_root, args.category, progress, keep_results=False)
    finally:
        sink.close()
    print(f"category {report.category}: {report.n_good} good, {report.n_defect} defective test samples")
    print(f"  I-AUROC   {_fmt(report.image_auroc)}")
    print(f"  P-AUROC   {_fmt(report.pixel_auroc)}")
    print(f"  AUPRO@0.3 {_fmt(report.aupro_30)}")
    for m, v in report.modality_image_auroc.items():
        print(f"  I-AUROC {m} only: {_fmt(v)}")
    for t, v in report.defect_type_image_auroc.items():
        print(f"  I-AUROC good vs {t}: {_fmt(v)}")
    if report.n_defect == 0:
        print("  (no defective test samples: AUROC and AUPRO are not defined)")
    stages = ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in report.timings.items())
    print(f"  {report.seconds_per_sample * 1000:.1f} ms per sample ({stages})")
    if args.json:
        data = report.to_dict()
        data["model"] = str(args.model)
        data["model_id"] = model.model_id
        write_output(args.json, json.dumps(data, indent=2).encode(), "JSON report")
    return 0
