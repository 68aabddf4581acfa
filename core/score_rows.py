"""The per-sample work of ``lsfa score``: score numbered SampleRefs into result rows (a SKIPPED
row for a sample that cannot be scored) and write their ``--maps`` PNGs. The local engine runs
it over the whole input list; each Ray actor (:mod:`core.ray_engine`) runs it over its batches,
so both engines give the same columns (regions, report-grade rounding) and the same PNGs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.errors import UserError
from core.naming import safe_name
from core.progress import Progress
from core.rows import REPORT_DIGITS, error_reason, error_row, result_row

__all__ = ["map_image", "annotated_map_image", "map_path", "score_rows", "REPORT_PNG"]

REPORT_PNG = "report_png"  # with report=True: the key of a scored row's annotated overlay (PNG bytes)

log = logging.getLogger(__name__)


def map_range(model) -> tuple[float, float]:
    """The colour range of the ``--maps`` PNGs: the GUI's default (from the pixel threshold up to
    the top of the model's colour range when DEFAULT_FROM_THRESHOLD, else the model's range)."""
    from core.render import DEFAULT_FROM_THRESHOLD, range_from_threshold

    if DEFAULT_FROM_THRESHOLD:
        return range_from_threshold(model.display_range, model.thresholds.pixel)
    return tuple(model.display_range)


def map_image(result, model, original=None):
    """The ``--maps`` PNG of one result: core.render's overlay with the GUI's display defaults
    (:func:`map_range`) and the pixel threshold's outline (equal to the GUI's PNG export); at
    original resolution when the loaded sample is known (``original``, else ``result.original``)."""
    from core.render import render_result

    return render_result(result, map_range(model), model.thresholds.pixel, gt_mask=result.mask, original=original)


def annotated_map_image(result, model, original=None):
    """The annotated report image of one result (core.render.annotate over :func:`map_image`;
    its colour bar shows the same range; region boxes in original pixels, as the overlay)."""
    from core.render import annotate, drawn_on_original

    thr = model.thresholds
    original = result.original if original is None else original
    # region boxes are in original pixels: drawn unless the overlay is on the model grid
    boxes = result.grid is None or drawn_on_original(result, original)
    return annotate(map_image(result, model, original), result.name, result.verdict(thr), result.image_score, thr,
                    map_range(model), regions=result.regions(thr.pixel), boxes=boxes)


def map_path(maps: Path, index: int, ref) -> Path:
    """Where the ``--maps`` PNG of input number ``index`` goes (input order, then its name)."""
    return Path(maps) / f"{index:04d}_{safe_name(ref.name)}.png"


def score_rows(model, refs: Sequence, indices: Sequence[int] | None = None, maps: Path | None = None,
               progress: Progress | None = None, stage: str = "Scoring", *, digits: int = REPORT_DIGITS,
               annotate: bool = False, report: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield (index, row) for each SampleRef, in order: its result row (floats to ``digits``
    significant digits; its map written into ``maps``, annotated when ``annotate``), or a
    SKIPPED row with the reason when it cannot be scored (a UserError or MemoryError, logged).
    ``indices``: the inputs' numbers (default 0, 1, ...). ``report``: each scored row also
    carries its annotated overlay as PNG bytes under :data:`REPORT_PNG` (not a CSV column)."""
    from core.render import png_bytes, save_png

    indices = list(range(len(refs))) if indices is None else list(indices)
    skipped: list[tuple[int, dict]] = []

    def skip(pos, ref, exc) -> None:
        reason = error_reason(exc)
        if isinstance(exc, UserError):
            log.error("skipped: %s", exc)
        else:
            log.error("skipped: %s: %s", ref.source(), reason)
        skipped.append((indices[pos], error_row(ref.source(), ref.name, reason, model.model_id)))

    drawn = maps is not None or report
    for pos, ref, result in model.score_each(refs, progress, stage, on_error=skip, keep_original=drawn):
        yield from skipped
        skipped.clear()
        annotated = annotated_map_image(result, model) if report or (maps is not None and annotate) else None
        if maps is not None:
            target = map_path(maps, indices[pos], ref)
            try:
                save_png(target, annotated if annotate else map_image(result, model))
            except OSError as exc:
                raise UserError(f"{target}: cannot write the map ({exc.strerror or exc})") from None
        result.original = None  # drawn: the loaded sample is not kept
        row = result_row(ref, result, model, digits)
        if report:
            row[REPORT_PNG] = png_bytes(annotated)
        yield indices[pos], row
    yield from skipped
