"""Reader for organized PCD files (PCL format v0.5–0.7): ascii, binary, binary_compressed (LZF).

Only organized clouds (HEIGHT > 1) map onto an image grid and are accepted. Fields x y z
(float) are required; a packed ``rgb``/``rgba`` field becomes an RGB image; other fields are
skipped. NaN/inf coordinates (PCL's "invalid point") become (0, 0, 0).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.imageio import MAX_PIXELS, check_size, check_xyz_budget, one_line
from core.errors import DataError

_NUMPY_TYPES = {
    ("F", 4): "<f4", ("F", 8): "<f8",
    ("U", 1): "u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8",
    ("I", 1): "i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8",
}
_MAX_HEADER_LINES = 64


@dataclass
class PCDHeader:
    fields: list[str]
    sizes: list[int]
    types: list[str]
    counts: list[int]
    width: int
    height: int
    points: int
    data: str  # "ascii" | "binary" | "binary_compressed"
    data_offset: int  # byte offset of the data section in the file

    def numpy_dtype(self, path: Path) -> np.dtype:
        """Structured dtype of one point record (the binary layout)."""
        parts = []
        for name, size, typ, count in zip(self.fields, self.sizes, self.types, self.counts):
            code = _NUMPY_TYPES.get((typ, size))
            if code is None:
                raise DataError(path, f"unsupported PCD field type {typ}{size} for field {name!r}")
            parts.append((name, code) if count == 1 else (name, code, (count,)))
        # Duplicate names (e.g. several "_" padding fields) need unique keys.
        seen: dict[str, int] = {}
        unique = []
        for part in parts:
            n = part[0]
            seen[n] = seen.get(n, 0) + 1
            key = n if seen[n] == 1 else f"{n}__{seen[n]}"
            unique.append((key,) + part[1:])
        return np.dtype(unique)


@dataclass
class PCDCloud:
    xyz: np.ndarray  # H×W×3 float32 metres, invalid = 0
    rgb: np.ndarray | None  # H×W×3 uint8, or None without a colour field
    header: PCDHeader


def lzf_decompress(data: bytes, out_size: int) -> bytes:
    """Decompress an LZF block (liblzf format) whose decompressed size is known."""
    out = bytearray(out_size)
    ip = op = 0
    n = len(data)
    while ip < n:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:  # literal run of ctrl+1 bytes
            ctrl += 1
            if ip + ctrl > n or op + ctrl > out_size:
                raise ValueError("literal run past the end of the buffer")
            out[op : op + ctrl] = data[ip : ip + ctrl]
            ip += ctrl
            op += ctrl
        else:  # back reference
            length = ctrl >> 5
            if length == 7:
                if ip >= n:
                    raise ValueError("truncated back reference")
                length += data[ip]
                ip += 1
            if ip >= n:
                raise ValueError("truncated back reference")
            ref = op - ((ctrl & 31) << 8) - 1 - data[ip]
            ip += 1
            length += 2
            if ref < 0 or op + length > out_size:
                raise ValueError("back reference outside the buffer")
            if ref + length <= op:
                out[op : op + length] = out[ref : ref + length]
            else:  # overlapping copy repeats the last (op - ref) bytes
                period = op - ref
                out[op : op + length] = (out[ref:op] * (length // period + 1))[:length]
            op += length
    if op != out_size:
        raise ValueError(f"decompressed {op} bytes, header says {out_size}")
    return bytes(out)


def read_header(path: Path | str) -> PCDHeader:
    """Parse and validate the PCD header (DataError on anything unusable)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    values: dict[str, list[str]] = {}
    offset = 0
    try:
        with open(path, "rb") as fh:
            for _ in range(_MAX_HEADER_LINES):
                raw = fh.readline(4096)
                if not raw:
                    break
                offset += len(raw)
                line = raw.decode("ascii").strip()
                if not line or line.startswith("#"):
                    continue
                key, *rest = line.split()
                values[key.upper()] = rest
                if key.upper() == "DATA":
                    break
    except UnicodeDecodeError:
        raise DataError(path, "unreadable PCD header (not ASCII text)") from None
    if "DATA" not in values:
        raise DataError(path, "unreadable PCD header (no DATA line)")
    try:
        fields = values["FIELDS"]
        sizes = [int(s) for s in values["SIZE"]]
        types = [t.upper() for t in values["TYPE"]]
        counts = [int(c) for c in values.get("COUNT", ["1"] * len(fields))]
        width = int(values["WIDTH"][0])
        height = int(values["HEIGHT"][0])
        points = int(values.get("POINTS", [str(width * height)])[0])
        data = values["DATA"][0].lower()
    except (KeyError, IndexError, ValueError) as exc:
        raise DataError(path, f"unreadable PCD header (missing or bad {one_line(exc)})") from None
    if not (len(fields) == len(sizes) == len(types) == len(counts)):
        raise DataError(path, "unreadable PCD header (FIELDS/SIZE/TYPE/COUNT lengths differ)")
    for name, typ, size in zip(fields, types, sizes):
        if (typ, size) not in _NUMPY_TYPES:
            raise DataError(path, f"unsupported PCD field type {typ}{size} for field {name!r}")
    if data not in ("ascii", "binary", "binary_compressed"):
        raise DataError(path, f"unsupported PCD DATA encoding {data!r}")
    if points != width * height:
        raise DataError(path, f"PCD header POINTS {points} != WIDTH×HEIGHT {width}×{height}")
    check_size(path, height, width)
    if height <= 1:
        raise DataError(path, "PCD cloud is not organized (HEIGHT 1); an image-like grid is needed")
    check_xyz_budget(path, height, width)
    return PCDHeader(fields, sizes, types, counts, width, height, points, data, offset)


def _records(path: Path, header: PCDHeader) -> np.ndarray:
    """1-D structured array with one record per point."""
    dtype = header.numpy_dtype(path)
    n = header.points
    with open(path, "rb") as fh:
        fh.seek(header.data_offset)
        if header.data == "ascii":
            text = fh.read()
            try:
                flat = np.array(text.split(), dtype=np.float64)
            except ValueError:
                raise DataError(path, "corrupt ascii PCD data (non-numeric value)") from None
            per_point = sum(header.counts)
            if flat.size != n * per_point:
                raise DataError(path, f"ascii PCD data has {flat.size} values, expected {n * per_point}")
            table = flat.reshape(n, per_point)
            rec = np.zeros(n, dtype=dtype)
            col = 0
            for key, count in zip(dtype.names, header.counts):
                vals = table[:, col : col + count]
                target = rec[key]
                if key in ("rgb", "rgba") and dtype[key] == np.dtype("<f4"):
                    # ascii "rgb" is the float whose bits hold the packed colour
                    target[...] = vals[:, 0].astype(np.float32)
                else:
                    target[...] = vals[:, 0] if count == 1 else vals
                col += count
            return rec
        if header.data == "binary":
            buf = fh.read(n * dtype.itemsize)
            if len(buf) != n * dtype.itemsize:
                raise DataError(path, f"binary PCD data truncated ({len(buf)} of {n * dtype.itemsize} bytes)")
            return np.frombuffer(buf, dtype=dtype, count=n)
        # binary_compressed: uint32 compressed size, uint32 raw size, LZF block laid out field by field
        sizes = fh.read(8)
        if len(sizes) != 8:
            raise DataError(path, "binary_compressed PCD data truncated (no size header)")
        comp_size, raw_size = struct.unpack("<II", sizes)
        if raw_size != n * dtype.itemsize:
            raise DataError(path, f"binary_compressed PCD raw size {raw_size} != expected {n * dtype.itemsize}")
        if raw_size > MAX_PIXELS * 64:
            raise DataError(path, "binary_compressed PCD block is implausibly large")
        comp = fh.read(comp_size)
        if len(comp) != comp_size:
            raise DataError(path, f"binary_compressed PCD data truncated ({len(comp)} of {comp_size} bytes)")
    try:
        raw = lzf_decompress(comp, raw_size)
    except ValueError as exc:
        raise DataError(path, f"corrupt LZF data in binary_compressed PCD ({one_line(exc)})") from None
    rec = np.empty(n, dtype=dtype)
    pos = 0
    for key in dtype.names:
        sub = dtype[key]
        nbytes = n * sub.itemsize
        rec[key] = np.frombuffer(raw, dtype=sub.base, count=n * max(1, int(np.prod(sub.shape))), offset=pos).reshape(
            (n,) + sub.shape
        )
        pos += nbytes
    return rec


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Packed 0x(AA)RRGGBB colours (uint32, or float32 bit pattern) -> (..., 3) uint8."""
    u = np.ascontiguousarray(packed)
    if u.dtype.kind == "f":
        u = u.astype(np.float32).view(np.uint32)
    u = u.astype(np.uint32)
    return np.stack([(u >> 16) & 255, (u >> 8) & 255, u & 255], axis=-1).astype(np.uint8)


def read_pcd(path: Path | str) -> PCDCloud:
    """Organized PCD -> H×W×3 float32 xyz (metres, NaN -> 0) and optional H×W×3 uint8 RGB."""
    path = Path(path)
    header = read_header(path)
    for axis in ("x", "y", "z"):
        if axis not in header.fields:
            raise DataError(path, f"PCD has no {axis!r} field (fields: {' '.join(header.fields)})")
        i = header.fields.index(axis)
        if header.types[i] != "F" or header.counts[i] != 1:
            raise DataError(path, f"unsupported PCD field type {header.types[i]}{header.sizes[i]} "
                                  f"(count {header.counts[i]}) for coordinate {axis!r}")
    try:
        rec = _records(path, header)
    except OSError as exc:
        raise DataError(path, f"cannot read PCD data ({one_line(exc)})") from None
    h, w = header.height, header.width
    xyz = np.empty((h * w, 3), dtype=np.float32)
    for k, axis in enumerate(("x", "y", "z")):
        xyz[:, k] = rec[axis]
    bad = ~np.isfinite(xyz).all(axis=1)
    xyz[bad] = 0.0
    rgb = None
    for name in ("rgb", "rgba"):
        if name in header.fields:
            i = header.fields.index(name)
            if header.sizes[i] != 4 or header.counts[i] != 1:
                raise DataError(path, f"unsupported PCD colour field {name!r} ({header.types[i]}{header.sizes[i]})")
            rgb = unpack_rgb(rec[name]).reshape(h, w, 3)
            break
    return PCDCloud(xyz.reshape(h, w, 3), rgb, header)
