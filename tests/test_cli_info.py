"""``lsfa info``: table and JSON output on the real data, one-line errors with exit 2."""

from __future__ import annotations

import json

from core.cli import main


def test_info_json_on_tire(shared_data, capsys):
    assert main(["info", "--json", str(shared_data / "mvtec3d_tire_rgb")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "mvtec3d"
    tire = info["categories"]["tire"]
    assert list(tire["splits"]) == ["train", "validation", "test"]
    assert tire["splits"]["train"]["samples"] == 60 and tire["splits"]["validation"]["samples"] == 10
    assert tire["splits"]["test"]["types"] == {"good": 10, "combined": 3, "contamination": 10, "cut": 10, "hole": 10}
    assert tire["splits"]["test"]["modalities"] == {"rgb": 43, "xyz": 0, "gt": 43}
    assert tire["splits"]["train"]["modalities"]["xyz"] == 0
    assert tire["defect_types"] == ["combined", "contamination", "cut", "hole"]


def test_info_table_on_tire(shared_data, capsys):
    assert main(["info", str(shared_data / "mvtec3d_tire_rgb")]) == 0
    out = capsys.readouterr().out
    assert "format: mvtec3d" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["tire", "train", "(all)", "60", "60", "0", "0"] in rows
    assert ["tire", "test", "(all)", "43", "43", "0", "43"] in rows
    assert ["combined", "3"] in rows and ["hole", "10"] in rows


def test_info_on_pcl_folder(shared_data, capsys):
    assert main(["info", "--json", str(shared_data / "pcl_organized")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "folder"
    (cat,) = info["categories"].values()
    (split,) = cat["splits"].values()
    assert split["samples"] == 2 and split["modalities"] == {"rgb": 2, "xyz": 2, "gt": 0}


def test_info_bad_roots_exit_2_with_one_line(tmp_path, capsys):
    for root in (tmp_path / "missing", tmp_path):
        assert main(["info", str(root)]) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lsfa info: error: ") and str(root) in lines[0]
        assert captured.out == ""
    broken = tmp_path / "ds" / "cat" / "train" / "good" / "xyz"
    broken.mkdir(parents=True)
    (broken / "000.tiff").write_bytes(b"x")
    assert main(["info", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "000.tiff: missing RGB image" in err[0]
