"""Training parts scored leave-one-out: more good parts for the seeded image threshold.

A training part's own patches sit in the memory banks, so scored as it is it scores about 0. Scored
against the banks without its own rows (:meth:`core.scoring.memory_bank.MemoryBank.nearest_excluding`)
it scores like a good part the fit has not seen. On the real MVTec 3D-AD tire the 10 held-out
(``validation/good``) parts score higher than the good test parts, while training tires scored this
way look like the test ones (docs/evaluation.md, "leave-one-out"); adding them to the held-out good
parts when the image threshold is seeded makes it depend less on which few parts were held out.

Which parts: every ``EVERY``-th training part, at most ``MAX_PARTS`` of them spread evenly over the
training set (stated, not tuned). Their patches come from the fit's own feature extraction; each
bank's spread (the relative patch distance's unit) stays that of the whole bank.
"""

from __future__ import annotations

import numpy as np

from core.progress import Progress

EVERY = 3
MAX_PARTS = 60
STAGE = "Self-check: training parts scored leave-one-out"


def chosen_parts(n_train: int) -> np.ndarray:
    """Indices (int64, ascending) of the training parts scored leave-one-out among ``n_train``."""
    n = min(-(-int(n_train) // EVERY), MAX_PARTS) if n_train > 1 else 0
    if n == 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, n_train - 1, n).round().astype(np.int64))


def scorable(parts: np.ndarray, banks) -> np.ndarray:
    """The ``parts`` that leave at least one row in every bank of ``banks`` (MemoryBanks with
    owners) when their own are left out: a part cannot be scored against nothing."""
    banks = list(banks)
    keep = [i for i in parts if all(b.owners is not None and (b.owners != i).any() for b in banks)]
    return np.asarray(keep, np.int64)


def set_owners(bank, regions: np.ndarray) -> None:
    """Record on ``bank`` (from :meth:`MemoryBank.build`, which keeps its ``rows``) which training
    sample each of its rows came from: ``regions`` (N, cells) bool are the cells whose patches (in
    row-major order) the bank was built from; rows beyond them (e.g. shifted or turned copies) are
    marked -1 (unknown)."""
    sample_of_patch = np.nonzero(regions)[0]
    rows = bank.rows
    owners = np.full(len(rows), -1, np.int64)
    known = rows < len(sample_of_patch)
    owners[known] = sample_of_patch[rows[known]]
    bank.owners = owners


def left_out_maps(model, samples: list, features: dict, parts: np.ndarray, progress: Progress | None = None) -> dict:
    """{modality: (len(samples), S, S) raw maps} of training ``samples`` (the training parts
    numbered ``parts``), each scored without its own bank rows. ``features``: their frozen features."""
    return model.modality_maps_batched(samples, progress, STAGE, features, leave_out=parts)[1]


def fused_scores(model, candidate, maps: dict, roi, image_units=None) -> np.ndarray:
    """(n,) fused image scores of the left-out parts' ``maps`` (:func:`left_out_maps`; ``roi``
    their regions of interest, or None) with ``candidate``'s fusion, in the units its scores of the
    held-out good parts are in; ``image_units``: the units image score's fitted units
    (:meth:`core.model.Model.fit_image_units`), when the model has one."""
    return np.asarray(model.fuse_maps(maps, candidate.fusion, roi, image_units)[0], float)


__all__ = ["EVERY", "MAX_PARTS", "chosen_parts", "scorable", "set_owners", "left_out_maps", "fused_scores"]
