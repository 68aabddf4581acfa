"""Shared by the bank-copy tests: fit a small dataset with and without an option, score two test samples."""

from __future__ import annotations

from core.config import FitConfig
from core.data.dataset import open_dataset
from core.pipeline import fit


def scores_and_bank(root, category: str, labels: tuple[str, str], cache_dir, **options) -> tuple[tuple[float, float], int]:
    """((image score of the test sample labelled labels[0], of labels[1]), RGB bank size) of a
    frozen single-model fit without the self-check (2000-patch banks) with the FitConfig ``options``."""
    refs = {r.label: r for r in open_dataset(root).samples(category, "test")}
    cfg = FitConfig(adapt=False, self_check=False, min_bank_size=2000, cache_dir=str(cache_dir), ensemble=[],
                    **options)
    model = fit(root, category, cfg)
    first, second = model.score_refs([refs[labels[0]], refs[labels[1]]])
    return (first.image_score, second.image_score), model.info["bank_sizes"]["rgb"]
