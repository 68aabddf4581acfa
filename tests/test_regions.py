"""Issue 16 item 6: defect regions as objects (core.regions), the minimum defect area verdict
rule (core.thresholds) and the region columns of ``lsfa score``."""

import csv

import numpy as np
import pytest

from core.cli import main
from core.regions import find_regions, largest_area_px, pixel_areas_m2
from core.results import SampleResult, Thresholds
from core.thresholds import NG, OK, UNCERTAIN, check_min_defect_area, verdict

SPACING_M = 0.0005  # 0.5 mm per pixel: 0.25 mm² per pixel of a flat part facing the camera


def blob_map() -> np.ndarray:
    """64×64 map with three blobs above 1.0: a 5×4 rectangle (20 px, peak 3 at (12, 13)), an
    L of 2 px joined by a diagonal to a third pixel (one 8-connected region of 3 px), one pixel."""
    amap = np.zeros((64, 64), np.float32)
    amap[10:15, 10:14] = 2.0
    amap[12, 13] = 3.0
    amap[40, 40] = amap[40, 41] = 1.5
    amap[41, 42] = 1.2  # touches (40, 41) only diagonally
    amap[60, 5] = 1.0  # exactly at the threshold counts (score >= threshold)
    amap[30, 30] = 0.999  # just below: not a region
    return amap


def flat_cloud(shape=(64, 64), spacing=SPACING_M, tilt=0.0) -> np.ndarray:
    """Organized cloud (metres) of a plane, ``spacing`` between neighbouring pixels in x and y,
    z = 0.3 m + tilt·x."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    x, y = cols * spacing, rows * spacing
    return np.stack([x, y, 0.3 + tilt * x], axis=-1).astype(np.float32)


def test_regions_of_a_generated_map_have_exact_areas_boxes_and_peaks():
    regions = find_regions(blob_map(), 1.0)
    assert [r.area_px for r in regions] == [20, 3, 1]
    big, diag, single = regions
    assert big.bbox == (10, 10, 15, 14) and big.peak_yx == (12, 13) and big.peak_score == 3.0
    assert diag.bbox == (40, 40, 42, 43) and diag.peak_score == 1.5
    assert single.bbox == (60, 5, 61, 6) and single.peak_yx == (60, 5)
    assert all(r.area_mm2 is None for r in regions)  # no cloud: no physical area
    assert largest_area_px(blob_map(), 1.0) == 20
    assert find_regions(blob_map(), 5.0) == [] and largest_area_px(blob_map(), 5.0) == 0
    assert find_regions(blob_map(), None) == []


def test_region_areas_in_mm2_from_the_organized_cloud():
    regions = find_regions(blob_map(), 1.0, flat_cloud())
    assert [r.area_mm2 for r in regions] == pytest.approx([20 * 0.25, 3 * 0.25, 0.25], rel=1e-4)
    # a 45° slope has √2 times the surface per pixel
    tilted = find_regions(blob_map(), 1.0, flat_cloud(tilt=1.0))
    assert tilted[0].area_mm2 == pytest.approx(20 * 0.25 * np.sqrt(2), rel=1e-4)
    # pixels without a 3D point count in pixels, not in mm²
    holed = flat_cloud()
    holed[10, 10:14] = 0
    big = find_regions(blob_map(), 1.0, holed)[0]
    assert big.area_px == 20 and big.area_mm2 == pytest.approx(16 * 0.25, rel=1e-4)


def test_pixel_area_survives_nearest_neighbour_upsampling():
    coarse = flat_cloud((32, 32), spacing=2 * SPACING_M)
    fine = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)  # every point repeated: 0.5 mm per pixel
    inner = pixel_areas_m2(fine)[4:-4, 4:-4]
    assert inner.mean() * 1e6 == pytest.approx(0.25, rel=0.02)


def test_minimum_defect_area_keeps_small_regions_ok():
    assert verdict(5.0, 1.0) == NG
    assert verdict(5.0, 1.0, None, largest_region_px=3, min_defect_area=4) == OK
    assert verdict(5.0, 1.0, None, largest_region_px=4, min_defect_area=4) == NG
    assert verdict(0.5, 1.0, None, largest_region_px=400, min_defect_area=4) == OK  # the score still decides first
    assert verdict(1.5, 1.0, 2.0, largest_region_px=10, min_defect_area=4) == UNCERTAIN
    assert verdict(5.0, 1.0, None, largest_region_px=None, min_defect_area=4) == NG  # unknown size: rule skipped
    result = SampleResult("s", None, 5.0, blob_map())
    assert result.verdict(Thresholds(1.0, 1.0, min_defect_area=20)) == NG
    assert result.verdict(Thresholds(1.0, 1.0, min_defect_area=21)) == OK
    assert result.verdict(Thresholds(1.0, 4.0, min_defect_area=1)) == OK  # no region at all


def test_minimum_defect_area_is_stored_with_the_thresholds():
    thr = Thresholds(1.0, 2.0, "user", min_defect_area=12)
    assert Thresholds.from_dict(thr.to_dict()) == thr
    assert "min_defect_area" not in Thresholds(1.0, 2.0).to_dict()  # files without it stay as they were
    assert check_min_defect_area(3.0) == 3
    for bad in (-1, 2.5, "x", float("nan"), True):
        with pytest.raises(ValueError):
            check_min_defect_area(bad)


def test_score_csv_has_region_columns_and_min_area_option(tiny_xyz_flagging_model, tmp_path, capsys):
    root, model = tiny_xyz_flagging_model
    test = root / "cookie" / "test"
    out = tmp_path / "s.csv"
    assert main(["score", str(model), str(test / "good"), str(test / "dent"),
                 "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2
    for r in rows:
        n, largest, px = int(r["regions"]), int(r["largest_region_px"]), int(r["defect_pixels"])
        assert (n == 0) == (largest == 0) and largest <= px
        assert (r["largest_region_mm2"] == "") == (n == 0)  # xyz model: physical areas are known
        if n:
            assert float(r["largest_region_mm2"]) > 0
    flagged = [r for r in rows if r["verdict"] == NG]
    assert len(flagged) == 2 and all(int(r["regions"]) > 0 for r in flagged)
    big = max(int(r["largest_region_px"]) for r in flagged)
    assert main(["score", str(model), str(test / "good"), str(test / "dent"),
                 "--csv", str(out), "--min-defect-area", str(big + 1)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["verdict"] for r in rows} == {OK} and {r["min_defect_area"] for r in rows} == {str(big + 1)}
    capsys.readouterr()
    assert main(["score", str(model), str(test / "good"), "--min-defect-area", "-3"]) == 2
    assert "--min-defect-area" in capsys.readouterr().err


def test_min_defect_area_stored_in_the_model_file_is_used_and_shown(tiny_xyz_model, tmp_path, capsys):
    import shutil

    from core.model_file import read_model_file, update_manifest
    from core.model_io import load_model

    root, source = tiny_xyz_model
    model = tmp_path / "m.lsfa"
    shutil.copy(source, model)
    thresholds = read_model_file(model)[0]["thresholds"]
    update_manifest(model, {"thresholds": {**thresholds, "min_defect_area": 100000}})
    assert load_model(model).thresholds.min_defect_area == 100000
    assert main(["info", str(model)]) == 0
    assert "minimum defect area 100000 px" in capsys.readouterr().out
    out = tmp_path / "s.csv"
    assert main(["score", str(model), str(root / "cookie" / "test"), "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["verdict"] for r in rows} == {OK} and {r["min_defect_area"] for r in rows} == {"100000"}
    update_manifest(model, {"thresholds": {**thresholds, "min_defect_area": -4}})
    assert main(["score", str(model), str(root / "cookie" / "test")]) == 2  # a tampered value is refused
    assert "minimum defect area" in capsys.readouterr().err
