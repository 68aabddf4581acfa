"""Issue 16 item 4: the model/data check before and after scoring (core.compat, lsfa score)."""

import csv
import logging
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from core.cli import main
from core.compat import check_inputs, check_scores
from core.data.imageio import read_xyz
from core.data.sample import Sample
from core.model_io import load_model
from core.results import Thresholds


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "model/data check" in r.getMessage()]


def copy_test_samples(root, dest, with_xyz=True, xyz_scale=1.0):
    dest.mkdir()
    n = 0
    for kind in ("good", "dent"):
        src = root / "cookie" / "test" / kind
        for png in sorted((src / "rgb").glob("*.png")):
            stem = f"{kind}_{png.stem}"
            shutil.copy(png, dest / f"{stem}.png")
            if with_xyz:
                xyz = read_xyz(src / "xyz" / f"{png.stem}.tiff") * np.float32(xyz_scale)
                tifffile.imwrite(dest / f"{stem}.tiff", xyz.astype(np.float32), photometric="minisblack")
            n += 1
    return n


def test_the_fit_records_what_the_check_compares(tiny_xyz_model):
    _, model_path = tiny_xyz_model
    info = load_model(model_path).info
    assert info["image_size"] == [96, 96]
    assert 0 < info["calibration_scores"]["median"] <= info["calibration_scores"]["q999"]


def test_xyz_model_on_an_rgb_only_folder_gives_one_message(tiny_xyz_model, tmp_path, capsys, caplog):
    root, model = tiny_xyz_model
    n = copy_test_samples(root, tmp_path / "rgb_only", with_xyz=False)
    out = tmp_path / "s.csv"
    caplog.set_level(logging.INFO)
    assert main(["score", str(model), str(tmp_path / "rgb_only"), "--csv", str(out)]) == 2  # skipped rows: exit 2
    found = warnings_of(caplog)
    assert len(found) == 1 and f"{n} of {n} sample(s)" in found[0] and "have no point cloud (xyz)" in found[0]
    assert "fit a model on this data (rgb)" in found[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # not one error line per sample
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == n and {r["verdict"] for r in rows} == {"SKIPPED"}
    assert all(r["error"] == "no point cloud (xyz): the model needs it" for r in rows)


def test_clouds_scaled_tenfold_give_a_units_warning(tiny_xyz_model, tmp_path, capsys, caplog):
    root, model = tiny_xyz_model
    n = copy_test_samples(root, tmp_path / "scaled", xyz_scale=10.0)
    caplog.set_level(logging.INFO)
    code = main(["score", str(model), str(tmp_path / "scaled"), "--csv", str(tmp_path / "s.csv")])
    assert code == 0  # 10× is within what scoring accepts: scored, but the user is warned once
    found = warnings_of(caplog)
    units = [m for m in found if "point spacing" in m]
    assert len(units) == 1 and "--xyz-units" in units[0]
    ratio = float(re.search(r"m per pixel, ([0-9.]+)×", units[0]).group(1))
    assert 8 < ratio < 12
    assert len(list(csv.DictReader((tmp_path / "s.csv").open()))) == n
    caplog.clear()
    copy_test_samples(root, tmp_path / "same")  # the same data unscaled: no finding
    assert main(["score", str(model), str(tmp_path / "same"), "--csv", str(tmp_path / "t.csv")]) == 0
    assert warnings_of(caplog) == []


def fake_model(**info):
    return SimpleNamespace(modalities=("rgb",), info=info, xyz_units=None, thresholds=Thresholds(2.0, 1.0))


class FakeRef:
    def __init__(self, h, w):
        self.h, self.w = h, w
        self.modalities = ("rgb",)

    def load(self):
        return Sample(name="x", rgb=np.zeros((self.h, self.w, 3), np.uint8))


def test_image_size_and_aspect_far_from_training_are_reported():
    model = fake_model(image_size=[400, 400])
    assert check_inputs(model, [FakeRef(400, 420)] * 5) == []
    far = check_inputs(model, [FakeRef(100, 100)] * 5)
    assert [f.kind for f in far] == ["size"] and "100×100 px" in far[0].message and "400×400" in far[0].message
    assert [f.kind for f in check_inputs(model, [FakeRef(300, 600)])] == ["size"]  # 2:1 against square
    assert check_inputs(fake_model(), [FakeRef(100, 100)]) == []  # older model: size not recorded


def test_scores_far_above_the_calibrated_range_warn():
    model = fake_model(calibration_scores={"median": 0.5, "q999": 1.0})
    assert check_scores(model, [0.4, 0.9, 2.5]) == []
    far = check_scores(model, [3.5, 4.0, 5.0, None])
    assert len(far) == 1 and far[0].kind == "scores" and "4×" in far[0].message
    assert check_scores(fake_model(), [5.0, 6.0]) == []  # 3× the image threshold (2.0) is 6: not above
    assert len(check_scores(fake_model(), [7.0])) == 1
    assert check_scores(model, []) == []
