"""Extra memory-bank patches from copies of the prepared training images.

Two kinds of copy fill gaps that a few dozen training images leave (measured in
docs/evaluation.md; both are options, not defaults):

* **turned** (``--rgb-rotations 2|4``): the image turned by 90° steps, exact (no interpolation).
  The CNN's patch features are not rotation-invariant, so a good part's rim, highlight or print at
  an angle no training image had scores like a defect. The 3D features (FPFH, heights above the
  local plane) are already invariant to in-plane rotation, so only the RGB bank gets these.
* **shifted** (``--bank-shifts 1|3``): every array moved by half a patch cell (4 px at 224 px /
  28 cells) right, down or both. A cell pools whatever crosses it, so where an edge, a hole or a
  print crosses a cell its feature depends on where in the cell the edge lies; the copies add the
  other positions to every modality's bank. Made of at most ``MAX_SHIFTED_IMAGES`` training
  images, so they add at most 3 × 60 feature extractions to a fit.

The memory bank's coreset keeps each bank at the size it has without the copies, so the search
has no more patches to look through. Adaptors, when kept, are trained on the images as captured
and applied to the copies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from core.data.sample import Sample
from core.progress import Progress, ensure

TURNED_STAGE = "Extracting features of turned training images"
SHIFTED_STAGE = "Extracting features of shifted training images"
MAX_SHIFTED_IMAGES = 60  # shifted copies are made of at most this many training images (evenly spread)
QUARTER_TURNS = {1: (), 2: (2,), 4: (1, 2, 3)}  # rgb_rotations -> quarter turns added
SHIFT_STEPS = {0: (), 1: ((1, 1),), 3: ((0, 1), (1, 0), (1, 1))}  # bank_shifts -> (dy, dx) in half cells


def _map_arrays(sample: Sample, name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Sample:
    """``sample`` with ``fn`` applied to every H×W(×C) array it carries."""

    def apply(a):
        return None if a is None else fn(a)

    return dataclasses.replace(sample, name=f"{sample.name} ({name})", rgb=apply(sample.rgb),
                               xyz=apply(sample.xyz), mask=apply(sample.mask), roi=apply(sample.roi))


def turned(sample: Sample, quarter_turns: int) -> Sample:
    """The prepared sample with every H×W array turned by ``quarter_turns`` × 90° (counter-clockwise)."""
    return _map_arrays(sample, f"turned {90 * quarter_turns}°",
                       lambda a: np.ascontiguousarray(np.rot90(a, quarter_turns, axes=(0, 1))))


def shifted(sample: Sample, dy: int, dx: int) -> Sample:
    """The prepared sample with every H×W array moved by (dy, dx) pixels; vacated pixels are empty
    (zero: background RGB, invalid points)."""

    def move(a):
        out = np.zeros_like(a)
        h, w = a.shape[:2]
        out[dy:, dx:] = a[: h - dy, : w - dx]
        return out

    return _map_arrays(sample, f"shifted {dy},{dx} px", move)


def shift_offsets(config) -> list[tuple[int, int]]:
    """Pixel offsets of the shifted copies: half a cell at the model image size."""
    half = max(1, round(config.image_size / config.grid / 2))
    return [(dy * half, dx * half) for dy, dx in SHIFT_STEPS[config.bank_shifts]]


def _copy_patches(extractors: dict, copies: list[Callable[[], Sample]], modalities: tuple, config,
                  adapters: dict, positions: dict, p: Progress, stage: str) -> dict[str, dict[str, list[np.ndarray]]]:
    """{variant: {modality: [(P, dim) float32, ...]}} patches of the scoring regions of the
    samples that ``copies`` make (each made only when its batch is extracted), for each variant in
    ``adapters`` ({name: Adapter, or None for frozen features}), with that variant's position
    channel from ``positions`` ({name: core.position_channel.PositionChannel or None});
    batched, cancellable."""
    from core.tokens import as_banked, extract_tokens, foreground, scoring_regions

    out: dict[str, dict[str, list]] = {name: {m: [] for m in modalities} for name in adapters}
    bs = config.batch_size
    for start in range(0, len(copies), bs):
        p.update(stage, start, len(copies))
        batch = [make() for make in copies[start : start + bs]]
        frozen = extract_tokens({m: extractors[m] for m in modalities}, batch, config.grid, bs, p.silent(), stage)
        fg = foreground(batch, config.grid)
        keep = scoring_regions(fg, config.grid, modalities)
        for name, adapter in adapters.items():
            tokens = as_banked(frozen, fg, adapter, positions.get(name), config.grid)
            for m in modalities:
                out[name][m].append(tokens[m][keep[m]])
    p.update(stage, len(copies), len(copies))
    return out


def copy_patches(extractors: dict, samples: list[Sample], config, adapters: dict, modalities,
                 progress: Progress | None = None, positions: dict | None = None) -> dict[str, dict[str, list[np.ndarray]]]:
    """{variant: {modality: [(P, dim) float32, ...]}} extra bank patches of the turned
    (``config.rgb_rotations``, RGB only) and shifted (``config.bank_shifts``) copies of the prepared
    training ``samples`` (with each variant's position channel from ``positions``, where it has one);
    empty lists where ``config`` asks for no copies."""
    positions = positions or {}
    p = ensure(progress)
    out: dict[str, dict[str, list]] = {name: {m: [] for m in modalities} for name in adapters}

    def add(found):
        for name, per in found.items():
            for m, parts in per.items():
                out[name][m].extend(parts)

    turns = QUARTER_TURNS[config.rgb_rotations] if "rgb" in modalities else ()
    if turns:
        copies = [lambda s=s, k=k: turned(s, k) for k in turns for s in samples]
        add(_copy_patches(extractors, copies, ("rgb",), config, adapters, positions, p, TURNED_STAGE))
    offsets = shift_offsets(config)
    if offsets:
        if len(samples) > MAX_SHIFTED_IMAGES:  # larger training sets cover the positions themselves
            samples = [samples[i] for i in np.linspace(0, len(samples) - 1, MAX_SHIFTED_IMAGES).round().astype(int)]
        copies = [lambda s=s, o=o: shifted(s, *o) for o in offsets for s in samples]
        add(_copy_patches(extractors, copies, tuple(modalities), config, adapters, positions, p, SHIFTED_STAGE))
    return out
