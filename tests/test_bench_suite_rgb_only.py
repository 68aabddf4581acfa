"""bench/bench_suite.py --rgb-only: generated sets read without their point clouds, as 2D data."""

from __future__ import annotations

import pytest

from tests._bench_modules import load_bench


@pytest.fixture(scope="module")
def bench_suite():
    return load_bench("bench_suite")


def test_generated_sets_are_read_without_point_clouds(bench_suite, tmp_path):
    from core.data.dataset import open_dataset
    from core.demo import generate_demo_dataset
    from core.pipeline import training_has_point_clouds

    data = tmp_path / "suite"
    root = generate_demo_dataset(data / "demo_9", seed=9, categories=["puck"], size=64, n_train=2,
                                 n_validation=1, n_test_good=1, n_test_per_defect=1, defect_types=["dent"])
    shared = tmp_path / "shared_tire"
    rows = bench_suite.rgb_only_rows([("tuning", "demo-9", root, "puck"), ("tuning", "tire", shared, "tire")], data)
    (_, name, copy, cat), real = rows
    assert name == "demo-9 (RGB)" and copy == data / "rgb_only" / "demo_9" and cat == "puck"
    assert real == ("tuning", "tire", shared, "tire")  # outside --data: RGB only already, read as it is
    assert training_has_point_clouds(root, "puck") and not training_has_point_clouds(copy, "puck")
    original, rgb_only = (open_dataset(r).samples("puck", "test") for r in (root, copy))
    assert [r.label for r in rgb_only] == [r.label for r in original]
    assert all(r.xyz_path is None and r.mask_path is not None for r in rgb_only if r.label != "good")
    assert all(r.xyz_path is not None for r in original)  # the generated set is untouched
    assert bench_suite.without_point_clouds(root, copy) == copy  # a second run reuses the links
