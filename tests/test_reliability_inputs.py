"""Issue 15 (reliability), inputs: clouds in mm/cm, memory bombs, the preprocessing cache,
one bad input in a score batch, LZW TIFFs, no stray tifffile log line."""

import csv
import logging
import shutil

import numpy as np
import pytest
import tifffile

from core.cli import main
from core.data.imageio import read_xyz
from core.data.preprocess import preprocess
from core.data.refs import SampleRef
from core.errors import DataError


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def scaled_copy(root, dest, factor):
    """The demo dataset with every xyz TIFF multiplied by ``factor`` (1000 = millimetres)."""
    shutil.copytree(root, dest)
    for f in dest.rglob("*.tiff"):
        tifffile.imwrite(f, tifffile.imread(f) * np.float32(factor), photometric="rgb")
    return dest


# ------------------------------------------------------------------ 1. units


def test_millimetre_clouds_are_refused_and_scored_with_xyz_units(tiny_xyz_model, tmp_path, capsys, caplog):
    root, model = tiny_xyz_model
    mm = scaled_copy(root, tmp_path / "mm", 1000)
    good = mm / "cookie" / "test" / "good"
    code, out, err = run(["score", model, good], capsys)
    assert code == 2
    row = next(csv.DictReader(out.splitlines()))
    assert row["verdict"] == "SKIPPED" and "--xyz-units mm" in row["error"] and "000.tiff" in caplog.text
    assert "median point spacing" in row["error"]
    code, out_m, _ = run(["score", model, root / "cookie" / "test" / "good"], capsys)
    code_mm, out_mm, err = run(["score", model, good, "--xyz-units", "mm"], capsys)
    assert code == code_mm == 0, err
    as_m = next(csv.DictReader(out_m.splitlines()))
    as_mm = next(csv.DictReader(out_mm.splitlines()))
    assert float(as_mm["image_score"]) == pytest.approx(float(as_m["image_score"]), rel=1e-3)


def test_centimetre_clouds_are_refused_by_eval(tiny_xyz_model, tmp_path, capsys):
    root, model = tiny_xyz_model
    cm = scaled_copy(root, tmp_path / "cm", 100)
    code, out, err = run(["eval", model, cm, "-c", "cookie"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "--xyz-units cm" in err and "median point spacing" in err and ".tiff" in err


def test_fit_on_millimetre_data_names_the_option(tiny_xyz_model, tmp_path, capsys):
    root, _ = tiny_xyz_model
    mm = scaled_copy(root, tmp_path / "mm", 1000)
    code, out, err = run(["fit", mm, "-c", "cookie", "-o", tmp_path / "x.lsfa", "--modalities", "xyz",
                          "--no-self-check", "--no-adapt"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "--xyz-units mm" in err and "no training sample has any foreground" not in err
    assert not (tmp_path / "x.lsfa").exists()
    code, out, err = run(["fit", mm, "-c", "cookie", "-o", tmp_path / "x.lsfa", "--modalities", "xyz",
                          "--no-self-check", "--no-adapt", "--xyz-units", "mm"], capsys)
    assert code == 0, err


# ------------------------------------------------------------------ 2. memory budget


def test_cloud_above_the_memory_budget_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.tiff"
    tifffile.imwrite(path, np.zeros((400, 400, 3), np.float32), compression="zlib", photometric="rgb")
    assert path.stat().st_size < 200_000  # small file, large grid
    monkeypatch.setenv("LSFA_MEMORY_BUDGET_MB", "16")  # 400² px × 200 B ≈ 31 MB needed
    with pytest.raises(DataError, match="big.tiff: point cloud is 400×400 px; processing it needs about") as err:
        read_xyz(path)
    assert "per-sample memory budget of 16 MiB (refused" in str(err.value)
    npy = tmp_path / "big.npy"
    np.save(npy, np.zeros((400, 400, 3), np.float32))
    with pytest.raises(DataError, match="memory budget"):
        read_xyz(npy)
    monkeypatch.setenv("LSFA_MEMORY_BUDGET_MB", "64")
    assert read_xyz(path).shape == (400, 400, 3)


def test_small_tiff_claiming_9984_squared_is_refused_not_a_memory_error(tmp_path, monkeypatch, capsys):
    """The issue's case: a tiny file whose header says 9984×9984 (under the 100 Mpx limit);
    preprocessing it would need ~20 GB."""
    import struct

    path = tmp_path / "bomb.tiff"
    tifffile.imwrite(path, np.zeros((8, 8, 3), np.float32), photometric="rgb")
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        for name in ("ImageWidth", "ImageLength"):
            tag = tif.pages[0].tags[name]
            fmt = "<I" if tag.dtype == 4 else "<H"
            data[tag.valueoffset:tag.valueoffset + struct.calcsize(fmt)] = struct.pack(fmt, 9984)
    path.write_bytes(bytes(data))
    assert path.stat().st_size < 2000
    monkeypatch.setenv("LSFA_MEMORY_BUDGET_MB", "8192")  # a machine with 16 GB free
    with pytest.raises(DataError, match="9984×9984 px; processing it needs about 18.57 GiB"):
        read_xyz(path)


# ------------------------------------------------------------------ 5. cache


def _sample(root):
    leaf = root / "cookie" / "train" / "good"
    return SampleRef("000", "cookie", "train", "good", leaf / "rgb" / "000.png", leaf / "xyz" / "000.tiff").load()


def test_unwritable_cache_never_stops_preprocessing(tiny_xyz_model, tmp_path, caplog, monkeypatch):
    root, _ = tiny_xyz_model
    sample = _sample(root)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        out = preprocess(sample, cache_dir=blocker / "cache")  # a cache folder that cannot exist
        assert out.meta["preprocess"]["cached"] is False
    assert caplog.text.count("cannot be written") == 1  # logged once

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    cache = tmp_path / "full"
    assert preprocess(sample, cache_dir=cache).xyz is not None
    assert "No space left on device" in caplog.text and not list(cache.glob("*"))  # no temp file left


def test_truncated_cache_entry_is_dropped_and_recomputed(tiny_xyz_model, tmp_path, caplog):
    root, _ = tiny_xyz_model
    sample = _sample(root)
    cache = tmp_path / "cache"
    first = preprocess(sample, cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:40])  # truncated: BadZipFile
    caplog.set_level(logging.WARNING)
    again = preprocess(sample, cache_dir=cache)
    assert again.meta["preprocess"]["cached"] is False and "dropping unusable entry" in caplog.text
    np.testing.assert_array_equal(again.xyz, first.xyz)
    assert preprocess(sample, cache_dir=cache).meta["preprocess"]["cached"] is True  # rewritten whole


# ------------------------------------------------------------------ 6. score batches


def test_one_bad_input_does_not_abort_a_score_batch(tiny_xyz_model, tmp_path, capsys):
    root, model = tiny_xyz_model
    leaf = tmp_path / "cookie" / "test" / "good"
    shutil.copytree(root / "cookie" / "test" / "good", leaf)
    (leaf / "xyz" / "000.tiff").rename(leaf / "xyz" / "001.tiff")  # 000.png loses its partner
    shutil.copy(root / "cookie" / "test" / "dent" / "rgb" / "000.png", tmp_path / "bad.png")
    (tmp_path / "bad.pcd").write_text("VERSION 0.7\nFIELDS x y\nnonsense\n")
    good = root / "cookie" / "test" / "dent" / "rgb" / "000.png"
    csv_path = tmp_path / "s.csv"
    code, out, err = run(["score", model, leaf / "rgb" / "000.png", tmp_path / "bad.pcd", tmp_path / "nope.png",
                          good, "--csv", csv_path], capsys)
    assert code == 2 and "Traceback" not in err
    rows = {r["path"]: r for r in csv.DictReader(csv_path.open())}
    assert len(rows) == 4
    assert rows[str(good)]["verdict"] in ("OK", "NG") and rows[str(good)]["error"] == ""
    assert "missing xyz file" in rows[str(leaf / "rgb" / "000.png")]["error"]
    assert "PCD" in rows[str(tmp_path / "bad.pcd")]["error"]
    assert "not found" in rows[str(tmp_path / "nope.png")]["error"]
    assert sum(r["verdict"] == "SKIPPED" for r in rows.values()) == 3


# ------------------------------------------------------------------ 10. TIFF details


def test_lzw_compressed_tiff_is_read(tmp_path):
    xyz = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "lzw.tiff", xyz, compression="lzw", photometric="rgb")
    np.testing.assert_array_equal(read_xyz(tmp_path / "lzw.tiff"), xyz)


def test_corrupt_tiff_gives_only_the_one_line(tmp_path, caplog):
    path = tmp_path / "a.tiff"
    tifffile.imwrite(path, np.ones((8, 8, 3), np.float32), photometric="rgb")
    data = bytearray(path.read_bytes())
    data[4:8] = b"\xff\xff\xff\x00"  # first-page offset past the end
    path.write_bytes(bytes(data))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DataError, match="a.tiff"):
        read_xyz(path)
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]
