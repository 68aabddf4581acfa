"""Region of interest (core.roi): an ignored region stops counting in maps, scores, regions and
verdicts; the ROI reaches the grid through the mask's path; it round-trips through the model file
and through ``lsfa fit/score/info``; bad ROI files give one clear UserError naming the file."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from core.errors import ModelFileError, UserError
from core.roi import attach_roi, read_roi, roi_cells, roi_from_polygon, write_roi_png


def _test_samples(root):
    from core.data.dataset import open_dataset

    refs = open_dataset(root).samples("cookie", "test")
    return [r for r in refs if r.label == "good"][0].load(), [r for r in refs if r.label != "good"][0]


def _with_dent(sample, depth_m=0.002):
    """The good sample with a dent of ``depth_m`` pressed into a 6 px disc below its centre
    (original pixels); returns (sample, disc mask)."""
    valid = sample.valid
    cy, cx = (int(v.mean()) for v in valid.nonzero())
    yy, xx = np.mgrid[: sample.shape[0], : sample.shape[1]]
    disc = ((yy - cy - 8) ** 2 + (xx - cx) ** 2 < 36) & valid
    xyz = sample.xyz.copy()
    xyz[disc, 2] -= depth_m
    return sample.with_arrays(xyz=xyz), disc


def test_roi_takes_the_mask_path_to_the_grid(tiny_xyz_model):
    """The same array as ROI and as ground-truth mask lands on the same grid pixels."""
    from core.prepare import prepare_sample

    root, _ = tiny_xyz_model
    good, _ = _test_samples(root)
    roi = np.zeros(good.shape, bool)
    roi[10:50, 20:90] = True
    prepared = prepare_sample(attach_roi(good, roi).with_arrays(mask=roi), 224)
    assert prepared.roi.shape == (224, 224)
    assert np.array_equal(prepared.roi, prepared.mask)
    assert 0 < prepared.roi.mean() < roi.mean()  # the square padding is ignored too


def test_ignored_defect_no_longer_makes_the_part_ng(tiny_xyz_model):
    from core.model_io import load_model

    root, model_path = tiny_xyz_model
    model = load_model(model_path)
    good, _ = _test_samples(root)
    dented, disc = _with_dent(good)
    before = model.score(dented)
    assert before.verdict(model.thresholds) == "NG"
    assert before.regions(model.thresholds.pixel)
    ignore = ndimage.binary_dilation(disc, iterations=14)
    model.set_roi(~ignore, "test-roi.png")
    after = model.score(dented)
    assert after.image_score < before.image_score
    assert after.verdict(model.thresholds) == "OK"
    assert not (after.defect_mask(model.thresholds.pixel) & ~after.roi).any()
    largest = [r.regions(model.thresholds.pixel)[:1] for r in (before, after)]
    assert sum(x.area_px for x in largest[1]) < largest[0][0].area_px / 10  # the dent's region is gone
    assert after.anomaly_map[~after.roi].max() == 0.0  # ignored pixels score 0
    for m, amap in after.modality_maps.items():
        assert amap[~after.roi].max() == 0.0, m
    # inside the ROI the map is the unmasked one
    assert np.allclose(after.anomaly_map[after.roi], before.anomaly_map[after.roi])


def test_a_roi_of_another_size_names_both_files(tiny_xyz_model):
    from core.model_io import load_model

    root, model_path = tiny_xyz_model
    model = load_model(model_path)
    good, _ = _test_samples(root)
    model.set_roi(np.ones((50, 60), bool), "small-roi.png")
    with pytest.raises(UserError, match=r"small-roi\.png.*60×50 px.*size of the dataset's images"):
        model.score(good)


@pytest.mark.parametrize("kind", ["missing", "corrupt", "empty"])
def test_bad_roi_files_give_one_user_error(tmp_path, kind):
    path = tmp_path / "roi.png"
    if kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    elif kind == "empty":
        Image.fromarray(np.zeros((20, 30), np.uint8)).save(path)
    with pytest.raises(UserError, match=str(path).replace("\\", "\\\\")) as info:
        read_roi(path)
    assert "\n" not in str(info.value)
    if kind == "empty":
        assert "ignores every pixel" in str(info.value)


def test_roi_png_round_trip_and_polygon(tmp_path):
    roi = roi_from_polygon([(2, 2), (8, 2), (8, 6), (2, 6)], 10, 12)  # x, y corners
    assert roi.sum() == 6 * 4 and roi[2:6, 2:8].all()
    write_roi_png(tmp_path / "r.png", roi)
    assert np.array_equal(read_roi(tmp_path / "r.png"), roi)
    grid = np.zeros((8, 8), bool)
    grid[0, 5] = True
    assert roi_cells(grid, 2).tolist() == [False, True, False, False]


def _fit_tiny(root, roi=None):
    from core.config import FitConfig
    from core.pipeline import fit

    cfg = FitConfig(modalities="xyz", self_check=False, adapt=False)
    return fit(root, "cookie", cfg, roi=roi, roi_source="fit-roi.png")


def test_fit_calibrates_with_the_roi_and_the_model_file_keeps_it(tiny_xyz_model, tmp_path):
    from core.model_io import load_model, save_model

    root, _ = tiny_xyz_model
    good, _ = _test_samples(root)
    roi = np.ones(good.shape, bool)
    roi[:, : good.shape[1] // 2] = False  # inspect the right half only
    plain, masked = _fit_tiny(root), _fit_tiny(root, roi)
    assert masked.thresholds.image < plain.thresholds.image  # calibrated on half the part
    # held-out good scores at fit match scoring with the stored ROI: the threshold sits among them
    path = tmp_path / "roi.lsfa"
    save_model(masked, path)
    loaded = load_model(path)
    assert np.array_equal(loaded.roi, roi)
    assert loaded.score(good).image_score == pytest.approx(masked.score(good).image_score, rel=1e-6)
    assert loaded.score(good).image_score < plain.score(good).image_score


def _rewrite(src, dst, edit):
    """Copy model file ``src`` to ``dst`` with its manifest and tensors edited by ``edit`` and the
    checksums recomputed (a deliberate tamper that the checksums alone cannot catch)."""
    from core.model_file import read_model_file, write_model_file

    manifest, tensors = read_model_file(src)
    for key in ("format", "schema_version", "tensors_sha256", "tensors_bytes", "model_id", "manifest_sha256"):
        manifest.pop(key)
    edit(manifest, tensors)
    write_model_file(dst, manifest, tensors)


@pytest.mark.parametrize("tamper, message", [
    (lambda m, t: t.__setitem__("roi", np.full_like(t["roi"], 2)), "values other than 0 and 1"),
    (lambda m, t: t.__setitem__("roi", np.zeros_like(t["roi"])), "ignores every pixel"),
    (lambda m, t: t.__setitem__("roi", t["roi"][:-1]), "must be a .* uint8 mask"),
    (lambda m, t: t.pop("roi"), "only one of the manifest and the tensors"),
    (lambda m, t: m.pop("roi"), "only one of the manifest and the tensors"),
])
def test_tampered_stored_roi_is_refused(tiny_xyz_model, tmp_path, tamper, message):
    from core.model_io import load_model, save_model

    root, model_path = tiny_xyz_model
    model = load_model(model_path)
    good, _ = _test_samples(root)
    model.set_roi(np.ones(good.shape, bool), "r.png")
    save_model(model, tmp_path / "ok.lsfa")
    _rewrite(tmp_path / "ok.lsfa", tmp_path / "bad.lsfa", tamper)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(tmp_path / "bad.lsfa")
    assert "bad.lsfa" in str(info.value)


def test_edited_roi_bytes_fail_the_checksum(tiny_xyz_model, tmp_path):
    from core.model_io import load_model, save_model

    root, model_path = tiny_xyz_model
    model = load_model(model_path)
    good, _ = _test_samples(root)
    model.set_roi(np.ones(good.shape, bool), "r.png")
    save_model(model, tmp_path / "ok.lsfa")
    with zipfile.ZipFile(tmp_path / "ok.lsfa") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    blob = bytearray(members["tensors.safetensors"])
    blob[-1] ^= 1  # last byte of the tensor data (the ROI is stored last in name order)
    members["tensors.safetensors"] = bytes(blob)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    (tmp_path / "bad.lsfa").write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match="bad.lsfa.*checksum"):
        load_model(tmp_path / "bad.lsfa")


def test_cli_fit_score_info_with_roi(tiny_xyz_model, tmp_path, capsys, caplog):
    from core.cli import main

    root, model_path = tiny_xyz_model
    good, dent_ref = _test_samples(root)
    dent = dent_ref.load()
    roi = np.ones(dent.shape, bool)
    roi[:, : dent.shape[1] // 2] = False  # inspect the right half only
    roi_png = tmp_path / "roi.png"
    write_roi_png(roi_png, roi)
    out = tmp_path / "m.lsfa"
    assert main(["fit", str(root), "-c", "cookie", "-o", str(out), "--modalities", "xyz", "--no-self-check",
                 "--no-adapt", "--roi", str(roi_png)]) == 0
    assert "region of interest" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["roi"]["width"] == dent.shape[1] and info["roi"]["inspected_share"] == pytest.approx(0.5)
    assert main(["info", str(out)]) == 0
    assert "% of the image inspected" in capsys.readouterr().out

    def score(*extra):
        csv = tmp_path / f"s{len(extra)}.csv"
        main(["score", str(out), str(dent_ref.xyz_path), "--csv", str(csv), *extra])
        lines = csv.read_text().splitlines()
        row = dict(zip(lines[0].split(","), lines[1].split(",")))
        return float(row["image_score"])

    stored = score()
    whole = np.ones(dent.shape, np.uint8)
    write_roi_png(tmp_path / "all.png", whole)
    assert score("--roi", str(tmp_path / "all.png")) > stored  # the override replaces the stored ROI
    bad = tmp_path / "small.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(bad)
    with caplog.at_level("WARNING"):
        assert main(["score", str(out), str(dent_ref.xyz_path), "--csv", str(tmp_path / "x.csv"),
                     "--roi", str(bad)]) == 2
    check = [r.message for r in caplog.records if r.message.startswith("model/data check")]
    assert len(check) == 1 and "small.png" in check[0] and "10×10 px" in check[0]
    assert "small.png" in (tmp_path / "x.csv").read_text()  # the SKIPPED row names the ROI file
    assert not [r for r in caplog.records if r.message.startswith("skipped")]  # no line per sample


def test_a_polygon_drawn_on_the_grid_lands_there_after_the_mask_path(tiny_xyz_model):
    """A rectangle drawn on the model grid, carried to original pixels (the GUI's drawing) and
    brought back through the mask's path, covers the same grid pixels (up to one original pixel)."""
    from core.prepare import prepare_sample
    from core.grid_map import GridMap

    root, _ = tiny_xyz_model
    good, _ = _test_samples(root)
    h, w = good.shape
    corners = np.array([(50, 60), (170, 60), (170, 150), (50, 150)], float)  # x, y on the 224 grid
    roi = roi_from_polygon(GridMap.for_shape(h, w, 224).model_points_to_original(corners), h, w)
    grid = prepare_sample(attach_roi(good, roi), 224).roi
    expected = np.zeros((224, 224), bool)
    expected[60:150, 50:170] = True
    assert (grid != expected).mean() < 0.02
    assert grid[100, 100] and not grid[10, 10]


def test_self_check_defects_are_painted_inside_the_roi(tiny_xyz_model):
    from core.prepare import prepare_sample
    from core.pseudo_defects import add_defect, types_for

    root, _ = tiny_xyz_model
    good, _ = _test_samples(root)
    roi = np.zeros(good.shape, bool)
    roi[:, good.shape[1] // 2:] = True  # the right half
    prepared = prepare_sample(attach_roi(good, roi), 224)
    rng = np.random.default_rng(0)
    for kind in types_for(("rgb", "xyz")):
        for _ in range(3):
            mask = add_defect(prepared, kind, rng, donor=prepared).mask
            inside = (mask & prepared.roi).sum() / mask.sum()
            assert inside > 0.5, kind
