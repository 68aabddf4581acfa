"""Built-in demo dataset generator: determinism, layout, exact defect masks, safety."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.data import synthetic as S
from core.errors import UserError
from core.progress import Cancelled, Progress

TINY = dict(size=64, n_train=2, n_validation=1, n_test_good=1, n_test_per_defect=1)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    return S.generate_demo_dataset(tmp_path_factory.mktemp("demo") / "out", seed=3, **TINY)


# ---------------------------------------------------------------------------------- samples


def test_same_seed_gives_identical_arrays_and_other_seed_differs():
    a = S.render_sample(7, "puck", "test/crack", 1, size=96)
    b = S.render_sample(7, "puck", "test/crack", 1, size=96)
    c = S.render_sample(8, "puck", "test/crack", 1, size=96)
    for name in ("rgb", "xyz", "mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.rgb, c.rgb)
    assert not np.array_equal(a.xyz, c.xyz)


def test_samples_differ_between_indices_and_categories():
    a = S.render_sample(0, "cookie", "train", 0, size=96)
    b = S.render_sample(0, "cookie", "train", 1, size=96)
    c = S.render_sample(0, "puck", "train", 0, size=96)
    assert not np.array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.rgb, c.rgb)


@pytest.mark.parametrize("category", S.DEMO_CATEGORIES)
def test_scan_geometry_and_registration(category):
    s = S.render_sample(0, category, "train", 0, size=128)
    assert s.rgb.shape == (128, 128, 3) and s.rgb.dtype == np.uint8
    assert s.xyz.shape == (128, 128, 3) and s.xyz.dtype == np.float32
    zero = s.xyz == 0
    # invalid points are exactly (0, 0, 0); no partially-zero point
    assert np.array_equal(zero.any(-1), zero.all(-1))
    valid = ~zero.all(-1)
    assert 0.9 < valid.mean() < 0.999  # dropouts and shadows exist, most points are measured
    z = s.xyz[..., 2][valid]
    assert 0.37 < z.min() and z.max() < 0.43  # metres, camera ~0.4 m above the table
    # organized: x grows with the column, y with the row (pinhole projection)
    fx = S._FOCAL_PER_PIXEL * 128
    c = (128 - 1) / 2
    cols = np.broadcast_to(np.arange(128), (128, 128))
    u = fx * s.xyz[..., 0][valid] / z + c
    np.testing.assert_allclose(u, cols[valid], atol=1e-3)
    # the object stands out of the table and covers a sizeable central part of the frame
    on = s.render.on_object.reshape(128, 128)
    assert 0.10 < on.mean() < 0.45
    table_z = np.median(s.xyz[..., 2][valid & ~on])
    assert np.median(s.xyz[..., 2][valid & on]) < table_z - 0.005


# ------------------------------------------------------------------------------ defect masks


@pytest.mark.parametrize("kind", list(S.DEFECT_TYPES))
def test_mask_is_exactly_the_changed_pixels(kind):
    clean, dirty = S.render_sample_pair(0, "puck", f"test/{kind}", 2, size=128, full_render=True)
    m = dirty.mask
    assert m.any(), "every defect sample has a defect"
    # outside the mask the written data are identical to the defect-free render
    np.testing.assert_array_equal(dirty.xyz[~m], clean.xyz[~m])
    np.testing.assert_array_equal(dirty.rgb[~m], clean.rgb[~m])
    # the defect is on the object and small
    on = (clean.render.on_object | dirty.render.on_object).reshape(m.shape)
    assert np.all(on[m])
    assert m.sum() < 0.05 * on.sum()
    # the fast partial re-render gives the same result as the full one
    _, fast = S.render_sample_pair(0, "puck", f"test/{kind}", 2, size=128)
    for name in ("rgb", "xyz", "mask"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(dirty, name))


@pytest.mark.parametrize("category", S.DEMO_CATEGORIES)
def test_defect_kinds_change_only_their_modality(category):
    for kind, what in S.DEFECT_TYPES.items():
        clean, dirty = S.render_sample_pair(1, category, f"test/{kind}", 0, size=128)
        m = dirty.mask
        both_valid = np.any(clean.xyz != 0, -1) & np.any(dirty.xyz != 0, -1)
        dz = np.abs(dirty.xyz[..., 2] - clean.xyz[..., 2])[m & both_valid]
        lost = (np.any(clean.xyz != 0, -1) != np.any(dirty.xyz != 0, -1))[m]
        geo_change = (dz.mean() if dz.size else 0.0) > 1e-4 or lost.mean() > 0.3
        if what == "colour":
            np.testing.assert_array_equal(dirty.height, clean.height)
            np.testing.assert_array_equal(dirty.xyz, clean.xyz)
        else:
            assert geo_change, kind
        if what == "geometry":
            np.testing.assert_array_equal(dirty.albedo_grid, clean.albedo_grid)
        else:
            assert not np.array_equal(dirty.albedo_grid, clean.albedo_grid)
            d_rgb = np.abs(dirty.rgb.astype(int) - clean.rgb.astype(int))[m].mean()
            assert d_rgb > 3, kind
        if kind == "dent":
            assert np.all(dirty.height <= clean.height)
        if kind == "bump":
            assert np.all(dirty.height >= clean.height)


def test_defect_strength_scales_amplitude_not_place():
    _, weak = S.render_sample_pair(0, "cookie", "test/dent", 0, size=96, defect_strength=0.5)
    _, strong = S.render_sample_pair(0, "cookie", "test/dent", 0, size=96, defect_strength=2.0)
    assert weak.defect.centre == strong.defect.centre
    assert strong.defect.params["amplitude_m"] == pytest.approx(4 * weak.defect.params["amplitude_m"])


# ---------------------------------------------------------------------------------- dataset


def test_layout_counts_and_file_formats(tiny_dataset):
    root = tiny_dataset
    assert S.read_marker(root)["seed"] == 3
    for cat in S.DEMO_CATEGORIES:
        assert (root / cat / "calibration" / "camera_parameters.json").is_file()
        folders = {"train/good": 2, "validation/good": 1, "test/good": 1}
        folders.update({f"test/{t}": 1 for t in S.DEFECT_TYPES})
        assert sorted(p.name for p in (root / cat / "test").iterdir()) == sorted(["good", *S.DEFECT_TYPES])
        for folder, n in folders.items():
            base = root / cat / folder
            names = [f"{i:03d}" for i in range(n)]
            assert sorted(p.stem for p in (base / "rgb").glob("*.png")) == names
            assert sorted(p.stem for p in (base / "xyz").glob("*.tiff")) == names
            has_gt = folder.startswith("test/")
            assert (base / "gt").is_dir() == has_gt
            for name in names:
                rgb = np.asarray(Image.open(base / "rgb" / f"{name}.png"))
                xyz = tifffile.imread(base / "xyz" / f"{name}.tiff")
                assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
                assert xyz.shape == (64, 64, 3) and xyz.dtype == np.float32
                if has_gt:
                    gt = np.asarray(Image.open(base / "gt" / f"{name}.png"))
                    assert gt.shape == (64, 64) and gt.dtype == np.uint8
                    assert set(np.unique(gt)) <= {0, 255}
                    assert (gt.max() == 0) == folder.endswith("/good")


def test_files_are_byte_identical_and_independent_of_counts(tiny_dataset, tmp_path):
    again = S.generate_demo_dataset(tmp_path / "again", seed=3, **TINY)
    assert _files(again) == _files(tiny_dataset)
    more = S.generate_demo_dataset(tmp_path / "more", seed=3, categories=["cookie"],
                                   **{**TINY, "n_train": 3, "n_test_per_defect": 2})
    a, b = _files(tiny_dataset), _files(more)
    for rel in ("cookie/train/good/xyz/001.tiff", "cookie/test/hole/gt/000.png",
                "cookie/test/crack/rgb/000.png", "cookie/validation/good/rgb/000.png"):
        assert a[rel] == b[rel], rel
    assert "cookie/train/good/rgb/002.png" in b


def test_parallel_workers_write_the_same_files(tiny_dataset, tmp_path):
    par = S.generate_demo_dataset(tmp_path / "par", seed=3, workers=2, **TINY)
    assert _files(par) == _files(tiny_dataset)


def test_matches_the_mvtec_reader(tiny_dataset):
    from core.data.dataset import open_dataset

    ds = open_dataset(tiny_dataset)
    assert sorted(ds.categories) == sorted(S.DEMO_CATEGORIES)
    test = ds.samples("puck", "test")
    assert len(test) == 1 + len(S.DEFECT_TYPES)
    s = next(r for r in test if r.label == "crack").load()
    assert s.mask is not None and s.mask.any() and s.xyz.dtype == np.float32


def test_refuses_to_overwrite_other_data(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(UserError, match="not a demo dataset"):
            S.generate_demo_dataset(user, force=force, **TINY)
    assert _files(user) == {"notes.txt": b"keep me"}
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        S.generate_demo_dataset(afile, **TINY)


def test_existing_demo_dataset_is_kept_or_replaced_with_force(tmp_path):
    out = S.generate_demo_dataset(tmp_path / "d", categories=["puck"], **TINY)
    marker = (out / S.MARKER_NAME).stat().st_mtime_ns
    assert S.generate_demo_dataset(out, categories=["puck"], **TINY) == out  # up to date
    assert (out / S.MARKER_NAME).stat().st_mtime_ns == marker
    with pytest.raises(UserError, match="--force"):
        S.generate_demo_dataset(out, categories=["cookie"], **TINY)
    S.generate_demo_dataset(out, categories=["cookie"], force=True, **TINY)
    assert sorted(p.name for p in out.iterdir()) == sorted([S.MARKER_NAME, "cookie"])
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temp folders left behind


def test_progress_per_sample_and_cancel_leaves_nothing(tmp_path):
    events = []
    S.generate_demo_dataset(tmp_path / "p", categories=["puck"], progress=Progress(events.append), **TINY)
    n = 2 + 1 + 1 + len(S.DEFECT_TYPES)
    assert [e.done for e in events] == list(range(n + 1)) and events[-1].total == n

    def cancel_after_two(ev):
        if ev.done == 2:
            prog.cancel()

    prog = Progress(cancel_after_two)
    with pytest.raises(Cancelled):
        S.generate_demo_dataset(tmp_path / "c", progress=prog, **TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_bad_parameters_are_user_errors(tmp_path):
    for kwargs in ({"categories": ["nope"]}, {"defect_types": ["scratch"]}, {"size": 8},
                   {"n_train": 0}, {"defect_strength": 0.0}, {"seed": -1}):
        with pytest.raises(UserError):
            S.generate_demo_dataset(tmp_path / "x", **{**TINY, **kwargs})
    assert not (tmp_path / "x").exists()
    for folder in ("val", "test/scratch"):
        with pytest.raises(UserError):
            S.render_sample(0, "puck", folder, 0, size=64)


def test_cli_writes_the_dataset_and_reports_errors(tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "cli"
    args = ["demo-data", str(out), "--size", "64", "--train", "1", "--validation", "0",
            "--test-good", "1", "--test-per-defect", "1", "--categories", "cookie", "--workers", "1"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert S.read_marker(out)["categories"] == ["cookie"]
    assert main(args + ["--defect-strength", "2"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["demo-data", str(tmp_path / "y"), "--categories", "puck,nope"]) == 2


def test_cli_default_folder_is_the_user_cache(tmp_path, monkeypatch, capsys):
    from core.cli import main

    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path / "cache"))
    args = ["demo-data", "--size", "64", "--train", "1", "--validation", "0", "--test-good", "0",
            "--test-per-defect", "1", "--categories", "puck", "--defect-types", "hole", "--workers", "1"]
    assert main(args) == 0
    assert S.read_marker(tmp_path / "cache" / "demo")["defect_types"] == ["hole"]
    assert main(args) == 0  # already there: kept, not an error
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "cache" / "demo")] * 2
