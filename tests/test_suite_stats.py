"""bench/suite_stats.py: bootstrap intervals of image AUROC over the suite's test parts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests._bench_modules import load_bench


@pytest.fixture(scope="module")
def stats():
    return load_bench("suite_stats")


def _parts(seed, n_good=12, n_bad=30, separation=1.0):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_good), np.ones(n_bad)].astype(bool)
    return labels, rng.normal(size=labels.size) + separation * labels


def test_replicates_are_aurocs_of_resampled_parts_and_bracket_the_estimate(stats):
    labels, scores = _parts(1)
    reps = stats.resampled_aurocs(labels, [scores, -scores], replicates=500)
    assert reps.shape == (2, 500)
    assert np.allclose(reps[0] + reps[1], 1.0)  # the reversed score is the mirror AUROC on each resample
    low, high = stats.interval(reps[0])
    assert low < roc_auc_score(labels, scores) < high
    assert 0.05 < high - low < 0.4  # 12 good against 30 defective parts: a few hundredths either way


def test_ties_count_half_as_in_the_metric(stats):
    labels = np.array([False, False, True, True])
    reps = stats.resampled_aurocs(labels, [np.ones(4)], replicates=50)
    assert np.all(reps == 0.5)


def test_the_interval_of_the_mean_narrows_with_more_datasets(stats):
    sets = [_parts(s) for s in range(8)]
    one = stats.mean_auroc(sets[:1])
    eight = stats.mean_auroc(sets)
    assert eight[1] - eight[0] < 0.6 * (one[1] - one[0])


def test_a_paired_difference_cancels_what_both_detectors_share(stats):
    labels, scores = _parts(3)
    rng = np.random.default_rng(4)
    nudged = scores + 0.05 * rng.normal(size=scores.size)  # nearly the same detector
    low, high = stats.paired_difference(labels, nudged, scores)
    width_alone = np.subtract(*stats.interval(stats.resampled_aurocs(labels, [scores])[0])[::-1])
    assert low <= 0 <= high and high - low < 0.3 * width_alone
    with pytest.raises(ValueError):
        stats.resampled_aurocs(np.zeros(5, bool), [np.arange(5.0)])


def test_the_script_pools_runs_and_prints_each_row_and_the_mean(stats, tmp_path, monkeypatch, capsys):
    import json

    def run_file(name, seed):
        labels, fused = _parts(seed, separation=2.0)
        rgb = fused + np.random.default_rng(seed).normal(size=fused.size)  # a noisier modality
        row = {"group": "confirmation", "name": name, "category": "gear",
               "fused": {"I": float(roc_auc_score(labels, fused))},
               "rgb": {"I": float(roc_auc_score(labels, rgb))}, "xyz": {"I": 0.5},
               "samples": {"names": [str(i) for i in range(labels.size)], "defect": labels.tolist(),
                           "fused": fused.tolist(), "rgb": rgb.tolist(), "xyz": np.zeros(labels.size).tolist()}}
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"overrides": {}, "rows": [row]}))
        return str(path), row

    (a, ra), (b, rb) = run_file("parts-1", 1), run_file("parts-2", 2)
    monkeypatch.setattr("sys.argv", ["suite_stats.py", a, b])
    stats.main()
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("confirmation parts-1") and ", rgb)" in out[1]
    mean = (ra["fused"]["I"] + rb["fused"]["I"]) / 2
    assert out[-1].startswith("confirmation MEAN ( 2)") and f"{mean:.3f} (" in out[-1]
