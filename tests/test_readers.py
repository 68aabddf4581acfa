"""Dataset readers: MVTec 3D-AD, raw Eyecandies, plain folders, PCD/LZF, and bad-input errors."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image

from core.data import pcd
from core.data.dataset import load_inputs, open_dataset
from core.errors import DataError

# ------------------------------------------------------------------------------------ helpers


def write_rgb(path: Path, h: int, w: int, seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


def write_mask(path: Path, mask: np.ndarray, value: int = 254) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(mask, value, 0).astype(np.uint8), mode="L").save(path)


def plane_xyz(h: int, w: int) -> np.ndarray:
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([u * 1e-3, v * 1e-3, 0.5 + 1e-4 * u], axis=-1).astype(np.float32)


def make_mvtec(root: Path, h: int = 30, w: int = 40, with_xyz: bool = True) -> Path:
    """<root>/widget/{train/good, test/good, test/dent} with 2 samples each (non-square)."""
    for split, label in (("train", "good"), ("test", "good"), ("test", "dent")):
        leaf = root / "widget" / split / label
        for i in range(2):
            write_rgb(leaf / "rgb" / f"{i:03d}.png", h, w, seed=i)
            if with_xyz:
                (leaf / "xyz").mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(leaf / "xyz" / f"{i:03d}.tiff", plane_xyz(h, w), photometric="rgb")
            if split == "test":
                m = np.zeros((h, w), bool)
                if label == "dent":
                    m[5:9, 10:15] = True
                write_mask(leaf / "gt" / f"{i:03d}.png", m, value=253 + i)
    return root


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose IHDR claims width×height but carries no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + b"\x00" * 16
    data = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", 16) + idat + struct.pack(">I", zlib.crc32(idat))
    )
    path.write_bytes(data)


def lzf_literal(data: bytes) -> bytes:
    """Valid LZF stream made of literal runs only (enough to write test files)."""
    out = bytearray()
    for i in range(0, len(data), 32):
        chunk = data[i : i + 32]
        out.append(len(chunk) - 1)
        out += chunk
    return bytes(out)


def write_pcd(path: Path, xyz: np.ndarray, rgb: np.ndarray | None, data: str, colour: str = "rgb") -> None:
    """Organized PCD v0.7 (fields x y z [rgb as F4 | rgba as U4])."""
    h, w = xyz.shape[:2]
    n = h * w
    fields = ["x", "y", "z"]
    types, sizes = ["F", "F", "F"], ["4", "4", "4"]
    packed = None
    if rgb is not None:
        u = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
        if colour == "rgba":
            u = u | np.uint32(0xFF000000)
            packed = u.reshape(-1).astype("<u4")
            types.append("U")
        else:
            packed = u.reshape(-1).astype("<u4").view("<f4")
            types.append("F")
        fields.append(colour)
        sizes.append("4")
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(fields)}\nSIZE {' '.join(sizes)}\nTYPE {' '.join(types)}\n"
        f"COUNT {' '.join(['1'] * len(fields))}\nWIDTH {w}\nHEIGHT {h}\n"
        f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n"
    ).encode()
    cols = [xyz[..., k].reshape(-1).astype("<f4") for k in range(3)] + ([packed] if packed is not None else [])
    if data == "ascii":
        lines = []
        for i in range(n):
            vals = [repr(float(c[i])) if c.dtype.kind == "f" and (packed is None or c is not packed or colour == "rgb")
                    else str(int(c[i])) for c in cols]
            lines.append(" ".join(vals))
        body = ("\n".join(lines) + "\n").encode()
    elif data == "binary":
        rec = np.empty(n, dtype=[(f, c.dtype) for f, c in zip(fields, cols)])
        for f, c in zip(fields, cols):
            rec[f] = c
        body = rec.tobytes()
    else:
        raw = b"".join(c.tobytes() for c in cols)
        comp = lzf_literal(raw)
        body = struct.pack("<II", len(comp), len(raw)) + comp
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + body)


# ------------------------------------------------------------------------------------ MVTec


def test_real_tire_rgb_only_dataset(shared_data):
    ds = open_dataset(shared_data / "mvtec3d_tire_rgb")
    assert ds.format == "mvtec3d" and ds.categories == ["tire"]
    assert ds.splits("tire") == ["train", "validation", "test"]
    assert len(ds.samples("tire", "train")) == 60
    assert len(ds.samples("tire", "validation")) == 10
    test = ds.samples("tire", "test")
    counts = {}
    for r in test:
        counts[r.label] = counts.get(r.label, 0) + 1
    assert counts == {"good": 10, "contamination": 10, "cut": 10, "hole": 10, "combined": 3}
    assert all(r.xyz_path is None for r in test)

    combined = next(r for r in test if r.label == "combined").load()
    assert combined.rgb.shape == (400, 300, 3) and combined.rgb.dtype == np.uint8
    assert combined.xyz is None and combined.modalities == ("rgb",)
    raw = np.asarray(Image.open(combined.mask_path))
    assert set(np.unique(raw)) - {0} and combined.mask.dtype == bool
    np.testing.assert_array_equal(combined.mask, raw > 0)  # 253/254/255 are all defects
    good = next(r for r in test if r.label == "good").load()
    assert not good.mask.any() and good.is_defect is False


def test_category_folder_as_root_and_fullres(shared_data):
    ds = open_dataset(shared_data / "mvtec3d_tire_rgb" / "tire")
    assert ds.categories == ["tire"] and len(ds.samples("tire", "train")) == 60
    full = open_dataset(shared_data / "mvtec3d_tire_fullres_samples")
    (ref,) = full.samples("tire", "test")[:1]
    s = ref.load()
    assert s.rgb.shape == (800, 600, 3) and s.mask.shape == (800, 600) and s.mask.any()
    with pytest.raises(DataError, match="'train'.*no samples"):
        full.samples("tire", "train")
    with pytest.raises(DataError, match="'bagel' does not exist"):
        full.samples("bagel", "test")


def test_mvtec_with_xyz_nan_and_inf_become_zero(tmp_path):
    root = make_mvtec(tmp_path / "ds")
    xyz = plane_xyz(30, 40)
    xyz[3, 4] = np.nan
    xyz[5, 6, 2] = np.inf
    tifffile.imwrite(root / "widget/test/dent/xyz/001.tiff", xyz.astype(np.float64), photometric="rgb")
    ds = open_dataset(root)
    refs = ds.samples("widget", "test")
    assert [r.label for r in refs] == ["good", "good", "dent", "dent"]
    s = next(r for r in refs if r.name == "dent/001").load()
    assert s.xyz.dtype == np.float32 and s.xyz.shape == (30, 40, 3)
    assert np.all(s.xyz[3, 4] == 0) and np.all(s.xyz[5, 6] == 0)
    assert s.valid.sum() == 30 * 40 - 2
    assert s.mask.sum() == 20 and s.label == "dent"
    assert ds.info()["categories"]["widget"]["splits"]["test"]["modalities"] == {"rgb": 4, "xyz": 4, "gt": 4}


def test_mvtec_missing_rgb_for_xyz_names_the_file(tmp_path):
    root = make_mvtec(tmp_path / "ds")
    (root / "widget/train/good/rgb/001.png").unlink()
    with pytest.raises(DataError, match=r"xyz/001\.tiff: missing RGB image"):
        open_dataset(root).samples("widget", "train")


def test_mvtec_size_mismatch(tmp_path):
    root = make_mvtec(tmp_path / "ds")
    tifffile.imwrite(root / "widget/train/good/xyz/000.tiff", plane_xyz(30, 41), photometric="rgb")
    ref = open_dataset(root).samples("widget", "train")[0]
    with pytest.raises(DataError, match=r"000\.tiff: point grid 41×30 does not match RGB image .*000\.png 40×30"):
        ref.load()


def test_corrupt_png_and_tiff(tmp_path):
    root = make_mvtec(tmp_path / "ds")
    rgb = root / "widget/train/good/rgb/000.png"
    rgb.write_bytes(rgb.read_bytes()[:60])
    ref = open_dataset(root).samples("widget", "train")[0]
    with pytest.raises(DataError, match=r"000\.png: (corrupt|not a readable)"):
        ref.load()
    xyz = root / "widget/train/good/xyz/001.tiff"
    xyz.write_bytes(b"II*\x00garbage" * 3)
    ref1 = open_dataset(root).samples("widget", "train")[1]
    with pytest.raises(DataError, match=r"001\.tiff: corrupt or unreadable TIFF"):
        ref1.load()


@pytest.mark.parametrize("shape", [(30, 40), (30, 40, 4), (30, 40, 1)])
def test_xyz_wrong_channel_count(tmp_path, shape):
    root = make_mvtec(tmp_path / "ds")
    tifffile.imwrite(root / "widget/train/good/xyz/000.tiff", np.ones(shape, np.float32), photometric="minisblack")
    with pytest.raises(DataError, match=r"000\.tiff: expected an organized point cloud H×W×3"):
        open_dataset(root).samples("widget", "train")[0].load()


def test_integer_xyz_is_rejected(tmp_path):
    root = make_mvtec(tmp_path / "ds")
    tifffile.imwrite(root / "widget/train/good/xyz/000.tiff", np.ones((30, 40, 3), np.uint16), photometric="rgb")
    with pytest.raises(DataError, match="float coordinates in metres"):
        open_dataset(root).samples("widget", "train")[0].load()


@pytest.mark.parametrize("size", [(20000, 20000), (12000, 10000)])
def test_huge_png_header_is_refused_before_decoding(tmp_path, size):
    root = make_mvtec(tmp_path / "ds", with_xyz=False)
    png_header_only(root / "widget/train/good/rgb/000.png", *size)
    with pytest.raises(DataError, match=r"000\.png: .*100 Mpx"):
        open_dataset(root).samples("widget", "train")[0].load()


def test_huge_tiff_header_is_refused(tmp_path):
    root = make_mvtec(tmp_path / "ds")
    path = root / "widget/train/good/xyz/000.tiff"
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        patches = [(tags["ImageWidth"], 40000), (tags["ImageLength"], 30000)]
        fmt = {3: "<H", 4: "<I"}
        edits = [(t.valueoffset, fmt[t.dtype], v) for t, v in patches]
    data = bytearray(path.read_bytes())
    for offset, f, value in edits:
        struct.pack_into(f, data, offset, value)
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"000\.tiff: .*100 Mpx"):
        open_dataset(root).samples("widget", "train")[0].load()


def test_empty_split_and_unknown_category(tmp_path):
    root = make_mvtec(tmp_path / "ds")
    (root / "widget/validation/good/rgb").mkdir(parents=True)
    ds = open_dataset(root)
    assert ds.splits("widget") == ["train", "test"]
    with pytest.raises(DataError, match="'validation' of category 'widget' has no samples"):
        ds.samples("widget", "validation")
    with pytest.raises(DataError, match=r"category 'gadget' does not exist \(available: widget\)"):
        ds.samples("gadget", "train")


def test_bad_roots(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(DataError, match="no supported layout"):
        open_dataset(tmp_path)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        open_dataset(tmp_path / "f.txt")


# ------------------------------------------------------------------------------------ Eyecandies

F_PX = 711.11


def make_eyecandies(root: Path, size: int = 64) -> Path:
    """<root>/Candy/{train,val,test_public,test_private}/data with a tilted plane + a bump."""
    cls = root / "Candy"
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    plane = 1.0 + 0.002 * (v - size / 2)  # metres, tilted
    bump = np.where((u - size / 2) ** 2 + (v - size / 2) ** 2 < (size / 5) ** 2, 0.02, 0.0)
    depth_m = plane - bump
    lo, hi = 0.9, 1.2
    raw = np.round((depth_m - lo) / (hi - lo) * 65535).astype(np.uint16)
    raw[0, 0] = 65535  # "far" background pixel
    layout = {"train": ["000", "001"], "val": ["000"], "test_public": ["00", "01"], "test_private": ["00"]}
    for split, ids in layout.items():
        data = cls / split / "data"
        data.mkdir(parents=True)
        for sid in ids:
            for k in range(6):
                write_rgb(data / f"{sid}_image_{k}.png", size, size, seed=k)
            Image.fromarray(raw).save(data / f"{sid}_depth.png")
            (data / f"{sid}_info_depth.yaml").write_text(yaml.safe_dump({"normalization": {"min": lo, "max": hi}}))
            np.savetxt(data / f"{sid}_pose.txt", np.eye(4))
            if split == "test_public":
                m = np.zeros((size, size), bool)
                if sid == "01":
                    m[30:34, 30:34] = True
                write_mask(data / f"{sid}_mask.png", m, value=255)
    return root


def test_eyecandies_layout_and_back_projection(tmp_path):
    root = make_eyecandies(tmp_path / "eyec")
    ds = open_dataset(root)
    assert ds.format == "eyecandies" and ds.categories == ["Candy"]
    assert ds.splits("Candy") == ["train", "validation", "test", "test_private"]
    test = ds.samples("Candy", "test")
    assert sorted(r.label for r in test) == ["bad", "good"]
    assert all(r.label is None for r in ds.samples("Candy", "test_private"))
    assert open_dataset(root / "Candy").categories == ["Candy"]  # class folder as root

    s = ds.samples("Candy", "train")[0].load()
    assert s.rgb_path.name == "000_image_4.png"
    np.testing.assert_array_equal(s.rgb, np.asarray(Image.open(s.rgb_path)))
    size = 64
    c = size // 2
    z = s.xyz[c, c + 3, 2]
    assert 0.97 < z < 0.99  # plane 1.0 m minus the 2 cm bump, in metres
    assert s.xyz[c, c + 3, 0] == pytest.approx(3 * z / F_PX, rel=1e-4)
    assert s.xyz[c - 4, c, 1] == pytest.approx(-4 * s.xyz[c - 4, c, 2] / F_PX, rel=1e-4)
    # background (the plane and the far pixel) is exactly zero, the bump is kept
    bump = (np.mgrid[0:size, 0:size][0] - c) ** 2 + (np.mgrid[0:size, 0:size][1] - c) ** 2 < (size / 5) ** 2
    assert s.valid[bump].all() and not s.valid[~bump].any()
    assert np.all(s.xyz[~bump] == 0)
    bad = next(r for r in test if r.label == "bad").load()
    assert bad.mask.sum() == 16 and bad.is_defect


def test_eyecandies_missing_info_and_rgb(tmp_path):
    root = make_eyecandies(tmp_path / "eyec")
    (root / "Candy/train/data/001_info_depth.yaml").unlink()
    with pytest.raises(DataError, match=r"001_depth\.png: missing depth normalisation file 001_info_depth\.yaml"):
        open_dataset(root).samples("Candy", "train")
    (root / "Candy/val/data/000_image_4.png").unlink()
    with pytest.raises(DataError, match="missing RGB image 000_image_4.png"):
        open_dataset(root).samples("Candy", "validation")
    (root / "Candy/test_public/data/00_info_depth.yaml").write_text("normalization: {min: a}\n")
    ref = next(r for r in open_dataset(root).samples("Candy", "test") if r.name == "00")
    with pytest.raises(DataError, match=r"00_info_depth\.yaml: expected 'normalization"):
        ref.load()


# ------------------------------------------------------------------------------------ PCD / LZF


def test_lzf_overlapping_back_reference():
    # literal "ab", then a 6-byte back reference at distance 2 -> "abababab"
    stream = bytes([1]) + b"ab" + bytes([(4 << 5) | 0, 1])
    assert pcd.lzf_decompress(stream, 8) == b"abababab"
    # long back reference (length code 7 + extra byte) at distance 1
    stream = bytes([0]) + b"z" + bytes([(7 << 5) | 0, 3, 0])
    assert pcd.lzf_decompress(stream, 1 + 12) == b"z" * 13
    with pytest.raises(ValueError):
        pcd.lzf_decompress(bytes([(1 << 5), 5]), 3)  # reference before the start


@pytest.mark.parametrize(
    "name, valid_fraction", [("milk_cartoon_all_small_clorox.pcd", 0.786), ("table_scene_mug_stereo_textured.pcd", 0.681)]
)
def test_real_binary_compressed_pcd(shared_data, name, valid_fraction):
    path = shared_data / "pcl_organized" / name
    (ref,) = load_inputs([path])
    s = ref.load()
    assert s.xyz.shape == (480, 640, 3) and s.xyz.dtype == np.float32
    assert np.isfinite(s.xyz).all()
    assert s.valid.mean() == pytest.approx(valid_fraction, abs=0.001)
    z = s.xyz[..., 2][s.valid]
    assert 0.4 < z.min() and z.max() < 2.7
    assert s.rgb.shape == (480, 640, 3) and s.rgb.dtype == np.uint8 and s.rgb.std() > 10


def test_pcl_folder_dataset(shared_data):
    ds = open_dataset(shared_data / "pcl_organized")
    assert ds.format == "folder" and ds.categories == ["pcl_organized"]
    refs = ds.samples("pcl_organized", ds.splits("pcl_organized")[0])
    assert len(refs) == 2 and all(r.modalities == ("rgb", "xyz") for r in refs)


@pytest.mark.parametrize("data", ["ascii", "binary", "binary_compressed"])
@pytest.mark.parametrize("colour", ["rgb", "rgba"])
def test_pcd_encodings_round_trip(tmp_path, data, colour):
    rng = np.random.default_rng(1)
    xyz = rng.normal(0, 1, (6, 5, 3)).astype(np.float32)
    xyz[2, 3] = np.nan
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    path = tmp_path / f"c_{data}.pcd"
    write_pcd(path, xyz, rgb, data, colour)
    cloud = pcd.read_pcd(path)
    expected = np.nan_to_num(xyz, nan=0.0)
    np.testing.assert_array_equal(cloud.xyz, expected)
    np.testing.assert_array_equal(cloud.rgb, rgb)


def test_pcd_without_colour_and_with_image(tmp_path):
    xyz = plane_xyz(6, 5)
    write_pcd(tmp_path / "a.pcd", xyz, None, "binary")
    (ref,) = load_inputs([tmp_path / "a.pcd"])
    s = ref.load()
    assert s.rgb is None and s.modalities == ("xyz",)
    img = write_rgb(tmp_path / "a.png", 6, 5)
    (ref,) = load_inputs([tmp_path / "a.pcd"])
    np.testing.assert_array_equal(ref.load().rgb, img)


def test_pcd_bad_inputs(tmp_path):
    good = tmp_path / "g.pcd"
    write_pcd(good, plane_xyz(4, 3), None, "binary")
    text = good.read_bytes()

    unorganized = tmp_path / "u.pcd"
    write_pcd(unorganized, plane_xyz(1, 12), None, "binary")
    with pytest.raises(DataError, match=r"u\.pcd: PCD cloud is not organized"):
        pcd.read_pcd(unorganized)

    no_data_line = tmp_path / "h.pcd"
    no_data_line.write_bytes(text.split(b"DATA")[0])
    with pytest.raises(DataError, match=r"h\.pcd: unreadable PCD header"):
        pcd.read_pcd(no_data_line)

    binary_junk = tmp_path / "j.pcd"
    binary_junk.write_bytes(b"\xff\xfe\x00garbage\n" * 4)
    with pytest.raises(DataError, match=r"j\.pcd: unreadable PCD header"):
        pcd.read_pcd(binary_junk)

    half = tmp_path / "f16.pcd"
    half.write_bytes(text.replace(b"SIZE 4 4 4", b"SIZE 2 4 4"))
    with pytest.raises(DataError, match=r"f16\.pcd: unsupported PCD field type F2 for field 'x'"):
        pcd.read_pcd(half)

    weird = tmp_path / "t.pcd"
    weird.write_bytes(text.replace(b"TYPE F F F", b"TYPE F F X"))
    with pytest.raises(DataError, match="unsupported PCD field type X4"):
        pcd.read_pcd(weird)

    int_z = tmp_path / "iz.pcd"
    int_z.write_bytes(text.replace(b"TYPE F F F", b"TYPE F F I"))
    with pytest.raises(DataError, match="coordinate 'z'"):
        pcd.read_pcd(int_z)

    truncated = tmp_path / "tr.pcd"
    truncated.write_bytes(text[:-7])
    with pytest.raises(DataError, match=r"tr\.pcd: binary PCD data truncated"):
        pcd.read_pcd(truncated)

    comp = tmp_path / "c.pcd"
    write_pcd(comp, plane_xyz(4, 3), None, "binary_compressed")
    head, body = comp.read_bytes().split(b"DATA binary_compressed\n")
    _, raw_size = struct.unpack("<II", body[:8])
    bad = bytes([0xE0, 0x10, 0xFF])  # a back reference pointing before the start of the output
    comp.write_bytes(head + b"DATA binary_compressed\n" + struct.pack("<II", len(bad), raw_size) + bad)
    with pytest.raises(DataError, match=r"c\.pcd: corrupt LZF data"):
        pcd.read_pcd(comp)

    huge = tmp_path / "big.pcd"
    huge.write_bytes(text.replace(b"WIDTH 3\nHEIGHT 4\n", b"WIDTH 30000\nHEIGHT 4000\n").replace(
        b"POINTS 12", b"POINTS 120000000"))
    with pytest.raises(DataError, match=r"big\.pcd: .*100 Mpx"):
        pcd.read_pcd(huge)


# ------------------------------------------------------------------------------------ plain folder


def test_plain_folder_pairs_masks_and_splits(tmp_path):
    root = tmp_path / "sensor"
    rgb_a = write_rgb(root / "train" / "a.png", 8, 10)
    np.save(root / "train" / "a.npy", plane_xyz(8, 10))
    write_rgb(root / "train" / "b.png", 8, 10)
    # channel-planar (3×H×W) TIFF, as newer tifffile versions write by default
    tifffile.imwrite(root / "train" / "b.tiff", np.moveaxis(plane_xyz(8, 10), -1, 0), photometric="minisblack",
                     planarconfig="separate")
    write_rgb(root / "test" / "scratch" / "c.png", 8, 10)
    np.save(root / "test" / "scratch" / "c.npy", plane_xyz(8, 10))
    m = np.zeros((8, 10), bool)
    m[2:4, 2:5] = True
    write_mask(root / "test" / "scratch" / "c_mask.png", m, value=255)
    write_pcd(root / "test" / "good" / "d.pcd", plane_xyz(8, 10), np.zeros((8, 10, 3), np.uint8), "binary_compressed")

    ds = open_dataset(root)
    assert ds.format == "folder" and ds.splits("sensor") == ["train", "test"]
    train = ds.samples("sensor", "train")
    assert [r.name for r in train] == ["train/a", "train/b"] and all(r.label == "good" for r in train)
    a = train[0].load()
    np.testing.assert_array_equal(a.rgb, rgb_a)
    np.testing.assert_array_equal(a.xyz, plane_xyz(8, 10))
    test = {r.name: r for r in ds.samples("sensor", "test")}
    assert test["test/scratch/c"].label == "scratch" and test["test/good/d"].label == "good"
    c = test["test/scratch/c"].load()
    np.testing.assert_array_equal(c.mask, m)
    assert test["test/good/d"].load().modalities == ("rgb", "xyz")
    info = ds.info()["categories"]["sensor"]
    assert info["defect_types"] == ["scratch"] and info["splits"]["test"]["modalities"]["gt"] == 1


def test_plain_folder_errors(tmp_path):
    root = tmp_path / "flat"
    write_rgb(root / "a.png", 8, 10)
    np.save(root / "a.npy", plane_xyz(8, 10))
    np.save(root / "orphan.npy", plane_xyz(8, 10))
    with pytest.raises(DataError, match=r"orphan\.npy: missing RGB image"):
        open_dataset(root).samples("flat", "all")
    (root / "orphan.npy").unlink()
    np.save(root / "a.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"a\.npy: npy holds Python objects"):
        open_dataset(root).samples("flat", "all")[0].load()
    np.save(root / "a.npy", plane_xyz(9, 10))
    with pytest.raises(DataError, match=r"a\.npy: point grid 10×9 does not match"):
        open_dataset(root).samples("flat", "all")[0].load()


def test_load_inputs_files_and_folders(shared_data, tmp_path):
    tire = shared_data / "mvtec3d_tire_rgb" / "tire"
    (ref,) = load_inputs([tire / "test" / "cut" / "rgb" / "003.png"])
    assert ref.label == "cut" and ref.mask_path.name == "003.png" and ref.split == "test" and ref.category == "tire"
    assert ref.load().mask.any()
    refs = load_inputs([tire / "test" / "hole", shared_data / "pcl_organized"])
    assert len(refs) == 12
    root = make_mvtec(tmp_path / "ds")
    (ref,) = load_inputs([root / "widget/test/dent/xyz/001.tiff"])
    assert ref.rgb_path == root / "widget/test/dent/rgb/001.png" and ref.mask_path is not None
    with pytest.raises(DataError, match="not found"):
        load_inputs([tmp_path / "nope.png"])
    (tmp_path / "x.ply").write_text("ply")
    with pytest.raises(DataError, match=r"x\.ply: unsupported file type"):
        load_inputs([tmp_path / "x.ply"])


def test_mask_alpha_and_palette_and_grey16_rgb(tmp_path):
    from core.data.imageio import read_mask, read_rgb

    la = np.zeros((5, 6, 2), np.uint8)
    la[..., 1] = 255  # opaque alpha must not count as defect
    la[1, 1, 0] = 9
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert read_mask(tmp_path / "la.png").sum() == 1
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), [[False, True], [True, False]])
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "g16.png")
    rgb = read_rgb(tmp_path / "g16.png")
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8 and (rgb == 255).all()
