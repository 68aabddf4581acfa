"""Built-in demo dataset generator: determinism, layout, exact defect masks, safety."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from core import demo as S
from core.demo.camera import _FOCAL_PER_PIXEL
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
    fx = _FOCAL_PER_PIXEL * 128
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


# ------------------------------------------------------------------------- variation factors

# Content digest of the TINY seed-3 dataset (file names, marker text, decoded PNG/TIFF arrays),
# taken before object_scale / noise_scale / defect_scale existed: at their defaults of 1.0 the
# generator must write exactly what it wrote before. Decoded arrays rather than file bytes, so
# a different PNG/TIFF encoder build cannot break it; a deliberate change of the generator's
# output needs a new GENERATOR_VERSION and a new digest here.
TINY_SEED3_CONTENT_SHA256 = "38e38aa046f0f96e4cda673734e143dba705e1c9a34526f989e14ceb0235df9a"


def _content_digest(root: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode())
        if p.suffix == ".png":
            a = np.asarray(Image.open(p))
        elif p.suffix == ".tiff":
            a = tifffile.imread(p)
        else:
            h.update(p.read_bytes())
            continue
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_default_variation_output_is_unchanged(tiny_dataset):
    assert _content_digest(tiny_dataset) == TINY_SEED3_CONTENT_SHA256
    # the marker file does not list factors at their standard values (as before they existed);
    # reading fills them in
    text = (tiny_dataset / S.MARKER_NAME).read_text()
    assert not any(k in text for k in S.VARIATION_RANGES)
    marker = S.read_marker(tiny_dataset)
    assert all(marker[k] == S.VARIATION_DEFAULTS[k] for k in S.VARIATION_RANGES)
    assert marker == S.demo_parameters(seed=3, **TINY)


def test_object_scale_changes_physical_size():
    small = S.render_sample(0, "puck", "train", 0, size=96)
    big = S.render_sample(0, "puck", "train", 0, size=96, object_scale=1.5)
    assert big.height.max() == pytest.approx(1.5 * small.height.max(), rel=0.01)  # 10 mm → 15 mm
    n_small, n_big = small.render.on_object.sum(), big.render.on_object.sum()
    assert n_big > 1.8 * n_small  # ~1.5² more pixels at the same camera

    def above_table(s):  # measured points more than 2 mm above the table
        valid = np.any(s.xyz != 0, -1).ravel()
        return int(np.sum(valid & (s.render.sig > 0.002)))

    assert above_table(big) > 1.8 * above_table(small)


def test_noise_scale_multiplies_depth_noise_and_dropouts():
    def residual_and_valid(noise_scale):
        s = S.render_sample(0, "cookie", "train", 0, size=96, noise_scale=noise_scale)
        valid = np.any(s.xyz != 0, -1)
        table = valid & ~s.render.on_object.reshape(valid.shape)  # the flat table
        clean_z = s.render.xyz[:, 2].reshape(valid.shape)
        return np.std(s.xyz[..., 2][table] - clean_z[table]), valid.mean(), s

    r0, v0, quiet = residual_and_valid(0.0)
    r1, v1, _ = residual_and_valid(1.0)
    r3, v3, loud = residual_and_valid(3.0)
    assert r0 < 1e-6 < r1  # metres; float32 rounding only without noise
    assert r3 == pytest.approx(3 * r1, rel=0.02)
    assert v0 > v1 > v3  # random dropouts scale too
    clean_rgb = np.round(255 * np.clip(quiet.render.rgb, 0, 1) ** (1 / 2.2)).reshape(quiet.rgb.shape)
    assert np.array_equal(quiet.rgb, clean_rgb.astype(np.uint8))
    assert np.abs(loud.rgb.astype(int) - quiet.rgb).mean() > 1.5


def test_flying_pixels_sit_between_the_surfaces_at_depth_discontinuities():
    base = S.render_sample(0, "puck", "train", 0, size=128)
    fly = S.render_sample(0, "puck", "train", 0, size=128, flying_pixels=0.5)
    assert np.array_equal(base.rgb, fly.rgb)  # colour and everything else as without them
    moved = np.linalg.norm(fly.xyz - base.xyz, axis=-1) > 1e-7
    valid = np.any(base.xyz != 0, -1)
    rng = np.linalg.norm(base.xyz, axis=-1)
    pad = np.pad(np.where(valid, rng, 0), 1)
    jump = np.zeros_like(rng)
    for nb in (pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]):
        d = np.where(nb > 0, nb - rng, 0)
        jump = np.where(np.abs(d) > np.abs(jump), d, jump)
    edge = valid & (np.abs(jump) > 0.001)
    assert edge.sum() > 50 and not moved[~edge].any()  # only discontinuity pixels move
    assert 0.35 < moved[edge].mean() < 0.65  # about half of them
    frac = (np.linalg.norm(fly.xyz, axis=-1) - rng)[moved] / jump[moved]
    assert frac.min() >= 0.2 - 1e-3 and frac.max() <= 0.8 + 1e-3  # between the two surfaces
    # on the ray of their pixel: direction unchanged
    cos = np.einsum("ij,ij->i", fly.xyz[moved], base.xyz[moved]) / (
        np.linalg.norm(fly.xyz[moved], axis=1) * rng[moved])
    assert cos.min() > 1 - 1e-6


def test_defect_scale_changes_size_not_place_or_amplitude():
    areas = {1.0: [], 2.0: []}
    for kind in S.DEFECT_TYPES:
        _, a = S.render_sample_pair(0, "puck", f"test/{kind}", 0, size=96)
        _, b = S.render_sample_pair(0, "puck", f"test/{kind}", 0, size=96, defect_scale=2.0)
        assert a.defect.centre == b.defect.centre
        for k in ("radius_m", "length_m"):
            if k in a.defect.params:
                assert b.defect.params[k] == pytest.approx(2 * a.defect.params[k])
        for k in ("amplitude_m", "depth_m"):
            if k in a.defect.params:
                assert b.defect.params[k] == a.defect.params[k]
        areas[1.0].append(a.mask.sum())
        areas[2.0].append(b.mask.sum())
    assert np.mean(areas[2.0]) > 2 * np.mean(areas[1.0])


@pytest.mark.parametrize("kind", ["dent", "bump"])
def test_dent_shading_zero_leaves_the_image_alone_but_not_the_geometry(kind):
    """dent_shading = 0: a dent or bump is geometry only (the RGB image is the defect-free one),
    its mask and its points are those of the fully shaded render; 1 (default) shades it; other
    defect types do not depend on it."""
    clean, shaded = S.render_sample_pair(5, "puck", f"test/{kind}", 0, size=128)
    _, blind = S.render_sample_pair(5, "puck", f"test/{kind}", 0, size=128, dent_shading=0.0)
    _, half = S.render_sample_pair(5, "puck", f"test/{kind}", 0, size=128, dent_shading=0.5)
    assert not np.array_equal(shaded.rgb, clean.rgb)
    assert np.array_equal(blind.rgb, clean.rgb)
    assert np.array_equal(blind.xyz, shaded.xyz) and not np.array_equal(blind.xyz, clean.xyz)
    # the mask: the pixels whose points moved (the shaded render adds those only its shading or
    # cast shadow changed)
    moved = np.any(clean.render.xyz != shaded.render.xyz, -1).reshape(128, 128)
    assert blind.mask.sum() > 0 and not (blind.mask & ~shaded.mask).any()
    assert blind.mask.sum() >= 0.5 * shaded.mask.sum() and blind.mask[moved].mean() > 0.9
    change = lambda s: np.abs(s.rgb.astype(int) - clean.rgb).sum()  # noqa: E731
    assert 0.3 * change(shaded) < change(half) < 0.7 * change(shaded)
    _, stain = S.render_sample_pair(5, "puck", "test/stain", 0, size=128, dent_shading=0.0)
    assert np.array_equal(stain.rgb, S.render_sample(5, "puck", "test/stain", 0, size=128).rgb)


def test_print_variation_changes_each_parts_colour_and_nothing_else():
    """print_variation > 0: the object's colour varies by a field of each part's own (not the
    table's colour, not the geometry, not a defect's mask); 0 is the standard render."""
    plain = [S.render_sample(5, "cookie", "train", i, size=128) for i in (0, 1)]
    varied = [S.render_sample(5, "cookie", "train", i, size=128, print_variation=0.3) for i in (0, 1)]
    assert np.array_equal(S.render_sample(5, "cookie", "train", 0, size=128, print_variation=0.0).rgb, plain[0].rgb)
    on = np.logical_and(*(p.albedo_grid.min(-1) > 0.05 for p in plain))  # on both parts
    gains = []
    for p, v in zip(plain, varied):
        assert np.array_equal(p.xyz, v.xyz) and np.array_equal(p.height, v.height)
        assert np.array_equal(p.rgb[:12, :12], v.rgb[:12, :12])  # a corner of the table
        assert np.abs(p.rgb.astype(int) - v.rgb).max() > 40
        gains.append(v.albedo_grid[on] / p.albedo_grid[on])
        assert 0.15 < np.std(gains[-1]) < 0.45  # about the amount, one standard deviation
    assert np.mean(np.abs(gains[0] - gains[1])) > 0.1  # each part's own field
    _, stain = S.render_sample_pair(5, "puck", "test/stain", 0, size=128)
    _, stain_v = S.render_sample_pair(5, "puck", "test/stain", 0, size=128, print_variation=0.3)
    assert np.array_equal(stain.mask, stain_v.mask) and not np.array_equal(stain.rgb, stain_v.rgb)


def test_variation_factors_are_validated_and_stored(tmp_path, capsys):
    for kwargs in ({"object_scale": 0.4}, {"object_scale": 2.5}, {"noise_scale": -0.1},
                   {"noise_scale": 5.5}, {"defect_scale": 0.2}, {"defect_scale": 3.5},
                   {"defect_scale": float("nan")}, {"object_scale": "big"}, {"flying_pixels": 1.5},
                   {"dent_shading": -0.5}, {"dent_shading": 1.2}, {"print_variation": -0.1},
                   {"print_variation": 1.5}):
        name = next(iter(kwargs)).replace("_", " ")
        with pytest.raises(UserError, match=name):
            S.demo_parameters(**kwargs)
        with pytest.raises(UserError, match=name):
            S.generate_demo_dataset(tmp_path / "x", **{**TINY, **kwargs})
        with pytest.raises(UserError, match=name):
            S.render_sample(0, "puck", "train", 0, size=64, **kwargs)
    assert not (tmp_path / "x").exists()
    for k, (lo, hi) in S.VARIATION_RANGES.items():  # the ends of the ranges are allowed
        assert S.demo_parameters(**{k: lo})[k] == lo and S.demo_parameters(**{k: hi})[k] == hi

    from core.cli import main

    out = tmp_path / "v"
    args = ["demo-data", str(out), "--size", "64", "--train", "1", "--validation", "0", "--test-good", "0",
            "--test-per-defect", "1", "--categories", "cookie", "--defect-types", "hole", "--workers", "1"]
    varied = args + ["--object-scale", "1.25", "--noise-scale", "2", "--defect-scale", "0.5",
                     "--flying-pixels", "0.3", "--dent-shading", "0.5", "--print-variation", "0.2"]
    assert main(varied) == 0
    marker = S.read_marker(out)
    assert (marker["object_scale"], marker["noise_scale"], marker["defect_scale"], marker["flying_pixels"],
            marker["dent_shading"], marker["print_variation"]) == (1.25, 2.0, 0.5, 0.3, 0.5, 0.2)
    stamp = (out / S.MARKER_NAME).stat().st_mtime_ns
    assert main(varied) == 0  # same factors: up to date, kept
    assert (out / S.MARKER_NAME).stat().st_mtime_ns == stamp
    capsys.readouterr()
    assert main(args) == 2  # the defaults differ from what is there
    assert "--force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    assert S.read_marker(out)["object_scale"] == 1.0
    assert main(args + ["--noise-scale", "9"]) == 2
    assert "noise scale must be between 0 and 5" in capsys.readouterr().err


def test_marker_without_variation_factors_is_up_to_date_at_defaults(tmp_path):
    out = S.generate_demo_dataset(tmp_path / "d", categories=["cookie"], defect_types=["stain"], **TINY)
    path = out / S.MARKER_NAME
    # as written before the factors existed (no keys), or with them spelled out at 1.0
    for text in (path.read_text(), path.read_text().replace('"defect_strength": 1.0',
                                                            '"defect_strength": 1.0, "noise_scale": 1')):
        path.write_text(text)
        stamp = path.stat().st_mtime_ns
        assert S.generate_demo_dataset(out, categories=["cookie"], defect_types=["stain"], **TINY) == out
        assert path.stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="--force"):
        S.generate_demo_dataset(out, categories=["cookie"], defect_types=["stain"], noise_scale=2.0, **TINY)
