"""bench/compare_suite.py: suite runs side by side, as decision rules are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._bench_modules import load_bench


@pytest.fixture(scope="module")
def compare_suite():
    return load_bench("compare_suite")


def row(group, name, cat, fused_i, pro, rgb=None, xyz=None):
    r = {"group": group, "name": name, "category": cat, "fused": {"I": fused_i, "P": 0.9, "PRO": pro}}
    if rgb is not None:
        r.update(rgb={"I": rgb, "PRO": 0.9}, xyz={"I": xyz, "PRO": 0.9})
    return r


def write(path: Path, rows) -> str:
    path.write_text(json.dumps({"overrides": {}, "rows": rows}))
    return str(path)


def test_a_run_split_over_two_files_is_compared_dataset_by_dataset(compare_suite, tmp_path, capsys):
    base = write(tmp_path / "base.json", [row("tuning", "demo-1", "puck", 0.80, 0.90, 0.7, 0.75),
                                          row("tuning", "tire", "tire", 0.90, 0.94),
                                          row("confirmation", "parts", "gear", 0.70, 0.86, 0.72, 0.43)])
    cand_t = write(tmp_path / "cand_t.json", [row("tuning", "demo-1", "puck", 0.86, 0.92, 0.8, 0.75),
                                              row("tuning", "tire", "tire", 0.89, 0.94)])
    cand_c = write(tmp_path / "cand_c.json", [row("confirmation", "parts", "gear", 0.69, 0.88, 0.73, 0.44)])
    rows, means = compare_suite.compare([compare_suite.load_rows(base), compare_suite.load_rows(f"{cand_t},{cand_c}")])
    assert [r["name"] for r in rows] == ["demo-1", "tire", "parts"]
    assert rows[0]["dI"] == pytest.approx(0.06) and rows[2]["dI"] == pytest.approx(-0.01)
    assert rows[1]["runs"][1]["rgb"] is None and rows[0]["runs"][1]["rgb"] == 0.8
    assert means["tuning"]["I"] == pytest.approx([0.85, 0.875]) and means["tuning"]["PRO"] == pytest.approx([0.92, 0.93])
    assert (means["tuning"]["higher"], means["tuning"]["lower"]) == (1, 1)
    assert means["confirmation"]["n"] == 1 and means["confirmation"]["lower"] == 1


def test_datasets_missing_from_a_run_are_left_out(compare_suite, tmp_path):
    base = write(tmp_path / "base.json", [row("tuning", "demo-1", "puck", 0.8, 0.9), row("tuning", "tire", "tire", 0.9, 0.94)])
    cand = write(tmp_path / "cand.json", [row("tuning", "tire", "tire", 0.92, 0.95)])
    rows, means = compare_suite.compare([compare_suite.load_rows(base), compare_suite.load_rows(cand)])
    assert [r["name"] for r in rows] == ["tire"] and means["tuning"]["I"] == pytest.approx([0.9, 0.92])
