"""Bring a loaded sample onto the model grid: preprocessing (background removal, square
padding) followed by resizing to S×S. Shared by fitting, evaluation, scoring and the GUI."""

from __future__ import annotations

from pathlib import Path

from core.data.sample import Sample
from core.user_cache import user_cache_dir


def default_cache_dir() -> Path:
    """Per-user cache for preprocessed samples (``$LSFA_CACHE_DIR`` or ~/.cache/lsfa-inspector)."""
    return user_cache_dir()


def prepare_sample(
    sample: Sample, size: int, preprocess: bool = True, cache_dir: Path | None = None
) -> Sample:
    """Preprocess (if asked) and resize to size×size: RGB bicubic, xyz/mask/roi nearest (the
    ROI takes exactly the mask's path: zero padding, then nearest resizing).
    ``meta["grid"]`` is the :class:`core.grid_map.GridMap` from the original image to this grid."""
    return prepare_sample_sizes(sample, (size,), preprocess, cache_dir)[0]


def prepare_sample_sizes(
    sample: Sample, sizes, preprocess: bool = True, cache_dir: Path | None = None
) -> list[Sample]:
    """:func:`prepare_sample` on several grid sizes (an ensemble's members): the preprocessing
    runs once, then the padded sample is resized to each size."""
    from dataclasses import replace

    from core.data.preprocess import pad_to_square, preprocess as run_preprocess, square_padding
    from core.data.resize import resize_sample
    from core.grid_map import GridMap

    height, width = sample.shape
    if preprocess:
        sample = run_preprocess(sample, cache_dir=cache_dir)
        pad = sample.meta["preprocess"]["pad"]
        side, top, left = pad["side"], pad["top"], pad["left"]
    else:
        side, top, left = square_padding(height, width)
        sample = replace(
            sample,
            rgb=pad_to_square(sample.rgb, side, top, left),
            xyz=pad_to_square(sample.xyz, side, top, left),
            mask=pad_to_square(sample.mask, side, top, left),
            roi=pad_to_square(sample.roi, side, top, left),
        )
    out = []
    for size in sizes:
        resized = resize_sample(sample, size)
        resized.meta["grid"] = GridMap(height, width, side, top, left, size)
        out.append(resized)
    return out
