"""MVTec AD (2D) layout reader (also MPDD, BTAD): real bottle data, generated trees, detection order."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main
from core.data import eyecandies, folder, mvtec, mvtec_ad
from core.data.dataset import open_dataset
from core.errors import DataError

# the same fixtures test_readers.py builds its MVTec 3D-AD / plain-folder / Eyecandies trees with
from test_readers import make_eyecandies, make_mvtec, plane_xyz, write_mask, write_rgb

BOTTLE_TYPES = {"good": 8, "broken_large": 8, "broken_small": 8, "contamination": 8}


def counts(refs) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in refs:
        out[r.label] = out.get(r.label, 0) + 1
    return out


def write_grey(path: Path, h: int, w: int, seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(path)
    return grey


def make_ad(root: Path, h: int = 12, w: int = 16, ext: str = ".png", grey: bool = False,
            good: str = "good", defect: str = "crack", mask_name: str = "{stem}_mask.png") -> Path:
    """<root>/train/<good>/{000,001}, test/<good>/000, test/<defect>/{000,001} + ground_truth masks."""
    write = write_grey if grey else write_rgb
    for split, label, n in (("train", good, 2), ("test", good, 1), ("test", defect, 2)):
        for i in range(n):
            write(root / split / label / f"{i:03d}{ext}", h, w, seed=i)
    for i in range(2):
        m = np.zeros((h, w), bool)
        m[2 : 4 + i, 3:6] = True
        write_mask(root / "ground_truth" / defect / mask_name.format(stem=f"{i:03d}"), m, value=255)
    return root


# ------------------------------------------------------------------------------------ real data


def test_real_bottle_dataset(shared_data):
    root = shared_data / "mvtec_ad_bottle_small"
    ds = open_dataset(root)
    assert ds.format == "mvtec_ad" and ds.categories == ["bottle"]
    assert ds.splits("bottle") == ["train", "test"]
    train = ds.samples("bottle", "train")
    assert counts(train) == {"good": 60} and all(r.mask_path is None for r in train)
    test = ds.samples("bottle", "test")
    assert counts(test) == BOTTLE_TYPES
    names = {r.name for r in test}
    assert {"good/000", "broken_large/003", "contamination/007"} <= names
    assert all(r.modalities == ("rgb",) and r.xyz_path is None for r in test)
    assert all((r.mask_path is None) == (r.label == "good") for r in test)
    assert next(r for r in test if r.name == "broken_large/003").mask_path.name == "003_mask.png"
    with pytest.raises(DataError, match="'validation' of category 'bottle' has no samples"):
        ds.samples("bottle", "validation")

    for t in ("broken_large", "broken_small", "contamination"):
        s = next(r for r in test if r.label == t).load()
        assert s.rgb.dtype == np.uint8 and s.rgb.ndim == 3 and s.rgb.shape[2] == 3
        assert s.mask.dtype == bool and s.mask.shape == s.rgb.shape[:2] and s.mask.any()
        assert s.is_defect is True and s.modalities == ("rgb",) and s.xyz is None
        np.testing.assert_array_equal(s.mask, np.asarray(Image.open(s.mask_path)) > 0)
    good = next(r for r in test if r.label == "good").load()
    assert good.mask is not None and good.mask.shape == good.rgb.shape[:2] and not good.mask.any()
    assert good.is_defect is False and good.modalities == ("rgb",)
    assert train[0].load().modalities == ("rgb",)

    single = open_dataset(root / "bottle")  # the category folder as root
    assert single.format == "mvtec_ad" and single.categories == ["bottle"]
    assert counts(single.samples("bottle", "test")) == BOTTLE_TYPES


def test_real_bottle_is_not_claimed_by_the_3d_readers(shared_data):
    root = shared_data / "mvtec_ad_bottle_small"
    for r in (root, root / "bottle"):
        assert mvtec_ad.detect(r)
        assert not mvtec.detect(r) and not eyecandies.detect(r)
    for other in ("mvtec3d_tire_rgb", "pcl_organized"):
        assert not mvtec_ad.detect(shared_data / other)
    assert open_dataset(shared_data / "mvtec3d_tire_rgb").format == "mvtec3d"
    assert open_dataset(shared_data / "pcl_organized").format == "folder"


def test_info_on_bottle(shared_data, capsys):
    root = shared_data / "mvtec_ad_bottle_small"
    assert main(["info", "--json", str(root)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "mvtec_ad"
    bottle = info["categories"]["bottle"]
    assert list(bottle["splits"]) == ["train", "test"]
    assert bottle["splits"]["train"]["types"] == {"good": 60}
    assert bottle["splits"]["test"]["types"] == BOTTLE_TYPES
    assert bottle["splits"]["test"]["modalities"] == {"rgb": 32, "xyz": 0, "gt": 24}
    assert bottle["defect_types"] == ["broken_large", "broken_small", "contamination"]

    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "format: mvtec_ad" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["bottle", "train", "(all)", "60", "60", "0", "0"] in rows
    assert ["bottle", "test", "(all)", "32", "32", "0", "24"] in rows
    assert ["broken_small", "8"] in rows and ["good", "8"] in rows


# ------------------------------------------------------------------------------------ generated trees


@pytest.mark.parametrize("ext", [".png", ".bmp", ".jpg"])
def test_grey_images_load_as_rgb(tmp_path, ext):
    root = make_ad(tmp_path / "ds" / "screw", ext=ext, grey=True)
    ds = open_dataset(tmp_path / "ds")
    assert ds.format == "mvtec_ad" and ds.categories == ["screw"]
    for split in ("train", "test"):
        for ref in ds.samples("screw", split):
            s = ref.load()
            assert s.rgb.shape == (12, 16, 3) and s.rgb.dtype == np.uint8
            assert (s.rgb[..., 0] == s.rgb[..., 1]).all() and (s.rgb[..., 1] == s.rgb[..., 2]).all()
            assert s.modalities == ("rgb",)
    if ext != ".jpg":  # lossless: the grey values come through unchanged
        s = ds.samples("screw", "train")[1].load()
        np.testing.assert_array_equal(s.rgb[..., 0], np.asarray(Image.open(s.rgb_path)))
    crack = next(r for r in ds.samples("screw", "test") if r.name == "crack/001").load()
    assert crack.mask.sum() == 3 * 3


def test_single_category_root_and_multi_category_root(tmp_path):
    make_ad(tmp_path / "ds" / "b_cat")
    make_ad(tmp_path / "ds" / "a_cat", defect="hole")
    (tmp_path / "ds" / "notes").mkdir()  # not a category: ignored
    (tmp_path / "ds" / "readme.txt").write_text("x")
    ds = open_dataset(tmp_path / "ds")
    assert ds.format == "mvtec_ad" and ds.categories == ["a_cat", "b_cat"]
    assert counts(ds.samples("a_cat", "test")) == {"good": 1, "hole": 2}
    one = open_dataset(tmp_path / "ds" / "b_cat")
    assert one.format == "mvtec_ad" and one.categories == ["b_cat"]
    test = one.samples("b_cat", "test")
    assert [r.name for r in test] == ["good/000", "crack/000", "crack/001"]
    assert all(r.category == "b_cat" and r.split == "test" for r in test)
    assert [r.name for r in one.samples("b_cat", "train")] == ["good/000", "good/001"]


def test_missing_masks_orphans_and_empty_mask_folders(tmp_path, caplog):
    root = make_ad(tmp_path / "cat")
    (root / "ground_truth" / "crack" / "001_mask.png").unlink()
    write_mask(root / "ground_truth" / "crack" / "007_mask.png", np.ones((12, 16), bool))  # no image 007
    (root / "ground_truth" / "scuff").mkdir()  # a type with no test images
    write_mask(root / "ground_truth" / "scuff" / "000_mask.png", np.ones((12, 16), bool))
    with caplog.at_level(logging.INFO, logger="core.data.mvtec_ad"):
        refs = {r.name: r for r in open_dataset(root).samples("cat", "test")}
    assert sorted(refs) == ["crack/000", "crack/001", "good/000"]
    assert refs["crack/001"].mask_path is None
    s = refs["crack/001"].load()
    assert s.mask is None and s.label == "crack" and s.is_defect  # mask unknown, still a defect
    assert refs["crack/000"].load().mask.any()
    assert not refs["good/000"].load().mask.any()
    text = caplog.text
    assert "1 of 2 defect images have no mask" in text
    assert "007_mask.png: mask has no image" in text and "scuff" in text

    import shutil

    shutil.rmtree(root / "ground_truth" / "crack")  # a defect type without any masks
    refs = open_dataset(root).samples("cat", "test")
    assert [r.mask_path for r in refs if r.label == "crack"] == [None, None]


def test_btad_ok_ko_and_same_stem_masks(tmp_path):
    root = tmp_path / "BTAD" / "01"
    make_ad(root, ext=".bmp", good="ok", defect="ko", mask_name="{stem}.png")
    make_ad(tmp_path / "BTAD" / "03", ext=".bmp", good="ok", defect="ko", mask_name="{stem}.bmp")
    ds = open_dataset(tmp_path / "BTAD")
    assert ds.format == "mvtec_ad" and ds.categories == ["01", "03"]
    for cat in ds.categories:
        train = ds.samples(cat, "train")
        assert counts(train) == {"good": 2} and train[0].name == "ok/000"  # "ok" is a normal sample
        test = ds.samples(cat, "test")
        assert counts(test) == {"good": 1, "ko": 2}
        assert [r.name for r in test] == ["ok/000", "ko/000", "ko/001"]
        ko = next(r for r in test if r.name == "ko/001")
        assert ko.mask_path.stem == "001"
        s = ko.load()
        assert s.mask.dtype == bool and s.mask.sum() == 3 * 3 and s.is_defect
        ok = test[0].load()
        assert ok.is_defect is False and not ok.mask.any()
    info = ds.info()["categories"]["01"]
    assert info["defect_types"] == ["ko"] and info["splits"]["test"]["modalities"]["gt"] == 2


def test_btad_without_ground_truth_is_still_detected(tmp_path):
    root = make_ad(tmp_path / "02", good="ok", defect="ko")
    import shutil

    shutil.rmtree(root / "ground_truth")
    ds = open_dataset(root)
    assert ds.format == "mvtec_ad" and counts(ds.samples("02", "test")) == {"good": 1, "ko": 2}


def test_mask_of_wrong_size_names_the_mask(tmp_path):
    root = make_ad(tmp_path / "cat")
    write_mask(root / "ground_truth" / "crack" / "001_mask.png", np.ones((12, 15), bool))
    ref = next(r for r in open_dataset(root).samples("cat", "test") if r.name == "crack/001")
    with pytest.raises(DataError, match=r"001_mask\.png: mask size 15×12 does not match the image \(16×12\)"):
        ref.load()


def test_two_images_with_one_stem(tmp_path):
    root = make_ad(tmp_path / "cat")
    write_rgb(root / "test" / "crack" / "000.jpg", 12, 16)
    with pytest.raises(DataError, match=r"000\.(png|jpg): two images for sample '000'"):
        open_dataset(root).samples("cat", "test")


def test_test_only_and_train_only_copies(tmp_path):
    root = make_ad(tmp_path / "cat")
    import shutil

    shutil.rmtree(root / "train")
    ds = open_dataset(root)
    assert ds.format == "mvtec_ad" and ds.splits("cat") == ["test"]
    with pytest.raises(DataError, match="'train' of category 'cat' has no samples"):
        ds.samples("cat", "train")
    root2 = make_ad(tmp_path / "cat2")
    shutil.rmtree(root2 / "test")
    ds2 = open_dataset(root2)
    assert ds2.format == "mvtec_ad" and ds2.splits("cat2") == ["train"]


# ------------------------------------------------------------------------------------ detection order


def test_mvtec3d_fixtures_still_mvtec3d(tmp_path):
    for with_xyz in (True, False):
        root = make_mvtec(tmp_path / f"ds{with_xyz}", with_xyz=with_xyz)
        (root / "widget" / "ground_truth").mkdir()  # even with a 2D-style mask folder
        assert not mvtec_ad.detect(root) and not mvtec_ad.detect(root / "widget")
        ds = open_dataset(root)
        assert ds.format == "mvtec3d" and ds.categories == ["widget"]
        assert open_dataset(root / "widget").format == "mvtec3d"


def test_eyecandies_fixture_still_eyecandies(tmp_path):
    root = make_eyecandies(tmp_path / "eyec")
    assert not mvtec_ad.detect(root) and not mvtec_ad.detect(root / "Candy")
    assert open_dataset(root).format == "eyecandies"


def test_plain_folders_still_folder(tmp_path):
    # the plain-folder fixture of test_readers: loose files in train/, xyz + masks beside images
    root = tmp_path / "sensor"
    write_rgb(root / "train" / "a.png", 8, 10)
    np.save(root / "train" / "a.npy", plane_xyz(8, 10))
    write_rgb(root / "test" / "scratch" / "c.png", 8, 10)
    np.save(root / "test" / "scratch" / "c.npy", plane_xyz(8, 10))
    write_mask(root / "test" / "scratch" / "c_mask.png", np.ones((8, 10), bool))
    assert not mvtec_ad.detect(root)
    assert open_dataset(root).format == "folder"

    # RGB-only <split>/<type>/ with NAME_mask.png beside the images (even with a ground_truth/ folder)
    rgb_only = tmp_path / "rgbonly"
    write_rgb(rgb_only / "train" / "good" / "a.png", 8, 10)
    write_rgb(rgb_only / "test" / "dent" / "b.png", 8, 10)
    write_mask(rgb_only / "test" / "dent" / "b_mask.png", np.ones((8, 10), bool))
    (rgb_only / "ground_truth").mkdir()
    assert not mvtec_ad.detect(rgb_only) and open_dataset(rgb_only).format == "folder"

    # xyz files in the type folders
    with_xyz = make_ad(tmp_path / "xyz")
    np.save(with_xyz / "train" / "good" / "000.npy", plane_xyz(12, 16))
    assert not mvtec_ad.detect(with_xyz) and open_dataset(with_xyz).format == "folder"

    # images only, split folders with non-good train types and no ground_truth/: stays a plain folder
    custom = tmp_path / "custom"
    write_rgb(custom / "train" / "batch1" / "a.png", 8, 10)
    write_rgb(custom / "test" / "dent" / "b.png", 8, 10)
    assert not mvtec_ad.detect(custom) and open_dataset(custom).format == "folder"

    # flat folder of images
    flat = tmp_path / "flat"
    write_rgb(flat / "a.png", 8, 10)
    assert not mvtec_ad.detect(flat) and open_dataset(flat).format == "folder"


def test_no_images_is_not_a_category(tmp_path):
    root = tmp_path / "empty"
    (root / "train" / "good").mkdir(parents=True)
    (root / "test" / "good").mkdir(parents=True)
    (root / "ground_truth" / "crack").mkdir(parents=True)
    assert not mvtec_ad.detect(root)
    with pytest.raises(DataError, match="no supported layout"):
        open_dataset(root)
