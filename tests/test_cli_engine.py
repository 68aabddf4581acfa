"""`lsfa fit / eval / score` on tiny generated data: outputs, JSON/CSV, and exit status 2 for
user errors (one line, no traceback)."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from core.cli import main
from core.demo import generate_demo_dataset

TINY = dict(size=128, n_train=6, n_validation=3, n_test_good=2, n_test_per_defect=1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    root = generate_demo_dataset(tmp / "demo", seed=9, categories=["cookie"], **TINY)
    model = tmp / "m.lsfa"
    return tmp, root, model


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LSFA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


def test_fit_eval_score(setup, capsys, tmp_path):
    tmp, root, model = setup
    code, out, err = run(["fit", root, "-c", "cookie", "-o", model, "--force"], capsys)
    assert code == 0, err
    assert "wrote" in out and model.is_file()
    assert "self-check ESTIMATE on synthetic defects" in out and "best F1 on" in out
    from core.pipeline import load_model

    thresholds = load_model(model).thresholds  # the seeded image threshold keeps its bootstrap spread
    low, high = thresholds.image_spread
    assert low <= thresholds.image <= high and f"within {low:.4g}–{high:.4g}" in thresholds.source

    code, out, err = run(["info", model], capsys)
    assert code == 0, err
    assert "category cookie" in out and "self-check ESTIMATE" in out and "not real ones" in out
    code, out, err = run(["info", model, "--json"], capsys)
    summary = json.loads(out)
    assert summary["modalities"] == ["rgb", "xyz"] and summary["fusion"] == "tail_sum"
    assert 0 <= summary["self_check"]["estimate"]["image_auroc"] <= 1

    code, out, err = run(["eval", model, root, "-c", "cookie", "--json", tmp_path / "m.json"], capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "m.json").read_text())
    for key in ("image_auroc", "pixel_auroc", "aupro_30", "n_good", "n_defect", "seconds_per_sample"):
        assert key in data
    assert data["n_good"] == 2 and data["n_defect"] == 5 and 0 <= data["aupro_30"] <= 1

    test_dir = root / "cookie" / "test"
    code, out, err = run(["score", model, test_dir / "crack" / "rgb" / "000.png", test_dir / "good",
                          "--csv", tmp_path / "s.csv", "--maps", tmp_path / "maps"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == 3 and {r["verdict"] for r in rows} <= {"OK", "NG"}
    # every row names the model and the image threshold it was judged at (as written: 4 significant digits)
    assert all(r["model_id"] and float(r["image_threshold"]) == pytest.approx(thresholds.image, rel=1e-3) for r in rows)
    assert len(list((tmp_path / "maps").glob("*.png"))) == 3
    assert {r["uncertain_until"] for r in rows} == {""}  # no band unless the fit was asked for one

    # the CLI's map PNG is the GUI's PNG export of the same sample (one renderer: core.render)
    import numpy as np
    from PIL import Image

    from core.data.dataset import load_inputs
    from core.model_io import load_model
    from lsfa_gui import export
    from lsfa_gui.colormaps import lut
    from test_render_parity import gui_state_for

    m = load_model(model)
    sample = load_inputs([test_dir / "crack" / "rgb" / "000.png"])[0].load()
    result = m.score(sample, keep_original=True)  # drawn at original resolution, as the CLI does
    gui_png = export.export_overlay_png(gui_state_for(m, result), 0, tmp_path / "gui.png", lut("turbo"))
    (cli_png,) = (tmp_path / "maps").glob("0000_*.png")
    assert np.array_equal(np.asarray(Image.open(cli_png)), np.asarray(Image.open(gui_png)))
    assert Image.open(cli_png).size == sample.shape[::-1]  # the original image's size


def test_fit_with_uncertain_band_and_score_without_it(setup, capsys, tmp_path):
    """``fit --uncertain-band``: UNCERTAIN from the image threshold up to just above the highest
    held-out good score (when that is above the threshold); ``score`` applies it,
    ``score --no-uncertain`` drops it."""
    import numpy as np

    from core.data.dataset import load_inputs
    from core.model_io import load_model
    from core.thresholds import verdict

    tmp, root, _ = setup
    model = tmp_path / "band.lsfa"
    code, out, err = run(["fit", root, "-c", "cookie", "-o", model, "--no-adapt", "--uncertain-band"], capsys)
    assert code == 0, err
    m = load_model(model)
    est, t = m.info["self_check"]["estimate"], m.thresholds
    assert f"held-out good parts at or above the fitted image threshold: {est['good_flagged']} of 3" in out
    top = est["highest_good_score"]
    if top < t.image:
        assert t.uncertain_until is None
    else:
        assert t.uncertain_until == np.nextafter(top, np.inf) and "UNCERTAIN from" in out
    good = root / "cookie" / "test" / "good"
    for flag, band in (([], t.uncertain_until), (["--no-uncertain"], None)):
        code, out, err = run(["score", model, good, "--csv", tmp_path / "s.csv", *flag], capsys)
        assert code == 0, err
        rows = list(csv.DictReader((tmp_path / "s.csv").open()))
        assert len(rows) == 2 and all((r["uncertain_until"] == "") == (band is None) for r in rows)
        results = [m.score(ref.load()) for ref in load_inputs([good])]
        assert [r["verdict"] for r in rows] == [verdict(x.image_score, t.image, band) for x in results]


def test_fit_seeds_on_training_parts_left_out_unless_told_held_out_only(setup, capsys, tmp_path):
    """By default the seeded image threshold also sees training parts scored leave-one-out (said in
    the model file); ``--held-out-threshold-only`` seeds it on the held-out good parts alone."""
    from core.model_io import load_model

    tmp, root, _ = setup
    for flag, used in (([], True), (["--held-out-threshold-only"], False)):
        model = tmp_path / f"t{int(used)}.lsfa"
        code, out, err = run(["fit", root, "-c", "cookie", "-o", model, "--no-adapt", *flag], capsys)
        assert code == 0, err
        m = load_model(model)
        assert m.config.threshold_training_parts is used
        assert ("training_parts_left_out" in m.info["self_check"]) is used
        assert ("scored leave-one-out" in m.thresholds.source) is used


def test_fit_appends_the_colour_block_unless_told_not_to(setup, capsys, tmp_path):
    """The RGB features hold the colour-contrast block by default (170 features, recorded with the
    extractor, so the model file rebuilds it); ``--no-colour-contrast`` fits the CNN's 152 alone."""
    from core.model_io import load_model

    tmp, root, _ = setup
    for flag, dim in (([], 170), (["--no-colour-contrast"], 152)):
        model = tmp_path / f"c{dim}.lsfa"
        code, out, err = run(["fit", root, "-c", "cookie", "-o", model, "--no-adapt", "--no-self-check", *flag],
                             capsys)
        assert code == 0, err
        m = load_model(model)
        assert m.config.colour_contrast is (dim == 170)
        assert m.extractors["rgb"].dim == dim and m.banks["rgb"].dim == dim


def test_user_errors_exit_2_with_one_line(setup, capsys, tmp_path):
    tmp, root, model = setup
    if not model.exists():
        assert main(["fit", str(root), "-c", "cookie", "-o", str(model)]) == 0
        capsys.readouterr()  # the fit's own progress lines are not part of the cases below
    cases = [
        (["fit", tmp_path / "missing", "-c", "cookie", "-o", tmp_path / "x.lsfa"], "missing"),
        (["fit", root, "-c", "nosuch", "-o", tmp_path / "x.lsfa"], "nosuch"),
        (["fit", root, "-c", "cookie", "-o", model], "already exists"),
        (["eval", tmp_path / "absent.lsfa", root, "-c", "cookie"], "absent.lsfa"),
    ]
    for argv, needle in cases:
        code, out, err = run(argv, capsys)
        assert code == 2, (argv, err)
        assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_rgb_only_input_to_rgb_xyz_model_is_reported(setup, capsys, caplog, tmp_path):
    tmp, root, model = setup
    if not model.exists():
        assert main(["fit", str(root), "-c", "cookie", "-o", str(model)]) == 0
    lone = tmp_path / "lone.png"
    shutil.copy(root / "cookie" / "test" / "good" / "rgb" / "000.png", lone)
    code, out, err = run(["score", model, lone], capsys)
    assert code == 2 and "Traceback" not in err
    assert "lone.png" in caplog.text and "has no point cloud" in caplog.text


def test_eval_without_defects_says_not_defined(setup, capsys, tmp_path):
    tmp, root, model = setup
    if not model.exists():
        assert main(["fit", str(root), "-c", "cookie", "-o", str(model)]) == 0
    nodef = tmp_path / "nodef"
    shutil.copytree(root / "cookie" / "train", nodef / "cookie" / "train")
    shutil.copytree(root / "cookie" / "test" / "good", nodef / "cookie" / "test" / "good")
    code, out, err = run(["eval", model, nodef, "-c", "cookie"], capsys)
    assert code == 0, err
    assert "not defined" in out


def test_fit_without_self_check_uses_quantile_thresholds(setup, capsys, tmp_path):
    tmp, root, _ = setup
    out_model = tmp_path / "plain.lsfa"
    code, out, err = run(["fit", root, "-c", "cookie", "-o", out_model, "--no-adapt", "--no-self-check"], capsys)
    assert code == 0, err
    assert "self-check ESTIMATE" not in out and "quantiles" in out
    code, out, err = run(["info", out_model], capsys)
    assert "self-check: not run" in out


def test_fit_with_lite2_backbone_round_trips(setup, capsys, tmp_path):
    """`--rgb-backbone efficientnet_lite2` from the CLI: the model file stores the backbone's name,
    params and weights id, and loads back onto the same backbone (score runs)."""
    import zipfile

    from core.features.rgb_efficientnet import weights_path
    from core.features.checkpoints import weights_id
    from core.model_io import load_model

    tmp, root, _ = setup
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(f"efficientnet_lite{v}" in help_text for v in (0, 1, 2))

    out_model = tmp_path / "lite2.lsfa"
    code, out, err = run(["fit", root, "-c", "cookie", "-o", out_model, "--modalities", "rgb",
                          "--rgb-backbone", "efficientnet_lite2", "--no-adapt", "--no-self-check"], capsys)
    assert code == 0, err
    code, out, err = run(["info", out_model, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["backbones"] == {"rgb": "efficientnet_lite2 + colour contrast"}
    with zipfile.ZipFile(out_model) as zf:
        spec = json.loads(zf.read("manifest.json"))["extractors"]["rgb"]
    params = {"stride4": False, "colour_weight": 100.0}  # 168 CNN features + the 18 of the colour block
    assert spec == {"name": "efficientnet_lite2", "params": params, "weights_id": weights_id(weights_path(2)),
                    "dim": 186}
    ex = load_model(out_model).extractors["rgb"]
    assert (ex.name, ex.dim, ex.params, ex.weights_id) == ("efficientnet_lite2", 186, params, spec["weights_id"])
    code, out, err = run(["score", out_model, root / "cookie" / "test" / "good", "--csv",
                          tmp_path / "s.csv"], capsys)
    assert code == 0, err
