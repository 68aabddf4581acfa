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


def scored_row(name, labels, fused, rgb=None, xyz=None):
    """A row that kept each test part's scores (as bench_suite writes since the 29th session)."""
    from sklearn.metrics import roc_auc_score

    r = row("tuning", name, "puck", float(roc_auc_score(labels, fused)), 0.9)
    r["samples"] = {"names": [f"p{i}" for i in range(len(labels))], "defect": list(map(bool, labels)), "fused": list(fused)}
    for m, s in (("rgb", rgb), ("xyz", xyz)):
        if s is not None:
            r[m] = {"I": float(roc_auc_score(labels, s)), "PRO": 0.9}
            r["samples"][m] = list(s)
    return r


def test_a_change_far_beyond_sampling_noise_has_an_interval_clear_of_zero(compare_suite, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(12), np.ones(30)].astype(bool)
    noise = rng.normal(size=labels.size)
    weak, strong = noise + 0.5 * labels, noise + 3.0 * labels  # the same parts, scored better
    base = write(tmp_path / "b.json", [scored_row("demo-1", labels, weak), scored_row("demo-2", labels, weak)])
    same = write(tmp_path / "s.json", [scored_row("demo-1", labels, weak), scored_row("demo-2", labels, weak)])
    better = write(tmp_path / "c.json", [scored_row("demo-1", labels, strong), scored_row("demo-2", labels, strong)])
    _, up = compare_suite.compare([compare_suite.load_rows(base), compare_suite.load_rows(better)])
    low, high = up["tuning"]["dI_interval"]
    assert up["tuning"]["paired"] == 2 and 0 < low < up["tuning"]["I"][1] - up["tuning"]["I"][0] < high
    _, flat = compare_suite.compare([compare_suite.load_rows(base), compare_suite.load_rows(same)])
    assert flat["tuning"]["dI_interval"] == (0.0, 0.0)  # identical scores: nothing to resample apart


def test_runs_on_other_test_parts_or_without_scores_get_no_interval(compare_suite, tmp_path):
    import numpy as np

    labels = np.r_[np.zeros(4), np.ones(6)].astype(bool)
    scores = np.arange(10.0)
    other = scored_row("demo-1", labels, scores)
    other["samples"]["names"][0] = "elsewhere"
    base = write(tmp_path / "b.json", [scored_row("demo-1", labels, scores), row("tuning", "tire", "tire", 0.9, 0.9)])
    cand = write(tmp_path / "c.json", [other, row("tuning", "tire", "tire", 0.9, 0.9)])
    _, means = compare_suite.compare([compare_suite.load_rows(base), compare_suite.load_rows(cand)])
    assert "dI_interval" not in means["tuning"]
