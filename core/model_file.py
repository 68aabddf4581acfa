"""The ``.lsfa`` model file: one zip container holding ``manifest.json`` + ``tensors.safetensors``.

Nothing in it is ever unpickled: the manifest is JSON, the arrays are safetensors. The
manifest records the SHA-256 and size of the tensor blob and (schema 2) the SHA-256 of its own
canonical JSON, so truncation or accidental edits are detected before anything is used; the
meaning of every entry is validated separately (``core.manifest_check``). Files are written atomically (temp file + ``os.replace``), so a
crash or a cancelled save never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from core.errors import ModelFileError
from core.atomic import atomic_write

SCHEMA_VERSION = 2  # 2: the manifest carries its own checksum and the tensor blob's size
FORMAT_NAME = "lsfa-inspector-model"
_MANIFEST = "manifest.json"
_TENSORS = "tensors.safetensors"
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_SEALED_KEYS = ("manifest_sha256",)
_CHUNK = 1 << 20


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical JSON, without the checksum entry itself."""
    body = {k: v for k, v in manifest.items() if k not in _SEALED_KEYS}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_model_file(path: str | Path, manifest: dict, tensors: dict[str, np.ndarray]) -> str:
    """Write a model file atomically; returns the model id (hash prefix of its tensors)."""
    blob = st_save({k: np.ascontiguousarray(v) for k, v in tensors.items()})
    digest = hashlib.sha256(blob).hexdigest()
    full = dict(manifest)
    full["format"] = FORMAT_NAME
    full["schema_version"] = SCHEMA_VERSION
    full["tensors_sha256"] = digest
    full["tensors_bytes"] = len(blob)
    full["model_id"] = digest[:12]
    full = json.loads(json.dumps(full))  # what a reader will see (tuples -> lists, ...)
    full["manifest_sha256"] = manifest_digest(full)
    text = json.dumps(full, indent=1, sort_keys=True).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(_MANIFEST, text)
        zf.writestr(_TENSORS, blob)
    atomic_write(path, buf.getvalue(), fsync=True)
    return full["model_id"]


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, path: Path, what: str) -> bytes:
    """A zip member read in chunks, refused before decompression when its header claims more
    than ``limit`` bytes, and while decompressing if it grows past it."""
    size = zf.getinfo(name).file_size
    if size > limit:
        raise ModelFileError(path, f"{what} claims {size} bytes, more than {limit} (corrupt or tampered)")
    out = bytearray()
    with zf.open(name) as fh:
        while chunk := fh.read(_CHUNK):
            out += chunk
            if len(out) > limit:
                raise ModelFileError(path, f"{what} is larger than {limit} bytes (corrupt or tampered)")
    return bytes(out)


def _check_header(path: Path, manifest) -> int:
    """The manifest's schema version, after its format, version and checksum are checked."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ModelFileError(path, "not an LSFA Inspector model file")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(path, "model manifest has no schema version")
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            path,
            f"written by a newer LSFA Inspector (schema {version}, this version reads up to "
            f"{SCHEMA_VERSION}); please upgrade",
        )
    if version >= 2:
        if manifest.get("manifest_sha256") != manifest_digest(manifest):
            raise ModelFileError(path, "model manifest does not match its checksum (corrupt or edited)")
        size = manifest.get("tensors_bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ModelFileError(path, "model manifest has no valid tensors_bytes entry")
    return version


def read_model_bytes(path: str | Path) -> bytes:
    """The raw bytes of a model file (to ship by content), unchecked: :func:`read_model_file`
    with ``data=`` checks them. ModelFileError if the file cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "model file not found")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFileError(path, f"cannot read model file ({exc.strerror or exc})") from None


def read_model_file(path: str | Path, data: bytes | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model file. Raises :class:`ModelFileError` with the reason.

    ``data``: the file's bytes, already read (e.g. shipped to a Ray actor); ``path`` then only
    names the model in messages. The manifest is read first (at most 16 MiB); the tensor blob is read only if its size
    matches the manifest (schema 2) and fits the memory budget, and is then checked against
    its SHA-256. Schema-1 files (no manifest checksum) are still read."""
    from core.memory import memory_budget

    path = Path(path)
    if data is None and not path.is_file():
        raise ModelFileError(path, "model file not found")
    try:
        with zipfile.ZipFile(path if data is None else io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            missing = {_MANIFEST, _TENSORS} - names
            if missing:
                raise ModelFileError(path, f"not an LSFA model file (missing {sorted(missing)})")
            manifest_bytes = _read_member(zf, _MANIFEST, _MAX_MANIFEST_BYTES, path, "model manifest")
            try:
                manifest = json.loads(manifest_bytes)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ModelFileError(path, "model manifest is not valid JSON (corrupt or tampered)") from None
            version = _check_header(path, manifest)
            declared = zf.getinfo(_TENSORS).file_size
            if version >= 2 and declared != manifest["tensors_bytes"]:
                raise ModelFileError(path, f"tensor data is {declared} bytes, the manifest says "
                                           f"{manifest['tensors_bytes']} (corrupt or tampered)")
            blob = _read_member(zf, _TENSORS, min(declared, memory_budget()), path, "tensor data")
    except zipfile.BadZipFile:
        raise ModelFileError(path, "not an LSFA model file, or truncated (bad zip container)") from None
    except (zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ModelFileError(path, f"cannot read model file ({exc})") from None
    except RuntimeError as exc:  # CRC mismatch from zipfile
        raise ModelFileError(path, f"model file is corrupt ({exc})") from None
    if hashlib.sha256(blob).hexdigest() != manifest.get("tensors_sha256"):
        raise ModelFileError(path, "tensor data does not match its checksum (corrupt or tampered)")
    try:
        tensors = st_load(blob)
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(path, f"tensor data cannot be decoded ({exc})") from None
    return manifest, tensors


def update_manifest(path: str | Path, changes: dict) -> None:
    """Rewrite a model file with some manifest entries changed (e.g. thresholds), atomically."""
    manifest, tensors = read_model_file(path)
    for key in ("format", "schema_version", "tensors_sha256", "tensors_bytes", "model_id", "manifest_sha256"):
        manifest.pop(key, None)
    manifest.update(changes)
    write_model_file(path, manifest, tensors)
