"""bench/bench_suite.py --test-scale: more test parts on the same training parts, the first ones unchanged."""

from __future__ import annotations

import pytest

from tests._bench_modules import load_bench


@pytest.fixture(scope="module")
def bench_suite():
    return load_bench("bench_suite")


def test_only_the_test_counts_grow(bench_suite):
    three = bench_suite.test_counts(3)
    assert three["n_test_good"] == 3 * bench_suite.COUNTS["n_test_good"]
    assert three["n_test_per_defect"] == 3 * bench_suite.COUNTS["n_test_per_defect"]
    assert {k: v for k, v in three.items() if "test" not in k} == {
        k: v for k, v in bench_suite.COUNTS.items() if "test" not in k}
    assert bench_suite.test_counts() == bench_suite.COUNTS


def test_a_larger_test_set_keeps_the_first_parts_and_the_training_parts(tmp_path):
    from core.data.parts import generate_parts_dataset

    small = dict(seed=5, categories=["gear"], size=48, n_train=1, n_validation=0, defect_types=["dent"])
    a = generate_parts_dataset(tmp_path / "a", n_test_good=1, n_test_per_defect=1, **small)
    b = generate_parts_dataset(tmp_path / "b", n_test_good=2, n_test_per_defect=2, **small)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.*") if not p.name.startswith("."))
    assert files_a and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    assert len([p for p in b.rglob("*.png") if "test" in p.parts]) > len([p for p in a.rglob("*.png") if "test" in p.parts])


def test_only_the_datasets_asked_for_are_generated(bench_suite, tmp_path):
    wanted = bench_suite.named("parts-7-test2")
    rows = bench_suite.datasets("all", tmp_path, parts_seed=7, test_scale=2,
                                wanted=lambda name: False)  # nothing asked for: listed only
    names = {r[1] for r in rows}
    assert "demo-301-test2" in names and "parts-7-test2" in names
    assert list(tmp_path.iterdir()) == []
    assert wanted("parts-7-test2") and not wanted("demo-301-test2") and bench_suite.named(None) is None
