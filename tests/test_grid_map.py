"""Model grid <-> original image (core.grid_map): maps, masks, regions, defect pixels and the
--maps PNGs at original resolution."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from core.data.sample import Sample
from core.grid_map import GridMap
from core.prepare import prepare_sample
from core.regions import find_regions


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def demo_defect(height: int = 200, width: int = 150):
    """A generated demo sample with a crack, cropped to height×width (not square)."""
    from core.demo.sample import render_sample

    s = render_sample(5, "puck", "test/crack", 0, size=256)
    top, left = (256 - height) // 2, (256 - width) // 2
    crop = (slice(top, top + height), slice(left, left + width))
    mask = s.mask[crop] > 0 if s.mask.dtype != bool else s.mask[crop]
    return Sample("crack_000", s.rgb[crop], s.xyz[crop], mask, "crack")


def test_prepare_records_the_grid_map():
    sample = demo_defect(200, 150)
    prepared = prepare_sample(sample, 224, preprocess=False)
    grid = prepared.meta["grid"]
    assert grid == GridMap(200, 150, 200, 0, 25, 224) == GridMap.for_shape(200, 150, 224)
    assert prepared.rgb.shape[:2] == (224, 224)
    # the recorded map is the one prepare used: the mask resized by it equals prepare's mask
    assert np.array_equal(grid.mask_to_model(sample.mask), prepared.mask)


@pytest.mark.parametrize("shape,size", [((200, 150), 224), ((96, 96), 224), ((400, 300), 224), ((130, 260), 64)])
def test_mask_to_model_and_back_overlaps_the_original(shape, size):
    sample = demo_defect(*shape) if max(shape) <= 256 else None
    if sample is None:  # a larger image: a disc-shaped defect
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        mask = np.hypot(yy - shape[0] * 0.4, xx - shape[1] * 0.6) < min(shape) * 0.12
    else:
        mask = sample.mask
    assert mask.any()
    grid = GridMap.for_shape(*shape, size)
    back = grid.mask_to_original(grid.mask_to_model(mask))
    assert back.shape == shape
    assert iou(back, mask) > 0.9 or (size < max(shape) / 2 and iou(back, mask) > 0.7)


def test_scores_carried_back_are_bilinear_and_aligned():
    grid = GridMap.for_shape(200, 150, 224)
    yy, xx = np.mgrid[:200, :150].astype(np.float32)
    smooth = 0.01 * yy + 0.02 * xx  # a ramp in original pixels
    model = grid.mask_to_model(smooth)  # nearest onto the model grid
    back = grid.scores_to_original(model)
    assert back.shape == (200, 150) and back.dtype == np.float32
    assert np.abs(back - smooth).max() < 0.05  # within a model pixel of the ramp
    window = (10, 20, 60, 90)
    assert np.allclose(grid.scores_to_original(model, window), back[10:60, 20:90])


def test_regions_are_counted_in_original_pixels_and_keep_mm2():
    grid = GridMap.for_shape(400, 300, 224)  # side 400: one model pixel = 1.79 original pixels
    yy, xx = np.mgrid[:400, :300]
    disc = np.hypot(yy - 150, xx - 200) < 30  # 2 821 original pixels
    amap = grid.mask_to_model(disc.astype(np.float32))
    # a flat plate 0.4 m away, 0.1 mm per original pixel: each original pixel is 0.01 mm²
    xyz = np.stack([xx * 1e-4, yy * 1e-4, np.full(xx.shape, 0.4)], -1).astype(np.float32)
    model_xyz = grid.mask_to_model(xyz)
    regions = find_regions(amap, 0.5, model_xyz, grid)
    assert len(regions) == 1
    r = regions[0]
    assert abs(r.area_px - disc.sum()) < 0.06 * disc.sum()
    top, left, bottom, right = r.bbox
    assert abs(top - 120) <= 3 and abs(bottom - 180) <= 3 and abs(left - 170) <= 3 and abs(right - 230) <= 3
    assert r.area_mm2 == pytest.approx(disc.sum() * 0.01, rel=0.08)
    # the same regions on the model grid (no GridMap) are in model pixels: ~(224/400)² as many
    model_regions = find_regions(amap, 0.5, model_xyz)
    assert model_regions[0].area_px == pytest.approx(r.area_px * (224 / 400) ** 2, rel=0.05)
    assert model_regions[0].area_mm2 == pytest.approx(r.area_mm2, rel=0.08)  # mm² do not depend on the grid


def test_hot_pixels_in_the_padding_are_no_region():
    grid = GridMap.for_shape(100, 50, 100)  # 25 px of padding left and right
    amap = np.zeros((100, 100), np.float32)
    amap[40:60, 0:10] = 1.0  # inside the left padding only
    assert find_regions(amap, 0.5, grid=grid) == []


def test_cli_maps_and_defect_pixels_are_at_original_resolution(tiny_xyz_model, tmp_path):
    from core.cli import main
    from core.model_io import load_model

    root, model_path = tiny_xyz_model
    xyz_files = sorted((root / "cookie" / "test").glob("*/xyz/*.tiff"))
    maps, out = tmp_path / "maps", tmp_path / "s.csv"
    assert main(["score", str(model_path), str(root / "cookie" / "test"), "--csv", str(out),
                 "--maps", str(maps)]) in (0, 1)
    pngs = sorted(maps.glob("*.png"))
    assert len(pngs) == len(xyz_files) == 2
    for p in pngs:
        assert Image.open(p).size == (96, 96)  # the demo images are 96 px; the model grid is 224
    model = load_model(model_path)
    rows = list(csv.DictReader(out.open()))
    dent = next(r for r in rows if "dent" in r["path"])
    result = model.score(next(r for r in _refs(root) if "dent" in r.source()).load())
    expected = int((result.original_map() >= model.thresholds.pixel).sum())
    assert int(dent["defect_pixels"]) == expected
    assert result.grid.shape == (96, 96) and result.anomaly_map.shape == (224, 224)


def _refs(root):
    from core.data.dataset import open_dataset

    return open_dataset(root).samples("cookie", "test")


def test_an_original_as_large_as_the_model_grid_is_still_drawn_through_the_grid():
    """A 224×224 image on a 224 px grid is padded to 300 px first: same array size, other
    geometry. The overlay carries the map back (not the model-grid arrays drawn as they are)."""
    from core import render
    from core.results import SampleResult

    sample = demo_defect(224, 224)
    grid = GridMap.for_shape(224, 224, 224)
    assert grid.side == 300 and not grid.is_identity
    amap = np.where(grid.mask_to_model(sample.mask), 1.0, 0.1).astype(np.float32)
    result = SampleResult("a", "crack", 1.0, amap, mask=grid.mask_to_model(sample.mask), grid=grid)
    image = render.render_result(result, (0.1, 1.1), 0.5, gt_mask=result.mask, original=sample)
    expected = render.compose_overlay(sample.rgb, grid.scores_to_original(amap), (0.1, 1.1), render.TURBO_LUT,
                                      render.DEFAULT_OPACITY, 0.5, sample.mask, fade=render.DEFAULT_FADE)
    assert np.array_equal(image, expected)
    naive = render.compose_overlay(sample.rgb, amap, (0.1, 1.1), render.TURBO_LUT, render.DEFAULT_OPACITY, 0.5,
                                   result.mask, fade=render.DEFAULT_FADE)
    assert not np.array_equal(image, naive)
    assert render.drawn_on_original(result, sample) and not render.drawn_on_original(result, None)
