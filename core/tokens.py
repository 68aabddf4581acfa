"""Frozen patch tokens for a batch of model-grid samples, plus the foreground cells, and the
tokens as a model's memory banks hold them."""

from __future__ import annotations

import time

import numpy as np
import torch

from core.data.sample import Sample
from core.progress import Progress, ensure


def modality_inputs(samples: list[Sample], modality: str) -> list[np.ndarray]:
    """The per-sample arrays an extractor of ``modality`` consumes (uint8 RGB / float32 xyz)."""
    key = "rgb" if modality == "rgb" else "xyz"
    arrays = [getattr(s, key) for s in samples]
    for s, a in zip(samples, arrays):
        if a is None:
            from core.errors import DataError

            raise DataError(s.source(), f"sample has no {'RGB image' if key == 'rgb' else 'point cloud (xyz)'}")
    return arrays


def foreground(samples: list[Sample], grid: int) -> np.ndarray:
    """(B, grid*grid) bool: cells holding measured 3D points; all True for samples without xyz."""
    from core.features.pooling import foreground_cells

    out = np.ones((len(samples), grid * grid), dtype=bool)
    for i, s in enumerate(samples):
        valid = s.valid
        if valid is not None:
            out[i] = foreground_cells(valid, grid).reshape(-1)
    return out


def scoring_regions(fg: np.ndarray, grid: int, modalities) -> dict[str, np.ndarray]:
    """{modality: (B, grid*grid) bool} cells whose patches enter the memory bank and are scored.

    xyz: the cells holding 3D points (``fg``). RGB: the same cells with enclosed gaps filled, so
    a hole through the part (no 3D points, table removed by preprocessing) is still seen by the
    RGB branch. Samples without xyz have every cell in ``fg`` already.
    """
    from scipy.ndimage import binary_fill_holes

    out = {}
    for m in modalities:
        if m == "rgb":
            grids = fg.reshape(-1, grid, grid)
            out[m] = np.stack([binary_fill_holes(g) for g in grids]).reshape(fg.shape) if len(grids) else fg.copy()
        else:
            out[m] = fg
    return out


def as_banked(frozen: dict, fg: np.ndarray, adapter, position, grid: int) -> dict:
    """Frozen tokens {modality: (B, grid*grid, D)} as a model's memory banks hold them: through its
    LSFA ``adapter`` (when it has one; ``fg`` the (B, grid*grid) foreground cells), then with its
    ``position`` channel (core.position_channel; when it has one)."""
    tokens = frozen if adapter is None else adapter.apply(frozen, fg)
    return tokens if position is None else position.apply(tokens, grid)


def extract_tokens(
    extractors: dict,
    samples: list[Sample],
    grid: int,
    batch_size: int = 8,
    progress: Progress | None = None,
    stage: str = "Extracting features",
    timings: dict | None = None,
) -> dict[str, np.ndarray]:
    """{modality: (B, grid*grid, dim) float32} of frozen features, in batches with progress.

    ``timings`` (optional) accumulates seconds per modality under "features_<modality>"."""
    p = ensure(progress)
    out = {m: np.zeros((len(samples), grid * grid, ex.dim), np.float32) for m, ex in extractors.items()}
    n = len(samples)
    inner = p.silent()  # extractors stop between their samples on cancel; this stage counts the steps
    for start in range(0, n, batch_size):
        p.update(stage, start, n)
        chunk = samples[start : start + batch_size]
        for m, ex in extractors.items():
            t0 = time.perf_counter()
            with torch.inference_mode():
                feats = ex.extract(modality_inputs(chunk, m), grid=grid, progress=inner)
            out[m][start : start + len(chunk)] = feats.flatten(2).transpose(1, 2).float().numpy()
            if timings is not None:
                key = f"features_{m}"
                timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
    p.update(stage, n, n)
    return out
