"""The CSV rows of scored samples: one column set for ``lsfa score``, ``lsfa watch`` and the
GUI's watch log (the verdict itself comes from :mod:`core.thresholds` via SampleResult), and
the ``lsfa score`` table as CSV text or Parquet bytes."""

from __future__ import annotations

import csv
import io

from core.errors import UserError
from core.outputs import csv_safe

__all__ = ["COLUMNS", "SCORE_COLUMNS", "SKIPPED", "REPORT_DIGITS", "result_row", "error_row", "error_reason",
           "csv_text", "parquet_bytes", "require_pyarrow"]

COLUMNS = ["path", "name", "image_score", "verdict", "image_threshold", "uncertain_until", "pixel_threshold",
           "min_defect_area", "defect_pixels", "regions", "largest_region_px", "largest_region_mm2", "model_id", "error"]
SCORE_COLUMNS = ["date", *COLUMNS]  # lsfa score's CSV: the time each row was made (ISO 8601 UTC) first
REPORT_DIGITS = 4  # significant digits of the floats in lsfa score's CSV (report grade)
SKIPPED = "SKIPPED"  # the verdict of a sample that could not be scored (its reason in ``error``)


def result_row(ref, result, model, digits: int = 6) -> dict:
    """The row of one scored sample at the model's thresholds, floats to ``digits`` significant digits."""
    thr = model.thresholds

    def num(value: float) -> str:
        return f"{value:.{digits}g}"

    regions = result.regions(thr.pixel)
    largest = regions[0] if regions else None
    return {
        "path": ref.source(),
        "name": ref.name,
        "image_score": num(result.image_score),
        "verdict": result.verdict(thr),
        "image_threshold": num(thr.image),
        "uncertain_until": "" if thr.uncertain_until is None else num(thr.uncertain_until),
        "pixel_threshold": num(thr.pixel),
        "min_defect_area": thr.min_defect_area or "",
        "defect_pixels": sum(r.area_px for r in regions),  # original pixels
        "regions": len(regions),
        "largest_region_px": largest.area_px if largest else 0,
        "largest_region_mm2": "" if largest is None or largest.area_mm2 is None else num(largest.area_mm2),
        "model_id": model.model_id,
        "error": "",
    }


def error_row(path: str, name: str, reason: str, model_id: str) -> dict:
    """The row of a sample that could not be scored (verdict SKIPPED, the reason in ``error``)."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(path=path, name=name, verdict=SKIPPED, model_id=model_id, error=reason)
    return row


def error_reason(exc: BaseException) -> str:
    """The ``error`` text of a sample that failed: a UserError's problem (it names the file), a
    MemoryError, or any other exception's type and message."""
    if isinstance(exc, UserError):
        return str(getattr(exc, "problem", None) or exc)
    if isinstance(exc, MemoryError):
        return "not enough memory to score it"
    return f"{type(exc).__name__}: {exc}"


def csv_text(rows: list[dict], date: str = "") -> str:
    """The rows as ``lsfa score``'s CSV text (``SCORE_COLUMNS``: header + one line per row, the
    batch's ``date`` first; cells made formula-safe)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SCORE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({"date": date, **{k: csv_safe(row[k]) for k in COLUMNS}} for row in rows)
    return buf.getvalue()


_FLOAT_COLUMNS = ("image_score", "image_threshold", "uncertain_until", "pixel_threshold", "largest_region_mm2")
_INT_COLUMNS = ("min_defect_area", "defect_pixels", "regions", "largest_region_px")


def require_pyarrow():
    """The ``pyarrow`` module, or a UserError saying how to get it (Parquet output needs it)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UserError("--parquet needs pyarrow, which is not installed "
                        "(pip install pyarrow, or 'ray[data]' which brings it)") from None
    return pyarrow


def parquet_bytes(rows: list[dict], date: str = "") -> bytes:
    """The rows as a Parquet file: the CSV columns (``SCORE_COLUMNS``) in the same order, scores,
    thresholds and region areas in mm² as float64 (raw score units), pixel counts as int64,
    empty cells as nulls."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    def column(name):
        values = [date if name == "date" else row[name] for row in rows]
        if name in _FLOAT_COLUMNS:
            return pa.array([None if v == "" else float(v) for v in values], type=pa.float64())
        if name in _INT_COLUMNS:
            return pa.array([None if v == "" else int(v) for v in values], type=pa.int64())
        return pa.array([str(v) for v in values], type=pa.string())

    table = pa.table({name: column(name) for name in SCORE_COLUMNS})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
