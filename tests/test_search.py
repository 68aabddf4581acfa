"""Issue 11 (speed): approximate nearest-neighbour search chosen at fit time (core.scoring.ann).

IVF-Flat must return the exact 1-NN on clustered data at the probe count the check picks, the
check must fall back to exact search when IVF misses, and the choice must survive a model-file
round trip; model files written before approximate search load with exact search."""

import numpy as np
import pytest

from core.errors import ModelFileError
from core.model_io import load_model, save_model
from core.scoring.ann import MIN_RECALL, SearchChoice, choose_search, train_centroids
from core.scoring.memory_bank import MemoryBank
from tests.test_reliability_model_file import _DELETE as _DELETE_KEY
from tests.test_reliability_model_file import _set, rewrite


def blobs(n: int, d: int, n_clusters: int, seed: int, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, d), cluster centres) of well-separated Gaussian blobs, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_clusters, d)).astype(np.float32)
    pts = centres[rng.integers(n_clusters, size=n)] + rng.normal(0, spread, (n, d))
    return pts.astype(np.float32), centres


def sample_sets(points: np.ndarray, per_sample: int) -> list[np.ndarray]:
    return [points[i:i + per_sample] for i in range(0, len(points), per_sample)]


def brute_nearest(bank: np.ndarray, q: np.ndarray) -> np.ndarray:
    d2 = (q.astype(np.float64) ** 2).sum(1)[:, None] - 2 * q.astype(np.float64) @ bank.T.astype(np.float64) \
        + (bank.astype(np.float64) ** 2).sum(1)[None]
    return d2.argmin(1)


def test_ivf_finds_the_exact_nearest_neighbour_on_clustered_data():
    bank_pts, centres = blobs(5000, 16, 100, seed=1)
    rng = np.random.default_rng(2)
    held_out = (centres[rng.integers(100, size=1200)] + rng.normal(0, 0.05, (1200, 16))).astype(np.float32)
    test = (centres[rng.integers(100, size=500)] + rng.normal(0, 0.05, (500, 16))).astype(np.float32)
    bank = MemoryBank(bank_pts)
    choice = bank.choose_search(sample_sets(held_out, 100), seed=0, min_bank=1000, nlist=25)
    assert choice.kind == "ivf_flat" and choice.nlist == 25 and 1 <= choice.nprobe <= 32
    assert choice.recall >= MIN_RECALL and choice.n_check == 1200
    dist, idx = bank.nearest(test)
    exact_dist, _ = bank.nearest(test, exact=True)
    np.testing.assert_array_equal(idx, brute_nearest(bank_pts, test))
    np.testing.assert_allclose(dist, exact_dist, rtol=1e-3, atol=1e-4)
    # the check probed fewer cells than all of them, so the search really is approximate
    assert bank._ivf.nprobe == choice.nprobe < choice.nlist


def test_check_falls_back_to_exact_when_ivf_misses():
    # Uniform noise in 32 dimensions has no cell structure: one probed cell of 64 misses most 1-NNs.
    rng = np.random.default_rng(3)
    bank = MemoryBank(rng.normal(size=(4000, 32)).astype(np.float32))
    queries = rng.normal(size=(800, 32)).astype(np.float32)
    choice = bank.choose_search(sample_sets(queries, 200), seed=0, min_bank=1000, nlist=64)
    assert choice.kind == "exact" and bank._ivf is None and bank.centroids is None
    assert choice.recall < MIN_RECALL and "did not match" in choice.reason
    assert "exact" in choice.describe()
    # small banks and missing check patches keep exact search without building anything
    assert choose_search(bank, [queries], min_bank=10_000)[0].kind == "exact"
    assert choose_search(bank, [], min_bank=1)[0].kind == "exact"
    # too few cells to save distance computations: exact without a check
    few = choose_search(bank, [queries], min_bank=1, nlist=4)[0]
    assert few.kind == "exact" and few.n_check == 0 and "would not save" in few.reason


def test_centroids_are_deterministic_per_seed():
    pts, _ = blobs(2000, 8, 20, seed=5)
    a, b = train_centroids(pts, 20, seed=7), train_centroids(pts, 20, seed=7)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20, 8) and a.dtype == np.float32


@pytest.mark.parametrize("search", ["exact", "ivf", "train"])
def test_searches_leave_the_threads_of_torch_as_they_found_them(search):
    """OpenMP's thread count is per thread and shared by faiss and torch: a search that left it
    at 1 made every later torch op of the thread (RGB features, adaptor training) one-threaded,
    and a second fit of the same data differed from the first."""
    import torch

    from core.scoring._faiss import SEARCH_THREADS, faiss_threads

    pts, _ = blobs(2000, 16, 20, seed=3)
    before = torch.get_num_threads()
    torch.set_num_threads(SEARCH_THREADS + 1)
    try:
        if search == "train":
            train_centroids(pts, 20, seed=0)
        else:
            bank = MemoryBank(pts)
            if search == "ivf":
                bank.use_search(SearchChoice("ivf_flat", 20, 4), train_centroids(pts, 20, seed=0))
            bank.knn(pts[:50], 3)
        assert torch.get_num_threads() == SEARCH_THREADS + 1
        with faiss_threads():
            assert torch.get_num_threads() == SEARCH_THREADS  # the searches themselves: one thread
        assert torch.get_num_threads() == SEARCH_THREADS + 1
    finally:
        torch.set_num_threads(before)


def test_search_choice_validation():
    good = SearchChoice("ivf_flat", 10, 2, 0.995, 1e-4, 500, "ok")
    assert SearchChoice.from_dict(good.to_dict()) == good
    for bad in ({"kind": "hnsw"}, {"kind": "ivf_flat", "nlist": 4, "nprobe": 5},
                {"kind": "exact", "recall": float("nan")}, {"kind": "exact", "nlist": True}):
        with pytest.raises(ValueError):
            SearchChoice.from_dict(bad)
    bank = MemoryBank(np.zeros((50, 4), np.float32))
    with pytest.raises(ValueError, match="centroids"):
        bank.use_search(good, np.zeros((3, 4), np.float32))


def _with_ivf(model_path, tmp_path):
    """The tiny xyz model with its bank switched to IVF-Flat (8 cells, 2 probed), saved."""
    model = load_model(model_path)
    bank = model.banks["xyz"]
    choice = SearchChoice("ivf_flat", 8, 2, 0.995, 1e-4, 300, "set by the test")
    bank.use_search(choice, train_centroids(bank.vectors, 8, seed=0))
    path = tmp_path / "ivf.lsfa"
    save_model(model, path)
    return model, path


def test_model_file_round_trip_keeps_the_search_choice(tiny_xyz_model, tmp_path, capsys):
    from core.cli import main

    root, model_path = tiny_xyz_model
    model, path = _with_ivf(model_path, tmp_path)
    loaded = load_model(path)
    bank = loaded.banks["xyz"]
    assert bank.search == model.banks["xyz"].search and bank._ivf is not None
    np.testing.assert_array_equal(bank.centroids, model.banks["xyz"].centroids)
    q = model.banks["xyz"].vectors[:50] + 0.02
    for a, b in zip(bank.nearest(q), model.banks["xyz"].nearest(q)):
        np.testing.assert_array_equal(a, b)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "xyz nearest-neighbour search" in out and f"{bank.search.nprobe} probed" in out
    assert "equals exact search for 99.50 %" in out  # the measured recall is shown


def test_model_without_search_entry_loads_with_exact_search(tiny_xyz_model, tmp_path, capsys):
    from core.cli import main

    _, model_path = tiny_xyz_model
    _, path = _with_ivf(model_path, tmp_path)

    def drop_ivf(tensors):
        del tensors["bank.xyz.ivf_centroids"]

    old = rewrite(path, tmp_path / "old.lsfa", _set(["search"], _DELETE_KEY), drop_ivf)
    bank = load_model(old).banks["xyz"]
    assert bank.search.kind == "exact" and bank._ivf is None
    assert main(["info", str(old)]) == 0
    assert "bank patches): exact (the model file predates approximate search)" in capsys.readouterr().out
    # an IVF entry whose centroids are gone, or centroids without an IVF entry, are refused
    no_centroids = rewrite(path, tmp_path / "nc.lsfa", None, drop_ivf)
    with pytest.raises(ModelFileError, match="centroids"):
        load_model(no_centroids)
    stray = rewrite(path, tmp_path / "stray.lsfa", _set(["search"], _DELETE_KEY))
    with pytest.raises(ModelFileError, match="centroids but its search is exact"):
        load_model(stray)



def test_fit_checks_approximate_search_on_held_out_patches(tiny_xyz_model, tmp_path, monkeypatch):
    """The real fit path: with the size and cost limits lifted, the tiny model's bank is checked on
    its validation patches; ``--search exact`` skips the check."""
    from core.cli import main
    from core.scoring import ann

    root, _ = tiny_xyz_model
    monkeypatch.setattr(ann, "ANN_MIN_BANK", 1)
    monkeypatch.setattr(ann, "MAX_DISTANCE_SHARE", 1.0)
    out = tmp_path / "auto.lsfa"
    assert main(["fit", str(root), "-c", "cookie", "-o", str(out), "--modalities", "xyz",
                 "--no-self-check", "--no-adapt"]) == 0
    choice = load_model(out).banks["xyz"].search
    assert choice.n_check > 0 and choice.recall is not None  # measured on the validation samples
    assert (choice.kind == "ivf_flat") == (choice.recall >= MIN_RECALL and choice.max_score_rel_err <= 1e-3)
    forced = tmp_path / "exact.lsfa"
    assert main(["fit", str(root), "-c", "cookie", "-o", str(forced), "--modalities", "xyz",
                 "--no-self-check", "--no-adapt", "--search", "exact"]) == 0
    model = load_model(forced)
    assert model.config.search == "exact" and model.banks["xyz"].search.kind == "exact"
    assert model.banks["xyz"].search.n_check == 0 and "--search exact" in model.banks["xyz"].search.reason


def test_search_option_is_checked_and_described():
    from core.config import FitConfig, option_choices, option_help
    from core.errors import UserError

    assert option_choices("search") == ("auto", "exact") and "IVF-Flat" in option_help("search")
    with pytest.raises(UserError, match="--search"):
        FitConfig(search="hnsw")
