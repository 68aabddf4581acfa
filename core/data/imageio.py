"""Guarded readers for RGB images, GT masks and organized xyz arrays (tiff / npy).

Every failure raises :class:`core.errors.DataError` naming the file. Image sizes are checked
from the file header before any pixel data is decoded (``MAX_PIXELS``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import DataError

MAX_PIXELS = 100_000_000  # refuse images/clouds larger than 100 Mpx (header check, before decoding)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
XYZ_EXTS = (".tiff", ".tif", ".npy")


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's text as one short line, for DataError messages."""
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_size(path: Path | str, height: int, width: int) -> None:
    """Raise DataError when a header claims an empty or implausibly large grid."""
    if height <= 0 or width <= 0:
        raise DataError(path, f"empty image ({width}×{height} px)")
    if height * width > MAX_PIXELS:
        raise DataError(
            path, f"image is {width}×{height} px, above the {MAX_PIXELS // 1_000_000} Mpx limit"
        )


def check_xyz_budget(path: Path | str, height: int, width: int) -> None:
    """DataError (refused, not downsampled) when preprocessing a height×width cloud would need
    more than the per-sample memory budget (:mod:`core.memory`)."""
    from core.memory import XYZ_BYTES_PER_PIXEL, gib, memory_budget

    need = int(height) * int(width) * XYZ_BYTES_PER_PIXEL
    budget = memory_budget()
    if need > budget:
        raise DataError(
            path,
            f"point cloud is {width}×{height} px; processing it needs about {gib(need)}, above the "
            f"per-sample memory budget of {gib(budget)} (refused; downsample or crop it, or raise "
            "LSFA_MEMORY_BUDGET_MB)",
        )


def _open_image(path: Path) -> Image.Image:
    """PIL image with its header checked; pixel data not decoded yet."""
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise DataError(path, f"image header claims more than {MAX_PIXELS // 1_000_000} Mpx") from None
    except OSError as exc:
        raise DataError(path, f"not a readable image ({exc.__class__.__name__})") from None
    width, height = im.size
    check_size(path, height, width)
    return im


def _decode(path: Path, im: Image.Image) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
            return np.asarray(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(path, f"corrupt or truncated image ({one_line(exc)})") from None


def read_rgb(path: Path | str) -> np.ndarray:
    """H×W×3 uint8 colour image. Grey, palette and alpha images are converted to RGB;
    16-bit grey is scaled to 8 bit."""
    path = Path(path)
    im = _open_image(path)
    with im:
        mode = im.mode
        if mode == "RGB":
            arr = _decode(path, im)
        elif mode.startswith("I;16") or mode in ("I", "F"):
            grey = _decode(path, im).astype(np.float64)
            top = 65535.0 if mode.startswith("I;16") else max(float(grey.max()), 1.0)
            grey8 = np.clip(grey / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
            arr = np.repeat(grey8[..., None], 3, axis=2)
        else:  # L, P, RGBA, LA, CMYK, ...: let PIL convert
            _decode(path, im)  # loads the pixels; DataError if corrupt
            arr = np.asarray(im.convert("RGB"))
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise DataError(path, f"expected an 8-bit RGB image, got array {arr.shape} {arr.dtype}")
    return np.ascontiguousarray(arr)


def read_mask(path: Path | str) -> np.ndarray:
    """H×W bool defect mask: any non-zero value is a defect (MVTec class ids 253..255)."""
    path = Path(path)
    im = _open_image(path)
    with im:
        arr = _decode(path, im)
        if im.mode in ("P", "PA"):  # palette indices: use the colours they stand for
            arr = _decode(path, im.convert("RGB"))
    if arr.ndim == 3:
        colour_channels = {1: 1, 2: 1, 3: 3, 4: 3}.get(arr.shape[2])  # ignore alpha
        if colour_channels is None:
            raise DataError(path, f"mask has {arr.shape[2]} channels")
        return np.any(arr[..., :colour_channels] != 0, axis=2)
    if arr.ndim != 2:
        raise DataError(path, f"mask has unexpected shape {arr.shape}")
    return arr != 0


def read_depth16(path: Path | str) -> np.ndarray:
    """H×W uint16 single-channel depth PNG (raw values, not yet in metres)."""
    path = Path(path)
    im = _open_image(path)
    with im:
        if not (im.mode.startswith("I;16") or im.mode in ("I", "L")):
            raise DataError(path, f"expected a 16-bit single-channel depth image, got mode {im.mode!r}")
        arr = _decode(path, im)
    if arr.ndim != 2:
        raise DataError(path, f"depth image has unexpected shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.uint16) * 257
    return arr.astype(np.uint16)


def image_size(path: Path | str) -> tuple[int, int]:
    """(height, width) from the header only."""
    path = Path(path)
    im = _open_image(path)
    with im:
        return im.size[1], im.size[0]


def check_xyz_shape(path: Path | str, shape: tuple[int, ...]) -> None:
    """DataError unless ``shape`` is H×W×3 (checked from headers, before reading the data)."""
    if len(shape) != 3 or shape[2] != 3:
        raise DataError(path, f"expected an organized point cloud H×W×3, got shape {shape}")


def clean_xyz(path: Path | str, arr: np.ndarray) -> np.ndarray:
    """Validate an organized cloud and return it as contiguous float32 with NaN/inf -> (0,0,0)."""
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(path, f"expected an organized point cloud H×W×3, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(path, f"expected float coordinates in metres, got dtype {arr.dtype}")
    xyz = np.array(arr, dtype=np.float32, order="C", copy=True)
    bad = ~np.isfinite(xyz).all(axis=2)
    if bad.any():
        xyz[bad] = 0.0
    return xyz


@contextlib.contextmanager
def _quiet_tifffile():
    """tifffile logs its own warnings about corrupt files; the DataError says it in one line."""
    logger = logging.getLogger("tifffile")
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise DataError(path, "corrupt or unreadable TIFF (no image found)")
            series = tif.series[0]
            shape = tuple(int(s) for s in series.shape)
            planar = len(shape) == 3 and shape[0] == 3 and shape[2] != 3  # 3×H×W channel planes
            hw = shape[1:3] if planar else shape[:2]
            if len(hw) < 2:
                raise DataError(path, f"expected an organized point cloud H×W×3, got shape {shape}")
            check_size(path, hw[0], hw[1])
            check_xyz_shape(path, shape[1:] + shape[:1] if planar else shape)
            check_xyz_budget(path, hw[0], hw[1])
            arr = series.asarray()
            return np.moveaxis(arr, 0, -1) if planar else arr
    except DataError:
        raise
    except Exception as exc:  # tifffile raises many types on corrupt input
        raise DataError(path, f"corrupt or unreadable TIFF ({exc.__class__.__name__}: {one_line(exc)})") from None


def _read_npy(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, OSError, SyntaxError) as exc:
        raise DataError(path, f"not a valid .npy file ({one_line(exc)})") from None
    if dtype.hasobject:
        raise DataError(path, "npy holds Python objects; only numeric arrays are accepted")
    if len(shape) >= 2:
        check_size(path, int(shape[0]), int(shape[1]))
    check_xyz_shape(path, tuple(int(v) for v in shape))
    check_xyz_budget(path, int(shape[0]), int(shape[1]))
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(path, f"corrupt or truncated .npy file ({one_line(exc)})") from None


def read_xyz(path: Path | str) -> np.ndarray:
    """H×W×3 float32 organized point cloud in metres from .tiff/.tif/.npy (NaN/inf -> 0).
    PCD files are read by :mod:`core.data.pcd`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    ext = path.suffix.lower()
    if ext in (".tiff", ".tif"):
        arr = _read_tiff(path)
    elif ext == ".npy":
        arr = _read_npy(path)
    else:
        raise DataError(path, f"unsupported point-cloud file type {ext!r} (use .tiff, .npy or .pcd)")
    return clean_xyz(path, arr)
