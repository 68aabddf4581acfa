"""Memory-bank patches of the training images shifted by half a patch cell (``bank_shifts``).

A patch cell (8 px at 224 px / 28 cells) pools features of whatever crosses it; where a part's
silhouette, a hole or a print edge crosses a cell, the feature depends on *where* in the cell the
edge lies (the cell's phase). A few dozen training images cover these phases sparsely, so a good
part whose edge falls at an unseen phase scores like a defect. Copies of the prepared training
images shifted by half a cell (right, down, or both) add the other phases to every modality's
bank; the coreset keeps the bank's size, as with turned copies (core.rotations). Copies are made
of at most ``MAX_SHIFTED_IMAGES`` training images, so they add at most 3 × 60 feature extractions
to a fit. Measured in docs/evaluation.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from core.data.sample import Sample
from core.progress import Progress, ensure

STAGE = "Extracting features of shifted training images"
MAX_SHIFTED_IMAGES = 60  # copies are made of at most this many training images (evenly spread)


def shifted(sample: Sample, dy: int, dx: int) -> Sample:
    """The prepared sample with every H×W array moved by (dy, dx) pixels; vacated pixels are empty
    (zero: background RGB, invalid points)."""

    def move(a):
        if a is None:
            return None
        out = np.zeros_like(a)
        h, w = a.shape[:2]
        out[dy:, dx:] = a[: h - dy, : w - dx]
        return out

    return dataclasses.replace(sample, name=f"{sample.name} (shifted {dy},{dx} px)", rgb=move(sample.rgb),
                               xyz=move(sample.xyz), mask=move(sample.mask), roi=move(sample.roi))


def shift_offsets(config) -> list[tuple[int, int]]:
    """Pixel offsets of the copies: half a cell at the model image size."""
    half = max(1, round(config.image_size / config.grid / 2))
    return {0: [], 1: [(half, half)], 3: [(0, half), (half, 0), (half, half)]}[config.bank_shifts]


def shifted_patches(extractors: dict, samples: list[Sample], config, adapters: dict, modalities,
                    progress: Progress | None = None) -> dict[str, dict[str, np.ndarray]]:
    """{variant: {modality: (P, dim) float32}} patches of the scoring regions of shifted copies of
    ``samples``, for each variant in ``adapters`` ({name: Adapter or None}); batched, cancellable."""
    from core.tokens import extract_tokens, foreground, scoring_regions

    p = ensure(progress)
    if len(samples) > MAX_SHIFTED_IMAGES:  # larger training sets cover the phases themselves; bounds the fit time
        samples = [samples[i] for i in np.linspace(0, len(samples) - 1, MAX_SHIFTED_IMAGES).round().astype(int)]
    jobs = [(s, o) for o in shift_offsets(config) for s in samples]
    out: dict[str, dict[str, list]] = {name: {m: [] for m in modalities} for name in adapters}
    bs = config.batch_size
    for start in range(0, len(jobs), bs):
        p.update(STAGE, start, len(jobs))
        batch = [shifted(s, *o) for s, o in jobs[start : start + bs]]
        frozen = extract_tokens({m: extractors[m] for m in modalities}, batch, config.grid, bs, p.silent(), STAGE)
        fg = foreground(batch, config.grid)
        keep = scoring_regions(fg, config.grid, tuple(modalities))
        for name, adapter in adapters.items():
            tokens = frozen if adapter is None else adapter.apply(frozen, fg)
            for m in modalities:
                out[name][m].append(tokens[m][keep[m]])
    p.update(STAGE, len(jobs), len(jobs))
    return {name: {m: np.concatenate(v) if v else np.zeros((0, extractors[m].dim), np.float32) for m, v in per.items()}
            for name, per in out.items()}
