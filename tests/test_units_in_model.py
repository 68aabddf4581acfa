"""The unit the training clouds were read in is stored with the model (info["xyz_units"]) and is
the default unit for scoring with it; ``--xyz-units`` on score/eval still overrides; models saved
without it mean metres. Tiny generated data (the session's tiny xyz demo dataset, ×1000 = mm)."""

import csv
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from core.cli import main
from core.data.units import scoring_units
from core.errors import ModelFileError
from core.model_io import load_model, save_model
from tests._jobs import drive

FIT_ARGS = ["--modalities", "xyz", "--no-self-check", "--no-adapt"]  # as the tiny_xyz_model fixture


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def millimetre_copy(root, dest):
    """The demo dataset with every xyz TIFF in millimetres (×1000)."""
    shutil.copytree(root, dest)
    for f in dest.rglob("*.tiff"):
        tifffile.imwrite(f, tifffile.imread(f) * np.float32(1000), photometric="rgb")
    return dest


def first_row(out):
    return next(csv.DictReader(out.splitlines()))


@pytest.fixture(scope="module")
def mm_fit(_tiny_xyz_fit, tmp_path_factory):
    """(metres root, metres model, millimetre root, model fitted on it with --xyz-units mm)."""
    root, model_m = _tiny_xyz_fit
    tmp = tmp_path_factory.mktemp("mm-fit")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSFA_CACHE_DIR", str(tmp / "cache"))
    mm = millimetre_copy(root, tmp / "mm")
    model_mm = tmp / "mm.lsfa"
    assert main(["fit", str(mm), "-c", "cookie", "-o", str(model_mm), *FIT_ARGS, "--xyz-units", "mm"]) == 0
    mp.undo()
    return root, model_m, mm, model_mm


@pytest.fixture
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def test_unit_resolution_override_then_fitted_then_metres():
    assert scoring_units(SimpleNamespace(xyz_units="cm", info={"xyz_units": "mm"})) == "cm"
    assert scoring_units(SimpleNamespace(xyz_units=None, info={"xyz_units": "mm"})) == "mm"
    assert scoring_units(SimpleNamespace(xyz_units=None, info={})) == "m"


def test_model_fitted_on_millimetres_scores_them_without_a_unit(mm_fit, private_cache, capsys):
    root, model_m, mm, model_mm = mm_fit
    assert load_model(model_mm).info["xyz_units"] == "mm"
    assert load_model(model_m).info["xyz_units"] == "m"
    code, out, err = run(["info", model_mm], capsys)
    assert code == 0 and "point units: millimetres" in out
    code, out, err = run(["score", model_mm, mm / "cookie" / "test" / "good"], capsys)
    assert code == 0, err
    as_mm = first_row(out)
    code, out, err = run(["score", model_m, root / "cookie" / "test" / "good"], capsys)
    assert code == 0, err
    as_m = first_row(out)
    assert as_mm["verdict"] == as_m["verdict"] != "SKIPPED"
    # relative patch distances divide by the nearest bank vector's spread: a float-rounding
    # near-tie between two bank vectors may pick the other one, so allow 1 %, not 0.1 %
    assert float(as_mm["image_score"]) == pytest.approx(float(as_m["image_score"]), rel=1e-2)
    code, out, err = run(["eval", model_mm, mm, "-c", "cookie"], capsys)  # eval takes the fitted unit too
    assert code == 0, err


def test_an_explicit_unit_still_overrides_the_fitted_one(mm_fit, private_cache, capsys):
    root, model_m, _, model_mm = mm_fit
    metres_good = root / "cookie" / "test" / "good"
    code, out, err = run(["score", model_mm, metres_good], capsys)  # metres read as mm: refused
    row = first_row(out)
    assert code == 2 and row["verdict"] == "SKIPPED"
    assert "median point spacing" in row["error"] and "read as millimetres" in row["error"]
    assert "--xyz-units" in row["error"] and "Fit… › Point units" in row["error"]
    code, out, err = run(["score", model_mm, metres_good, "--xyz-units", "m"], capsys)
    assert code == 0, err
    code, out_m, _ = run(["score", model_m, metres_good], capsys)
    assert float(first_row(out)["image_score"]) == pytest.approx(float(first_row(out_m)["image_score"]), rel=1e-2)


def test_a_model_saved_without_the_unit_means_metres(mm_fit, private_cache, tmp_path, capsys):
    root, _, mm, model_mm = mm_fit
    old = load_model(model_mm)
    del old.info["xyz_units"]  # as written before the unit was stored
    save_model(old, tmp_path / "old.lsfa")
    loaded = load_model(tmp_path / "old.lsfa")
    assert "xyz_units" not in loaded.info and scoring_units(loaded) == "m"
    code, out, err = run(["info", tmp_path / "old.lsfa"], capsys)
    assert "point units: metres" in out
    code, out, err = run(["score", tmp_path / "old.lsfa", mm / "cookie" / "test" / "good"], capsys)
    assert code == 2 and "look like millimetres: pass --xyz-units mm" in first_row(out)["error"]
    code, out, err = run(["score", tmp_path / "old.lsfa", root / "cookie" / "test" / "good"], capsys)
    assert code == 0, err


def test_an_unknown_stored_unit_is_refused_on_load(mm_fit, tmp_path):
    model = load_model(mm_fit[3])
    model.info["xyz_units"] = "inch"
    save_model(model, tmp_path / "bad.lsfa")
    with pytest.raises(ModelFileError, match="xyz_units"):
        load_model(tmp_path / "bad.lsfa")


def test_fit_refuses_millimetres_naming_the_cli_option_and_the_app_control(mm_fit, private_cache, tmp_path):
    from core.config import FitConfig
    from core.errors import UserError
    from core.pipeline import fit

    config = FitConfig(modalities="xyz", adapt=False, self_check=False)
    with pytest.raises(UserError) as info:
        fit(mm_fit[2], "cookie", config)
    message = str(info.value)
    assert ".tiff" in message and "look like millimetres" in message
    assert "pass --xyz-units mm (in the app: Fit… › Point units)" in message
    with pytest.raises(UserError, match="--xyz-units must be one of"):
        fit(mm_fit[2], "cookie", config, xyz_units="inch")


def test_the_app_fits_millimetre_data_with_the_chosen_unit_and_scores_it(mm_fit, private_cache):
    """lsfa_gui.tasks.open_dataset_job (the Open dataset › fit path) with the Fit dialog's unit:
    the model stores it, and the dataset's samples are scored without any unit given."""
    from core.config import FitConfig
    from lsfa_gui import tasks

    mm = mm_fit[2]
    job = tasks.open_dataset_job(mm, "cookie", model=None, fit_if_needed=True,
                                 config=FitConfig(modalities="xyz", adapt=False, self_check=False),
                                 xyz_units="mm")
    messages, out = drive(job)
    ready = next(m for m in messages if isinstance(m, tasks.ModelReady))
    assert ready.model.info["xyz_units"] == "mm" and load_model(ready.path).info["xyz_units"] == "mm"
    assert out.failed == 0 and out.scored == len(out.listing.refs) > 0


def _flat_part(shape, rows, spacing_m):
    """An organized cloud (metres) of a flat part at 0.3 m with ``spacing_m`` between pixels, on
    ``rows`` (a slice) only; elsewhere invalid (0)."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    xyz = np.stack([xs * spacing_m, ys * spacing_m, np.full(shape, 0.3, np.float32)], axis=-1)
    out = np.zeros_like(xyz)
    out[rows] = xyz[rows]
    return out


@pytest.mark.parametrize("rows", [slice(100, 300), slice(204, 206)], ids=["large part", "two-row part"])
def test_the_scoring_unit_check_measures_few_rows_and_still_refuses_millimetres(rows):
    """The check at scoring time measures the spacing on CHECK_ROWS of the 400 rows (the full
    measurement only where those rows miss the part, here the part on two rows between them):
    a cloud in metres passes, the same cloud in millimetres is refused naming the unit."""
    from core.data.sample import Sample
    from core.data.units import CHECK_ROWS, check_sample_spacing, point_spacing
    from core.errors import DataError

    metres = _flat_part((400, 300), rows, 5e-4)
    assert CHECK_ROWS < 400
    sampled = point_spacing(metres, CHECK_ROWS)
    assert (sampled == 0) == (rows.stop - rows.start == 2)  # the sampled rows miss the thin part
    sample = Sample("part", rgb=None, xyz=metres)
    check_sample_spacing(sample, 5e-4, None)  # passes
    with pytest.raises(DataError, match="1e\\+03× the training data's"):
        check_sample_spacing(Sample("part", rgb=None, xyz=metres * np.float32(1000)), 5e-4, None)
