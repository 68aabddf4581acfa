"""The per-sample work of ``lsfa score``: score numbered SampleRefs into result rows (a SKIPPED
row for a sample that cannot be scored) and write their ``--maps`` PNGs. The local engine runs
it over the whole input list; each Ray actor (:mod:`core.ray_engine`) runs it over its batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.errors import UserError
from core.naming import safe_name
from core.progress import Progress
from core.rows import error_reason, error_row, result_row

__all__ = ["map_image", "map_path", "score_rows"]

log = logging.getLogger(__name__)


def map_image(result, model):
    """The ``--maps`` PNG of one result: core.render's overlay with the GUI's display defaults
    at the model's colour range and pixel threshold (equal to the GUI's PNG export)."""
    from core.render import render_result

    return render_result(result, model.display_range, model.thresholds.pixel, gt_mask=result.mask)


def map_path(maps: Path, index: int, ref) -> Path:
    """Where the ``--maps`` PNG of input number ``index`` goes (input order, then its name)."""
    return Path(maps) / f"{index:04d}_{safe_name(ref.name)}.png"


def score_rows(model, refs: Sequence, indices: Sequence[int] | None = None, maps: Path | None = None,
               progress: Progress | None = None, stage: str = "Scoring") -> Iterator[tuple[int, dict]]:
    """Yield (index, row) for each SampleRef, in order: its result row (and its map written
    into ``maps``), or a SKIPPED row with the reason when it cannot be scored (a UserError or
    MemoryError, logged). ``indices``: the inputs' numbers (default 0, 1, ...)."""
    from core.render import save_png

    indices = list(range(len(refs))) if indices is None else list(indices)
    skipped: list[tuple[int, dict]] = []

    def skip(pos, ref, exc) -> None:
        reason = error_reason(exc)
        if isinstance(exc, UserError):
            log.error("skipped: %s", exc)
        else:
            log.error("skipped: %s: %s", ref.source(), reason)
        skipped.append((indices[pos], error_row(ref.source(), ref.name, reason, model.model_id)))

    for pos, ref, result in model.score_each(refs, progress, stage, on_error=skip):
        yield from skipped
        skipped.clear()
        if maps is not None:
            target = map_path(maps, indices[pos], ref)
            try:
                save_png(target, map_image(result, model))
            except OSError as exc:
                raise UserError(f"{target}: cannot write the map ({exc.strerror or exc})") from None
        yield indices[pos], result_row(ref, result, model)
    yield from skipped
