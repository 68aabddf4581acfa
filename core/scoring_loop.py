"""The one scoring loop over samples (read ahead, progress, cancellation, skipping bad samples),
shared by a single model (:class:`core.model.Model`) and an ensemble (:class:`core.ensemble.EnsembleModel`).
A subclass provides ``prepare_for_scoring(sample, features)``, ``score_loaded(loaded, keep_original)``
and ``features_ahead()``."""

from __future__ import annotations

from core.data.sample import Sample
from core.errors import UserError
from core.progress import Progress, ensure
from core.results import SampleResult


class ScoringLoop:
    """score / score_each / score_refs in terms of the subclass's prepare and score steps."""

    def score(self, sample: Sample, keep_original: bool = False) -> SampleResult:
        """Score one loaded sample (any size; it is preprocessed and resized here).
        ``keep_original``: the result keeps the loaded sample (``result.original``) for drawing
        at original resolution. torch runs on the threads :meth:`score_each` gives it, so a sample
        scores the same bits here and in a batch."""
        from core.cpu import ENGINE_TORCH_THREADS
        from core.scoring._threads import torch_threads_at_most

        with torch_threads_at_most(ENGINE_TORCH_THREADS):
            return self.score_loaded(self.prepare_for_scoring(sample), keep_original)

    def score_each(self, refs, progress: Progress | None = None, stage: str = "Scoring", on_error=None,
                   keep_original: bool = False, prefetch: int | None = None):
        """Yield (index, ref, SampleResult) per SampleRef, with progress and cancellation per
        sample: the one scoring loop of the CLI, the GUI and evaluation.

        ``on_error(index, ref, exc)``: called for a UserError (unreadable or unusable sample) or
        a MemoryError (a sample too large to score), which then skips that sample; without it
        the error propagates. ``keep_original``: see :meth:`score`. ``prefetch``: samples read,
        preprocessed (and their :meth:`features_ahead` extracted) ahead in a background thread
        while the current one is scored (core.prefetch; default ``$LSFA_PREFETCH`` or 1, 0: one after
        the other); results, errors and progress are the same either way.
        """
        from core.prefetch import default_depth, prefetching

        p = ensure(progress)
        n = len(refs)
        depth = default_depth() if prefetch is None else prefetch
        ahead = self.features_ahead() if depth > 0 and n > 1 else ()
        with prefetching(refs, lambda ref: self.prepare_for_scoring(ref.load(), ahead), depth, p) as loaded:
            for i, (ref, prepared) in enumerate(loaded):
                p.update(stage, i, n, getattr(ref, "name", ""))
                try:
                    result = self.score_loaded(prepared(), keep_original)
                except (UserError, MemoryError) as exc:
                    if on_error is None:
                        raise
                    on_error(i, ref, exc)
                    continue
                yield i, ref, result
        p.update(stage, n, n)

    def score_refs(self, refs, progress: Progress | None = None, stage: str = "Scoring"):
        """Yield a SampleResult per SampleRef (:meth:`score_each` without skipping)."""
        for _i, _ref, result in self.score_each(refs, progress, stage):
            yield result


__all__ = ["ScoringLoop"]
