"""RGB memory-bank patches of the training images turned by 90° steps (``--rgb-rotations``).

Parts that arrive in any in-plane orientation show each local pattern (an edge, a highlight, a
print) at angles that a few dozen training images cover sparsely. The CNN's patch features are
not rotation-invariant, so a good part's rim at an angle no training image had scores like a
defect. Turning the prepared model-grid image by 90°, 180° and 270° is exact (no interpolation)
and fills those gaps; the memory bank's coreset (``--coreset`` / ``--min-bank``) keeps the bank's
size, so the search has no more patches to look through. The 3D features (FPFH, heights above the local plane) are
already invariant to in-plane rotation, so only the RGB bank gets the copies. Measured in
docs/evaluation.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from core.data.sample import Sample
from core.progress import Progress, ensure

STAGE = "Extracting features of turned training images"


def turned(sample: Sample, quarter_turns: int) -> Sample:
    """The prepared sample with every H×W array turned by ``quarter_turns`` × 90° (counter-clockwise)."""

    def turn(a):
        return None if a is None else np.ascontiguousarray(np.rot90(a, quarter_turns, axes=(0, 1)))

    return dataclasses.replace(sample, name=f"{sample.name} (turned {90 * quarter_turns}°)", rgb=turn(sample.rgb),
                               xyz=turn(sample.xyz), mask=turn(sample.mask), roi=turn(sample.roi))


def turned_rgb_patches(extractor, samples: list[Sample], config, adapters: dict,
                       progress: Progress | None = None) -> dict[str, np.ndarray]:
    """{variant: (P, dim) float32} RGB patches of the scoring regions of ``samples`` (prepared,
    model grid) turned by each 90° step that ``config.rgb_rotations`` adds, for each variant in
    ``adapters`` ({name: Adapter, or None for frozen features}). Extracted in batches of
    ``config.batch_size`` with progress and cancellation; only the scored cells are kept."""
    from core.tokens import extract_tokens, foreground, scoring_regions

    p = ensure(progress)
    steps = {2: (2,), 4: (1, 2, 3)}.get(config.rgb_rotations, ())
    jobs = [(s, k) for k in steps for s in samples]
    out: dict[str, list[np.ndarray]] = {name: [] for name in adapters}
    bs = config.batch_size
    for start in range(0, len(jobs), bs):
        p.update(STAGE, start, len(jobs))
        batch = [turned(s, k) for s, k in jobs[start : start + bs]]
        frozen = extract_tokens({"rgb": extractor}, batch, config.grid, bs, p.silent(), STAGE)
        fg = foreground(batch, config.grid)
        keep = scoring_regions(fg, config.grid, ("rgb",))["rgb"]
        for name, adapter in adapters.items():
            tokens = frozen if adapter is None else adapter.apply(frozen, fg)
            out[name].append(tokens["rgb"][keep])
    p.update(STAGE, len(jobs), len(jobs))
    return {name: np.concatenate(parts) if parts else np.zeros((0, extractor.dim), np.float32)
            for name, parts in out.items()}
