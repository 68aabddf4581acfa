"""The one overlay renderer (Qt-free) for the CLI's ``--maps`` PNGs, the GUI's 2D view and the
GUI's PNG export: heatmap through a 256×3 lookup table (Turbo by default) over the RGB image
(or a depth rendering), outline of the predicted defect region at the pixel threshold, and
outline of the ground truth. Raw anomaly maps (raw score units) and a colour range (low, high).

Given the sample as loaded (``original``), everything is drawn on the original image: the map
and the ground truth are carried back from the model grid (core.grid_map, via the result's
``grid``), so overlays have the original image's size. Without it, on the model grid.

With the same sample, thresholds, colour range and display defaults, the CLI and the GUI
export therefore write identical pixels (tests/test_render_parity.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from core.data.sample import valid_points
from core.turbo import TURBO_LUT

PREDICTION_RGB = (0, 229, 255)  # cyan: predicted defect outline
GROUND_TRUTH_RGB = (60, 220, 60)  # green: ground-truth outline
DEFAULT_OPACITY = 0.5  # heatmap opacity (0..1)
DEFAULT_FADE = True  # heatmap alpha grows with the score (low end of the range transparent)
DEFAULT_FROM_THRESHOLD = True  # the colour range starts at the pixel threshold (see range_from_threshold)

__all__ = [
    "TURBO_LUT", "PREDICTION_RGB", "GROUND_TRUTH_RGB", "DEFAULT_OPACITY", "DEFAULT_FADE", "DEFAULT_FROM_THRESHOLD",
    "range_from_threshold",
    "lut_indices", "colorize", "outline", "predicted_mask", "outline_rgba", "depth_image",
    "base_image", "Layers", "drawn_on_original", "layers", "compose_overlay", "render_result", "png_bytes", "save_png", "annotate",
    "VERDICT_RGB",
]

VERDICT_RGB = {"OK": (46, 125, 50), "NG": (183, 28, 28), "UNCERTAIN": (230, 81, 0), "SKIPPED": (97, 97, 97)}
REGION_BOX_RGB = (255, 255, 255)
ANNOTATED_MIN_WIDTH = 384  # the overlay is scaled up by a whole factor to at least this width (px)
_BAR_WIDTH, _BAR_GAP, _MARGIN, _FONT_PX = 16, 6, 8, 13


def range_from_threshold(rng: tuple[float, float], pixel_threshold: float | None) -> tuple[float, float]:
    """The colour range (raw score units) from the pixel threshold up to ``rng``'s high end, so
    only scores at or above the threshold get colour (with fade, lower ones stay transparent);
    ``rng`` itself without a threshold or with one at or above the high end."""
    lo, hi = float(rng[0]), float(rng[1])
    if pixel_threshold is None or not np.isfinite(pixel_threshold) or not float(pixel_threshold) < hi:
        return (lo, hi)
    return (float(pixel_threshold), hi)


def lut_indices(amap: np.ndarray, rng: tuple[float, float], n: int = 256) -> np.ndarray:
    """Map raw scores to LUT indices 0..n-1 (clipped to the range), uint8/uint16."""
    lo, hi = rng
    scale = (n - 1) / (hi - lo) if hi > lo else 0.0
    idx = np.asarray(amap, np.float32) - np.float32(lo)
    np.multiply(idx, np.float32(scale), out=idx)
    np.clip(idx, 0, n - 1, out=idx)
    return idx.astype(np.uint8 if n <= 256 else np.uint16)


def colorize(
    amap: np.ndarray,
    rng: tuple[float, float],
    lut: np.ndarray,
    below: float | None = None,
    fade: bool = False,
) -> np.ndarray:
    """H×W×4 uint8 RGBA heatmap; pixels with score < ``below`` are fully transparent.

    ``fade``: alpha grows with the score's position in the range (low end transparent), so
    normal areas keep showing the image and high scores stand out.
    """
    n = len(lut)
    idx = lut_indices(amap, rng, n)
    table = np.empty((n, 4), np.uint8)  # RGBA per index: one lookup per pixel
    table[:, :3] = lut
    table[:, 3] = (np.arange(n, dtype=np.uint16) * 255 // (n - 1)).astype(np.uint8) if fade else 255
    rgba = np.take(table, idx, axis=0)
    if below is not None:
        rgba[..., 3][np.asarray(amap) < below] = 0
    return rgba


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean edge pixels of a mask (the mask minus its erosion), ``width`` pixels thick."""
    mask = np.asarray(mask, bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    edge = np.zeros_like(mask)
    if rows.size == 0:
        return edge
    # only the mask's bounding box (+ width) is eroded: outside it the mask is empty anyway
    box = (slice(max(0, rows[0] - width), rows[-1] + 1 + width), slice(max(0, cols[0] - width), cols[-1] + 1 + width))
    crop = mask[box]
    edge[box] = crop & ~ndimage.binary_erosion(crop, iterations=width, border_value=0)
    return edge


def predicted_mask(amap: np.ndarray, pixel_threshold: float | None) -> np.ndarray:
    """Pixels at or above the pixel threshold (all False if no threshold)."""
    if pixel_threshold is None:
        return np.zeros(np.shape(amap), bool)
    return np.asarray(amap) >= pixel_threshold


def outline_rgba(edge: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """H×W×4 uint8 image: ``rgb`` on edge pixels, transparent elsewhere."""
    out = np.zeros(edge.shape + (4,), np.uint8)
    out[edge] = (*rgb, 255)
    return out


def depth_image(xyz: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """H×W×3 uint8 grey rendering of z (near = bright) for samples without RGB."""
    z = np.asarray(xyz, np.float32)[..., 2]
    valid = valid_points(xyz) if valid is None else valid
    out = np.zeros(z.shape, np.uint8)
    if valid.any():
        zv = z[valid]
        lo, hi = float(zv.min()), float(zv.max())
        scale = 205.0 / (hi - lo) if hi > lo else 0.0
        out[valid] = (255 - (zv - lo) * scale).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=-1)


def base_image(result) -> np.ndarray:
    """H×W×3 uint8 under the heatmap: the RGB image, else a depth rendering, else black."""
    if getattr(result, "rgb", None) is not None:
        return result.rgb
    if getattr(result, "xyz", None) is not None:
        return depth_image(result.xyz, getattr(result, "valid", None))
    return np.zeros(np.shape(result.anomaly_map) + (3,), np.uint8)


@dataclass
class Layers:
    """What a view draws, all on one H×W grid: the original image's pixels when ``on_original``,
    else the model grid's."""

    base: np.ndarray  # H×W×3 uint8: RGB, else a depth rendering, else black
    amap: np.ndarray | None  # H×W float32 raw scores; None before scoring
    gt: np.ndarray | None  # H×W bool ground truth; None when unknown
    on_original: bool  # drawn from the loaded sample (original pixels)


def drawn_on_original(result, original) -> bool:
    """Whether :func:`layers` draws ``result`` on ``original`` (the loaded sample): it is given
    and the result's grid (or, without one, its map) has the original image's size."""
    if original is None:
        return False
    if result is None:
        return True
    grid = getattr(result, "grid", None)
    shape = grid.shape if grid is not None else np.shape(result.anomaly_map)
    return tuple(shape) == tuple(original.shape)


def layers(result=None, original=None) -> Layers:
    """The layers of a sample: from ``original`` (the loaded Sample, original resolution) with
    the result's map carried back by its ``grid``; from the result alone (model grid) when the
    original is not given or does not match it (:func:`drawn_on_original`). One is required."""
    if not drawn_on_original(result, original):
        amap = np.asarray(result.anomaly_map, np.float32)
        return Layers(base_image(result), amap, getattr(result, "mask", None), False)
    amap = None
    if result is not None:
        grid = getattr(result, "grid", None)
        amap = grid.scores_to_original(result.anomaly_map) if grid is not None else np.asarray(result.anomaly_map, np.float32)
    return Layers(base_image(original), amap, original.mask, True)


def compose_overlay(
    base_rgb: np.ndarray,
    amap: np.ndarray,
    rng: tuple[float, float],
    lut: np.ndarray,
    opacity: float,
    pixel_threshold: float | None = None,
    gt_mask: np.ndarray | None = None,
    hide_below_threshold: bool = False,
    fade: bool = False,
) -> np.ndarray:
    """H×W×3 uint8: base image + heatmap (alpha ``opacity``) + predicted and GT outlines."""
    base = np.asarray(base_rgb, np.float32)
    heat = colorize(amap, rng, lut, pixel_threshold if hide_below_threshold else None, fade)
    alpha = (heat[..., 3:4].astype(np.float32) / 255.0) * float(opacity)
    out = base * (1.0 - alpha) + heat[..., :3].astype(np.float32) * alpha
    out = out.astype(np.uint8)
    if pixel_threshold is not None:
        out[outline(predicted_mask(amap, pixel_threshold), 1)] = PREDICTION_RGB
    if gt_mask is not None:
        out[outline(gt_mask, 1)] = GROUND_TRUTH_RGB
    return out


def render_result(
    result,
    rng: tuple[float, float],
    pixel_threshold: float | None,
    lut: np.ndarray = TURBO_LUT,
    opacity: float = DEFAULT_OPACITY,
    gt_mask: np.ndarray | None = None,
    hide_below_threshold: bool = False,
    fade: bool = DEFAULT_FADE,
    original=None,
) -> np.ndarray:
    """H×W×3 uint8 overlay of a scored sample (``SampleResult`` or alike): :func:`base_image`
    + heatmap over the colour range ``rng`` + outline of the region >= ``pixel_threshold``
    (none if None) + ``gt_mask`` outline. The defaults are the GUI's display defaults.
    ``original`` (default: ``result.original``): the loaded sample; then the overlay is drawn on
    the original image (:func:`layers`) and a given ``gt_mask`` stands for the original's mask."""
    original = getattr(result, "original", None) if original is None else original
    drawn = layers(result, original)
    amap, base = drawn.amap, drawn.base
    if gt_mask is not None and drawn.on_original:
        gt_mask = drawn.gt if drawn.gt is not None else _mask_to_original(result, gt_mask)
    return compose_overlay(
        base, amap, rng, lut,
        opacity=opacity,
        pixel_threshold=pixel_threshold,
        gt_mask=gt_mask,
        hide_below_threshold=hide_below_threshold,
        fade=fade,
    )


def _mask_to_original(result, mask: np.ndarray) -> np.ndarray:
    """A mask on the result's grid carried to the original image (as it is without a grid)."""
    grid = getattr(result, "grid", None)
    return mask if grid is None else grid.mask_to_original(mask)


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of an H×W×3 uint8 image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Atomic PNG write."""
    from core.atomic import atomic_write

    atomic_write(path, png_bytes(image), fsync=True)


def _font(size: int = _FONT_PX):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def annotate(
    overlay: np.ndarray,
    name: str,
    verdict: str | None,
    image_score: float | None,
    thresholds,
    rng: tuple[float, float],
    lut: np.ndarray = TURBO_LUT,
    regions=(),
    boxes: bool = True,
) -> np.ndarray:
    """H'×W'×3 uint8 report image of an overlay (:func:`render_result`): the overlay scaled up
    by a whole factor to at least ANNOTATED_MIN_WIDTH px, a numbered box around each defect
    region (``core.regions.Region``, 1 = largest), a header with the sample name, verdict,
    image score and ``thresholds`` (image / pixel / uncertain band / minimum defect area, raw
    units), and a vertical colour bar of ``lut`` over ``rng`` (raw units) with ticks at both
    ends and at the pixel threshold. ``boxes``: draw the region boxes (their bounding boxes are
    in the overlay's pixels; False when the overlay is on another grid)."""
    from PIL import Image, ImageDraw

    h, w = overlay.shape[:2]
    k = max(1, -(-ANNOTATED_MIN_WIDTH // w))
    body = Image.fromarray(np.ascontiguousarray(overlay)).resize((w * k, h * k), Image.NEAREST)
    draw = ImageDraw.Draw(body)
    font = _font()
    for n, region in enumerate(regions if boxes else (), 1):
        top, left, bottom, right = region.bbox
        box = (left * k - 2, top * k - 2, right * k + 1, bottom * k + 1)
        draw.rectangle(box, outline=REGION_BOX_RGB, width=1)
        draw.text((box[0], max(0, box[1] - _FONT_PX - 1)), str(n), fill=REGION_BOX_RGB, font=font,
                  stroke_width=2, stroke_fill=(0, 0, 0))
    lines = _header_lines(name, verdict, image_score, thresholds, regions)
    line_h = _FONT_PX + 4
    header_h = _MARGIN * 2 + line_h * len(lines)
    label_w = 64
    width = w * k + _BAR_GAP + _BAR_WIDTH + label_w + _MARGIN
    canvas = Image.new("RGB", (width, header_h + h * k + _MARGIN), (255, 255, 255))
    canvas.paste(body, (0, header_h))
    draw = ImageDraw.Draw(canvas)
    for i, (text, colour) in enumerate(lines):
        draw.text((_MARGIN, _MARGIN + i * line_h), text, fill=colour, font=font)
    _colour_bar(draw, w * k + _BAR_GAP, header_h, h * k, rng, lut, getattr(thresholds, "pixel", None), font)
    return np.asarray(canvas)


def _header_lines(name, verdict, score, thr, regions) -> list[tuple[str, tuple[int, int, int]]]:
    first = f"{name}   {verdict or '–'}" + ("" if score is None else f"   score {score:.4g}")
    parts = [f"image threshold {thr.image:.4g}" if getattr(thr, "image", None) is not None else "",
             f"pixel threshold {thr.pixel:.4g}" if getattr(thr, "pixel", None) is not None else ""]
    if getattr(thr, "uncertain_until", None) is not None:
        parts.append(f"uncertain until {thr.uncertain_until:.4g}")
    if getattr(thr, "min_defect_area", 0):
        parts.append(f"min. defect area {thr.min_defect_area} px")
    regions = list(regions)
    if regions:
        big = regions[0]
        size = f"{big.area_mm2:.3g} mm2" if big.area_mm2 is not None else f"{big.area_px} px"  # the font has no ²
        third = f"{len(regions)} defect region(s), largest (1) {size}"
    else:
        third = "no defect region"
    return [(first, VERDICT_RGB.get(verdict or "", (0, 0, 0))), (", ".join(p for p in parts if p), (60, 60, 60)),
            (third, (60, 60, 60))]


def _colour_bar(draw, x: int, y: int, height: int, rng, lut, pixel_threshold, font) -> None:
    """Vertical bar, high end at the top, with tick labels (raw units)."""
    lo, hi = rng
    n = len(lut)
    for row in range(height):
        idx = int(round((height - 1 - row) * (n - 1) / max(height - 1, 1)))
        draw.line([(x, y + row), (x + _BAR_WIDTH - 1, y + row)], fill=tuple(int(c) for c in lut[idx]))
    draw.rectangle((x, y, x + _BAR_WIDTH - 1, y + height - 1), outline=(0, 0, 0))
    ticks = [(hi, 0), (lo, height - 1)]
    if pixel_threshold is not None and hi > lo and lo <= pixel_threshold <= hi:
        ticks.append((pixel_threshold, int(round((hi - pixel_threshold) / (hi - lo) * (height - 1)))))
    for value, row in ticks:
        draw.line([(x + _BAR_WIDTH, y + row), (x + _BAR_WIDTH + 3, y + row)], fill=(0, 0, 0))
        ty = min(max(y + row - _FONT_PX // 2, y - _FONT_PX // 2), y + height - _FONT_PX)
        draw.text((x + _BAR_WIDTH + 5, ty), f"{value:.3g}", fill=(0, 0, 0), font=font)

