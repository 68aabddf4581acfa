"""Bring a loaded sample onto the model grid: preprocessing (background removal, square
padding), the model's crop around the part (core.object_frame), then resizing to S×S. Shared by
fitting, evaluation, scoring and the GUI."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from core.data.sample import Sample
from core.object_frame import ObjectFrame
from core.user_cache import user_cache_dir

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Per-user cache for preprocessed samples (``$LSFA_CACHE_DIR`` or ~/.cache/lsfa-inspector)."""
    return user_cache_dir()


def prepare_sample(
    sample: Sample, size: int, preprocess: bool = True, cache_dir: Path | None = None,
    frame: ObjectFrame | None = None,
) -> Sample:
    """Preprocess (if asked), crop to ``frame`` (the model's square around the part,
    core.object_frame; None: the whole padded image) and resize to size×size: RGB bicubic,
    xyz/mask/roi nearest (the ROI takes exactly the mask's path: zero padding, crop, then nearest
    resizing). ``meta["grid"]`` is the :class:`core.grid_map.GridMap` from the original image to
    this grid."""
    return prepare_sample_sizes(sample, (size,), preprocess, cache_dir, frame)[0]


def _on_square(sample: Sample, side: int, top: int, left: int) -> Sample:
    """``sample``'s arrays placed on a zero side×side square with their pixel (0, 0) at (top, left)
    (:func:`core.data.preprocess.pad_to_square`: padding, or with negative offsets a crop)."""
    from dataclasses import replace

    from core.data.preprocess import pad_to_square

    return replace(sample, **{k: pad_to_square(getattr(sample, k), side, top, left)
                              for k in ("rgb", "xyz", "mask", "roi")})


def padded_sample(sample: Sample, preprocess: bool = True, cache_dir: Path | None = None):
    """(sample preprocessed (if asked) and zero-padded to a square, its side, top, left), pixels."""
    from core.data.preprocess import preprocess as run_preprocess, square_padding

    if preprocess:
        sample = run_preprocess(sample, cache_dir=cache_dir)
        pad = sample.meta["preprocess"]["pad"]
        return sample, pad["side"], pad["top"], pad["left"]
    side, top, left = square_padding(*sample.shape)
    return _on_square(sample, side, top, left), side, top, left


def _extent(sample: Sample, top: int, left: int, height: int, width: int):
    """The part's extent (core.object_frame.part_extent) of a padded sample whose original
    ``height``×``width`` pixels lie at (``top``, ``left``): its point cloud's foreground, or
    without a cloud the part found in the RGB image (core.rgb_foreground, on the original pixels,
    not the padding; centred on its bounding box, core.object_frame.box_extent); None when there
    is none."""
    from core.data.sample import finite_valid_points
    from core.object_frame import box_extent, part_extent
    from core.rgb_foreground import rgb_foreground

    if sample.xyz is not None:
        return part_extent(finite_valid_points(sample.xyz))
    if sample.rgb is None:
        return None
    found = rgb_foreground(sample.rgb[top:top + height, left:left + width])
    if found is None:
        return None
    foreground = np.zeros(sample.rgb.shape[:2], bool)
    foreground[top:top + height, left:left + width] = found
    return box_extent(foreground)


def part_extent_px(sample: Sample, preprocess: bool = True, cache_dir: Path | None = None):
    """(radius, square side) in original pixels after preprocessing and padding: the part's
    extent, the largest distance from its foreground's centre to a foreground point
    (:func:`_extent`; None when no part is found), and the padded square's side."""
    from core.cpu import single_thread_blas

    height, width = sample.shape
    with single_thread_blas():  # as prepare_sample_sizes
        padded, side, top, left = padded_sample(sample, preprocess, cache_dir)
        extent = _extent(padded, top, left, height, width)
    return (None if extent is None else extent[2]), side


def prepare_sample_sizes(
    sample: Sample, sizes, preprocess: bool = True, cache_dir: Path | None = None,
    frame: ObjectFrame | None = None,
) -> list[Sample]:
    """:func:`prepare_sample` on several grid sizes (an ensemble's members): the preprocessing
    and the crop run once, then the square is resized to each size. BLAS runs on one thread
    meanwhile (:func:`core.cpu.single_thread_blas`: the background removal's small products gain
    nothing from a second one, whose spinning took as much CPU again)."""
    from core.cpu import single_thread_blas

    with single_thread_blas():
        return _prepared_sizes(sample, sizes, preprocess, cache_dir, frame)


def _prepared_sizes(sample: Sample, sizes, preprocess: bool, cache_dir: Path | None,
                    frame: ObjectFrame | None) -> list[Sample]:
    from core.data.resize import resize_sample
    from core.grid_map import GridMap

    height, width = sample.shape
    sample, side, top, left = padded_sample(sample, preprocess, cache_dir)
    extent = None if frame is None else _extent(sample, top, left, height, width)
    window = None if frame is None else frame.window(extent, side)
    if window is not None and frame.cuts(extent):
        log.warning("%s: the part reaches beyond the model's %d px square around the part (it is larger "
                    "than every training part); what lies outside the square is not inspected",
                    sample.source(), frame.side_px)
    if window is not None:
        t0, l0 = window
        side = frame.side_px
        sample = _on_square(sample, side, -t0, -l0)
        top, left = top - t0, left - l0
    out = []
    for size in sizes:
        resized = resize_sample(sample, size)
        resized.meta["grid"] = GridMap(height, width, side, top, left, size)
        out.append(resized)
    return out
