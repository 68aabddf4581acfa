"""bench/fusion_oracle.py: hindsight bounds on what a fusion of the two branches could reach."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests._bench_modules import load_bench


@pytest.fixture(scope="module")
def oracle():
    return load_bench("fusion_oracle")


def _samples(seed, n_good=24, n_bad=60):
    """Each branch sees its own half of the defects; a poor fused score (the two summed raw, the
    noisy 3D branch in units 50x the RGB branch's)."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_good), np.ones(n_bad)].astype(bool)
    rgb_sees = labels & (np.arange(labels.size) % 2 == 0)
    xyz_sees = labels & ~rgb_sees
    rgb = rng.normal(size=labels.size) + 3.0 * rgb_sees
    xyz = 50 * (rng.normal(size=labels.size) + 3.0 * xyz_sees)
    return {"defect": labels.tolist(), "fused": (rgb + xyz).tolist(), "rgb": rgb.tolist(), "xyz": xyz.tolist()}


def test_oracles_bound_the_fused_score_and_the_branches(oracle):
    s = _samples(1)
    labels = np.asarray(s["defect"])
    o = oracle.oracles(s)
    assert o["fused"] == pytest.approx(roc_auc_score(labels, s["fused"]))
    assert o["a"] == max(o["fused"], o["rgb"], o["xyz"])
    # each branch sees half of the defects: alone about 0.75, weighted in good units far above both
    assert max(o["rgb"], o["xyz"]) < 0.85
    assert o["b"] > max(o["rgb"], o["xyz"]) + 0.08
    assert o["b"] > o["fused"] + 0.05  # the raw sum is dominated by the 3D branch's units


def test_the_script_reads_suite_json_and_prints_each_files_mean(oracle, tmp_path, capsys):
    rows = [{"name": "demo-x", "category": c, "fused": {"I": 0.0, "P": 0.0, "PRO": 0.9}, "samples": _samples(i)}
            for i, c in enumerate(("puck", "cookie"))]
    rows.append({"name": "tire", "category": "tire", "fused": {"I": 0.9, "P": 0.9, "PRO": 0.9},
                 "samples": {"defect": [False, True], "fused": [0.0, 1.0]}})  # RGB only: left out
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"overrides": {}, "rows": rows}))
    assert oracle.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "demo-x" in out and "tire" not in out.split("MEAN")[0]
    assert "(2 rows)" in out
