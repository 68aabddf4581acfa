"""Issue 15 (reliability), the CLI: option checks, output folders checked before the work,
write failures, umask, CSV formula escaping, category mismatch, demo-data --force."""

import csv
import errno
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.outputs import csv_safe, write_output

ROOT = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, needle):
    """Exit 2, no traceback, one error line (progress lines aside) that contains ``needle``."""
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if not line.startswith("[")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert needle in lines[0], err


@pytest.mark.parametrize("option,value,needle", [
    ("--grid", "0", "--grid must be a whole number between 1 and"),
    ("--image-size", "0", "--image-size must be a whole number between 1 and"),
    ("--image-size", "-5", "--image-size must be"),
    ("--image-size", "56000", "--image-size must be"),
    ("--max-train", "0", "--max-train must be a whole number ≥ 1"),
    ("--coreset", "0", "--coreset must be in (0, 1]"),
    ("--min-bank", "0", "--min-bank must be"),
    ("--batch-size", "0", "batch_size must be ≥ 1"),
    ("--lr", "-1", "lr must be > 0"),
])
def test_bad_fit_options_fail_in_one_line_before_any_work(tmp_path, capsys, option, value, needle):
    out = tmp_path / "m.lsfa"
    code, _, err = run(["fit", tmp_path, "-c", "x", "-o", out, option, value], capsys)
    one_line_error(code, err, needle)
    assert not out.exists()


def test_unwritable_output_locations_are_refused_before_the_work(tiny_xyz_model, tmp_path, capsys):
    root, model = tiny_xyz_model
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    code, out, err = run(["fit", root, "-c", "cookie", "-o", blocker / "m.lsfa"], capsys)
    one_line_error(code, err, "is not a folder")
    assert "[Loading" not in err
    code, out, err = run(["eval", model, root, "-c", "cookie", "--json", blocker / "r.json"], capsys)
    one_line_error(code, err, "is not a folder")
    assert out == ""  # no metrics: it stopped before scoring
    code, out, err = run(["score", model, root / "cookie" / "test", "--csv", tmp_path], capsys)
    one_line_error(code, err, "is a folder")
    code, out, err = run(["score", model, root / "cookie" / "test", "--maps", blocker], capsys)
    one_line_error(code, err, "not a folder")
    assert blocker.read_text() == "I am a file"


def test_disk_full_keeps_the_existing_file(tiny_xyz_model, tmp_path, capsys, monkeypatch):
    root, model = tiny_xyz_model
    target = tmp_path / "scores.csv"
    target.write_text("previous results\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run(["score", model, root / "cookie" / "test" / "good", "--csv", target], capsys)
    one_line_error(code, err, "No space left on device")
    assert target.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]  # no temp file left


def test_file_size_limit_gives_one_line_and_keeps_the_old_model(tiny_xyz_model, tmp_path):
    root, model = tiny_xyz_model
    out = tmp_path / "m.lsfa"
    out.write_bytes(b"old model")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LSFA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONDONTWRITEBYTECODE": "1"}

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    res = subprocess.run([sys.executable, "-m", "core", "fit", str(root), "-c", "cookie", "-o", str(out), "--force",
                          "--modalities", "xyz", "--no-self-check", "--no-adapt"],
                         env=env, preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith(f"lsfa fit: error: {out}: cannot write the model file")
    assert out.read_bytes() == b"old model"


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_output(tmp_path / "a.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode


def test_csv_cells_cannot_become_formulas(tiny_xyz_model, tmp_path, capsys):
    root, model = tiny_xyz_model
    assert csv_safe("=1+2") == "'=1+2" and csv_safe("-0.5") == "-0.5" and csv_safe("@SUM(A1)") == "'@SUM(A1)"
    leaf = tmp_path / "parts"
    leaf.mkdir()
    src = root / "cookie" / "test" / "good"
    shutil.copy(src / "rgb" / "000.png", leaf / "+cmd.png")
    shutil.copy(src / "xyz" / "000.tiff", leaf / "+cmd.tiff")
    os.chdir(tmp_path)
    code, _, err = run(["score", model, "parts/+cmd.png", "=HYPERLINK(1)", "--csv", tmp_path / "s.csv"], capsys)
    assert code == 2  # the second input does not exist
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert {r["path"] for r in rows} == {"'=HYPERLINK(1)", "parts/+cmd.png"}
    assert {r["name"] for r in rows} == {"'=HYPERLINK(1)", "'+cmd"}


def test_eval_on_another_category_warns_and_strict_refuses(tiny_xyz_model, tmp_path, capsys, caplog):
    root, model = tiny_xyz_model
    other = tmp_path / "other"
    shutil.copytree(root / "cookie", other / "puck")
    code, out, err = run(["eval", model, other, "-c", "puck"], capsys)
    assert code == 0, err
    assert "fitted on category 'cookie', evaluated on 'puck'" in caplog.text
    caplog.clear()
    code, out, err = run(["eval", model, other, "-c", "puck", "--strict"], capsys)
    one_line_error(code, err, "fitted on category 'cookie'")
    code, out, err = run(["eval", model, root, "-c", "cookie", "--strict"], capsys)
    assert code == 0 and "fitted on category" not in caplog.text


def test_demo_data_force_never_deletes_user_files(tmp_path, capsys):
    out = tmp_path / "demo"
    small = ["--size", "64", "--train", "1", "--validation", "0", "--test-good", "1", "--test-per-defect", "1",
             "--categories", "cookie", "--defect-types", "dent", "--workers", "1"]
    assert run(["demo-data", out, *small], capsys)[0] == 0
    mine = out / "cookie" / "train" / "good" / "rgb" / "my_photo.png"
    mine.write_bytes(b"precious")
    (out / "notes.txt").write_text("mine")
    code, _, err = run(["demo-data", out, *small, "--seed", "1", "--force"], capsys)
    one_line_error(code, err, "did not write")
    assert mine.read_bytes() == b"precious" and (out / "notes.txt").read_text() == "mine"
    mine.unlink()
    (out / "notes.txt").unlink()
    code, _, err = run(["demo-data", out, *small, "--seed", "1", "--force"], capsys)
    assert code == 0, err
    assert '"seed": 1' in (out / ".lsfa_demo.json").read_text()


def test_parts_generator_force_never_deletes_user_files(tmp_path):
    from core.data.parts import generate_parts_dataset
    from core.errors import UserError

    kw = dict(size=32, n_train=1, n_validation=0, n_test_good=1, n_test_per_defect=0)
    out = generate_parts_dataset(tmp_path / "parts", seed=0, **kw)
    extra = next(out.rglob("*.png")).parent / "keep_me.png"
    extra.write_bytes(b"mine")
    with pytest.raises(UserError, match="did not write"):
        generate_parts_dataset(out, seed=1, force=True, **kw)
    assert extra.read_bytes() == b"mine"
    extra.unlink()
    generate_parts_dataset(out, seed=1, force=True, **kw)


def test_memory_error_is_one_line(tmp_path, capsys, monkeypatch):
    import core.model_io

    def exhausted(path):
        raise MemoryError

    monkeypatch.setattr(core.model_io, "load_model", exhausted)
    code, _, err = run(["eval", tmp_path / "m.lsfa", tmp_path, "-c", "x"], capsys)
    one_line_error(code, err, "not enough memory")
