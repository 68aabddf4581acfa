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


REUSABLE_MODALITIES = ("xyz",)  # extractors whose per-sample features do not depend on the batch (FPFH, surface heights)


def _input_key(array: np.ndarray) -> bytes:
    """A digest of one extractor input (its dtype, shape and bytes)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.digest()


def known_features(samples: list[Sample], features: dict) -> dict:
    """{modality: {input digest: (grid*grid, dim) features}} of ``samples`` whose frozen ``features``
    ({modality: (B, grid*grid, dim)}) are extracted already, for the REUSABLE_MODALITIES: what
    :func:`extract_tokens` ``known`` takes."""
    out: dict = {}
    for m in REUSABLE_MODALITIES:
        if m in features:
            out[m] = {_input_key(a): features[m][i] for i, a in enumerate(modality_inputs(samples, m))}
    return out


def extract_tokens(
    extractors: dict,
    samples: list[Sample],
    grid: int,
    batch_size: int = 8,
    progress: Progress | None = None,
    stage: str = "Extracting features",
    timings: dict | None = None,
    known: dict | None = None,
) -> dict[str, np.ndarray]:
    """{modality: (B, grid*grid, dim) float32} of frozen features, in batches with progress.

    ``timings`` (optional) accumulates seconds per modality under "features_<modality>".
    ``known`` (:func:`known_features`): a sample whose input of a REUSABLE_MODALITIES modality is
    byte-identical to one extracted already takes those features instead of extracting them again
    (a synthetic defect that changes only the RGB image keeps its good part's point cloud); the
    result is the same, bit for bit, since those extractors treat each sample on its own."""
    p = ensure(progress)
    out = {m: np.zeros((len(samples), grid * grid, ex.dim), np.float32) for m, ex in extractors.items()}
    n = len(samples)
    inner = p.silent()  # extractors stop between their samples on cancel; this stage counts the steps
    for start in range(0, n, batch_size):
        p.update(stage, start, n)
        chunk = samples[start : start + batch_size]
        for m, ex in extractors.items():
            t0 = time.perf_counter()
            inputs = modality_inputs(chunk, m)
            todo = list(range(len(chunk)))
            if known and m in known:
                found = [known[m].get(_input_key(a)) for a in inputs]
                for i, f in enumerate(found):
                    if f is not None:
                        out[m][start + i] = f
                todo = [i for i, f in enumerate(found) if f is None]
            if todo:
                with torch.inference_mode():
                    feats = ex.extract([inputs[i] for i in todo], grid=grid, progress=inner)
                out[m][[start + i for i in todo]] = feats.flatten(2).transpose(1, 2).float().numpy()
            if timings is not None:
                key = f"features_{m}"
                timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
    p.update(stage, n, n)
    return out
