"""The CSV rows of scored samples: one column set for ``lsfa score``, ``lsfa watch`` and the
GUI's watch log (the verdict itself comes from :mod:`core.thresholds` via SampleResult), and
the ``lsfa score`` table as CSV text or Parquet bytes."""

from __future__ import annotations

import csv
import io

from core.errors import UserError
from core.outputs import csv_safe

__all__ = ["COLUMNS", "SKIPPED", "result_row", "error_row", "error_reason", "csv_text", "parquet_bytes",
           "require_pyarrow"]

COLUMNS = ["path", "name", "image_score", "verdict", "image_threshold", "uncertain_until", "pixel_threshold",
           "defect_pixels", "model_id", "error"]
SKIPPED = "SKIPPED"  # the verdict of a sample that could not be scored (its reason in ``error``)


def result_row(ref, result, model) -> dict:
    """The row of one scored sample at the model's thresholds."""
    thr = model.thresholds
    return {
        "path": ref.source(),
        "name": ref.name,
        "image_score": f"{result.image_score:.6g}",
        "verdict": result.verdict(thr),
        "image_threshold": f"{thr.image:.6g}",
        "uncertain_until": "" if thr.uncertain_until is None else f"{thr.uncertain_until:.6g}",
        "pixel_threshold": f"{thr.pixel:.6g}",
        "defect_pixels": int(result.defect_mask(thr.pixel).sum()),
        "model_id": model.model_id,
        "error": "",
    }


def error_row(path: str, name: str, reason: str, model_id: str) -> dict:
    """The row of a sample that could not be scored (verdict SKIPPED, the reason in ``error``)."""
    return {"path": path, "name": name, "image_score": "", "verdict": SKIPPED, "image_threshold": "",
            "uncertain_until": "", "pixel_threshold": "", "defect_pixels": "", "model_id": model_id,
            "error": reason}


def error_reason(exc: BaseException) -> str:
    """The ``error`` text of a sample that failed: a UserError's problem (it names the file), a
    MemoryError, or any other exception's type and message."""
    if isinstance(exc, UserError):
        return str(getattr(exc, "problem", None) or exc)
    if isinstance(exc, MemoryError):
        return "not enough memory to score it"
    return f"{type(exc).__name__}: {exc}"


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV text (header + one line per row; cells made formula-safe)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_safe(v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


_FLOAT_COLUMNS = ("image_score", "image_threshold", "uncertain_until", "pixel_threshold")
_INT_COLUMNS = ("defect_pixels",)


def require_pyarrow():
    """The ``pyarrow`` module, or a UserError saying how to get it (Parquet output needs it)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UserError("--parquet needs pyarrow, which is not installed "
                        "(pip install pyarrow, or 'ray[data]' which brings it)") from None
    return pyarrow


def parquet_bytes(rows: list[dict]) -> bytes:
    """The rows as a Parquet file: the CSV columns in the same order, scores and thresholds as
    float64 (raw score units) and ``defect_pixels`` as int64, empty cells as nulls."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    def column(name):
        values = [row[name] for row in rows]
        if name in _FLOAT_COLUMNS:
            return pa.array([None if v == "" else float(v) for v in values], type=pa.float64())
        if name in _INT_COLUMNS:
            return pa.array([None if v == "" else int(v) for v in values], type=pa.int64())
        return pa.array([str(v) for v in values], type=pa.string())

    table = pa.table({name: column(name) for name in COLUMNS})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
