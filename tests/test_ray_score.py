"""Issue 12: ``lsfa score --engine ray`` gives the local engine's rows (same columns, order,
verdicts, scores) on a local 2-CPU Ray instance, a corrupt input is a SKIPPED row, an actor killed
mid-run loses and duplicates no input; the local path never imports Ray; ``--parquet``."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.cli import main
from core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def assert_same_rows(rows: list[dict], expected: list[dict]) -> None:
    """Same inputs in the same order, same verdicts, regions and errors, scores within 1e-4
    relative. ``date`` (when each run wrote its table) is ignored: the two runs differ in time."""
    assert [r["path"] for r in rows] == [r["path"] for r in expected]
    for got, want in zip(rows, expected):
        assert {k: v for k, v in got.items() if k not in ("image_score", "date")} == \
            {k: v for k, v in want.items() if k not in ("image_score", "date")}
        if want["image_score"]:
            assert float(got["image_score"]) == pytest.approx(float(want["image_score"]), rel=1e-4)
        else:
            assert got["image_score"] == ""


# --- without Ray ---------------------------------------------------------------------------------

def test_local_scoring_and_import_core_never_import_ray(tmp_path):
    code = ("import sys, core, core.cli, core.commands.score, core.score_rows; "
            "core.cli.build_parser(); sys.exit(1 if 'ray' in sys.modules else 0)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr or "core imported ray"


def test_missing_ray_or_pyarrow_is_one_clear_user_error(monkeypatch):
    from core.ray_engine import import_ray
    from core.rows import require_pyarrow

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UserError, match=r"--engine ray needs Ray.*pip install 'ray\[data\]=="):
        import_ray()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(UserError, match="--parquet needs pyarrow"):
        require_pyarrow()


def test_ray_options_without_ray_engine_are_refused(tmp_path, capsys):
    assert main(["score", str(tmp_path / "m.lsfa"), str(tmp_path), "--workers", "2"]) == 2
    assert "options of --engine ray" in capsys.readouterr().err


def test_an_unreachable_ray_head_is_one_clear_error_at_once():
    from core.ray_engine import check_reachable

    with pytest.raises(UserError, match=r"--address 127.0.0.1:1: cannot reach the Ray head"):
        check_reachable("127.0.0.1:1")
    with pytest.raises(UserError, match="expected 'auto', HOST:PORT"):
        check_reachable("head:port")
    check_reachable("auto")  # Ray finds the local cluster itself


def test_sample_refs_cross_the_dataset_as_json_unchanged():
    from core.data.refs import SampleRef
    from core.ray_engine import ref_from_json, ref_to_json

    ref = SampleRef("good/000", "cookie", "test", None, rgb_path=Path("/d/rgb/000.png"),
                    xyz_path=Path("/d/xyz/000.tiff"), kind="files", extra=(("pcd_fields", "x,y,z"),))
    assert ref_from_json(ref_to_json(ref)) == ref


def test_rows_cross_the_dataset_as_json_with_their_report_png():
    from core.ray_engine import row_from_json, row_to_json
    from core.score_rows import REPORT_PNG

    row = {"path": "a.png", "regions": 2, REPORT_PNG: b"\x89PNG\r\n\x00\xff"}
    assert row_from_json(row_to_json(row)) == row
    assert row_from_json(row_to_json({"path": "b.png"})) == {"path": "b.png"}


def test_batches_and_pool_follow_workers_and_sample_count():
    from core.ray_engine import batch_size, pool_size

    assert pool_size(None, 8, 3) == 3  # never more actors than samples
    assert pool_size(None, 2, 100) == 2
    assert batch_size(6, 2) == 1
    assert batch_size(100, 2) == 13  # about four calls per actor
    assert batch_size(10_000, 2) == 16


# --- the local engine's table (the reference), also as Parquet -----------------------------------

@pytest.fixture(scope="module")
def inputs(_tiny_xyz_fit, tmp_path_factory):
    """(model, inputs): the tiny test and validation folders (5 samples) and a corrupt sample."""
    root, model = _tiny_xyz_fit
    bad = tmp_path_factory.mktemp("bad")
    first_png = sorted((root / "cookie" / "test" / "good" / "rgb").glob("*.png"))[0]
    shutil.copy(first_png, bad / "broken.png")
    (bad / "broken.tiff").write_bytes(b"not a tiff at all")
    return model, [root / "cookie" / "test", bad / "broken.png", root / "cookie" / "validation"]


@pytest.fixture(scope="module")
def local_table(inputs, tmp_path_factory):
    """(columns, rows, maps folder) of ``lsfa score`` with the local engine, checked against its Parquet."""
    model, paths = inputs
    out = tmp_path_factory.mktemp("local")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSFA_CACHE_DIR", str(out / "cache"))
    code = main(["score", str(model), *map(str, paths), "--csv", str(out / "t.csv"),
                 "--parquet", str(out / "t.parquet"), "--maps", str(out / "maps"), "--report", str(out / "r.html")])
    mp.undo()
    assert code == 2  # the corrupt sample
    columns, rows = read_csv(out / "t.csv")
    assert_parquet_matches(out / "t.parquet", rows)
    return columns, rows, out / "maps"


def assert_parquet_matches(path: Path, rows: list[dict]) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed")
    from core.rows import SCORE_COLUMNS

    table = pq.read_table(path)
    assert table.column_names == SCORE_COLUMNS
    assert str(table.schema.field("image_score").type) == "double"
    assert str(table.schema.field("defect_pixels").type) == "int64"
    got = table.to_pylist()
    assert [r["path"] for r in got] == [r["path"] for r in rows]
    for g, r in zip(got, rows):
        assert g["verdict"] == r["verdict"] and g["error"] == r["error"]
        assert g["image_score"] == (float(r["image_score"]) if r["image_score"] else None)
        assert g["defect_pixels"] == (int(r["defect_pixels"]) if r["defect_pixels"] else None)
        assert g["regions"] == (int(r["regions"]) if r["regions"] else None)
        assert g["largest_region_px"] == (int(r["largest_region_px"]) if r["largest_region_px"] else None)
        assert g["date"] == r["date"]  # the CSV and the Parquet file of one run share its date


def test_model_shipped_by_content_is_checked_like_the_file(inputs):
    from core.errors import ModelFileError
    from core.model_file import read_model_bytes
    from core.model_io import load_model

    model_path, _ = inputs
    data = read_model_bytes(model_path)
    assert load_model(model_path, data=data).model_id == load_model(model_path).model_id
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF  # inside the tensor blob: the zip CRC or the SHA-256 catches it
    with pytest.raises(ModelFileError, match=rf"{model_path.name}: .*(corrupt|checksum|bad zip)"):
        load_model(model_path, data=bytes(damaged))


def test_local_table_has_every_input_once_and_the_corrupt_one_skipped(local_table):
    _columns, rows, maps = local_table
    assert len(rows) == 6 and len({r["path"] for r in rows}) == 6
    skipped = [r for r in rows if r["verdict"] == "SKIPPED"]
    assert [Path(r["path"]).name for r in skipped] == ["broken.png"]
    assert "TIFF" in skipped[0]["error"]
    assert {r["verdict"] for r in rows} - {"SKIPPED"} <= {"OK", "NG"}
    assert len(list(maps.glob("*.png"))) == 5


# --- on Ray --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray instance with 2 CPUs for this module; its workers import this checkout, use a
    private cache, and crash once when the yielded marker file exists."""
    ray = pytest.importorskip("ray", reason="ray[data] is not installed (requirements-dev.txt)")
    pytest.importorskip("ray.data", reason="ray[data] is not installed (requirements-dev.txt)")
    from core.ray_engine import CRASH_MARKER_ENV

    work = tmp_path_factory.mktemp("ray")
    marker = work / "crash-once"
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    mp.setenv("LSFA_CACHE_DIR", str(work / "cache"))
    mp.setenv(CRASH_MARKER_ENV, str(marker))  # the workers inherit the environment
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield marker
    finally:
        ray.shutdown()
        mp.undo()


def test_ray_engine_gives_the_local_rows_maps_and_parquet(ray_cluster, inputs, local_table, tmp_path):
    model, paths = inputs
    columns, expected, local_maps = local_table
    code = main(["score", str(model), *map(str, paths), "--engine", "ray", "--workers", "2",
                 "--csv", str(tmp_path / "t.csv"), "--parquet", str(tmp_path / "t.parquet"),
                 "--maps", str(tmp_path / "maps"), "--annotate", "--report", str(tmp_path / "r.html")])
    assert code == 2  # the corrupt sample is a SKIPPED row, not an aborted job
    got_columns, rows = read_csv(tmp_path / "t.csv")
    assert got_columns == columns
    assert_same_rows(rows, expected)
    assert_parquet_matches(tmp_path / "t.parquet", rows)
    assert sorted(p.name for p in (tmp_path / "maps").glob("*.png")) == \
        sorted(p.name for p in local_maps.glob("*.png"))
    assert not list((tmp_path / "maps").glob(".*"))  # no temp files left by the actors
    got, want = (tmp_path / "r.html").read_text(), (local_maps.parent / "r.html").read_text()
    for part in ('<tr class="sample">', "data:image/png;base64,"):  # the actors' annotated overlays
        assert got.count(part) == want.count(part) > 0


def test_cancelling_a_ray_run_writes_no_table_and_frees_the_workers(ray_cluster, inputs, tmp_path, monkeypatch):
    import ray

    from core.commands import _progress
    from core.progress import Progress

    class NoSink:
        def close(self):
            pass

    def cancel_after_first_row():
        progress = Progress(lambda ev: ev.done >= 1 and progress.cancel())
        return progress, NoSink()

    monkeypatch.setattr(_progress, "cli_progress", cancel_after_first_row)
    model, paths = inputs
    out = tmp_path / "out"
    code = main(["score", str(model), *map(str, paths), "--engine", "ray", "--workers", "2",
                 "--csv", str(out / "t.csv"), "--parquet", str(out / "t.parquet")])
    assert code == 130
    assert list(out.iterdir()) == []  # no table, no temp file
    for _ in range(60):  # the job's actors are gone: both CPUs free again (within a minute)
        if ray.available_resources().get("CPU") == 2:
            break
        time.sleep(1)
    assert ray.available_resources().get("CPU") == 2


def test_an_actor_killed_mid_run_loses_and_duplicates_no_input(ray_cluster, inputs, local_table):
    from core.data.dataset import collect_inputs
    from core.model_file import read_model_bytes
    from core.model_io import load_model
    from core.ray_engine import score_on_ray

    model_path, paths = inputs
    _columns, expected, _maps = local_table
    data = read_model_bytes(model_path)
    model = load_model(model_path, data=data)
    refs, bad = collect_inputs(paths)
    assert not bad
    ray_cluster.write_text("armed")
    scored = score_on_ray(model_path, data, model, refs, workers=2)
    assert not ray_cluster.exists()  # an actor took the marker and died with it
    assert [i for i, _row in scored] == list(range(len(refs)))
    assert_same_rows([{k: str(v) for k, v in row.items()} for _i, row in scored], expected)
