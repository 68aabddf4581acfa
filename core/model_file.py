"""The ``.lsfa`` model file: one zip container holding ``manifest.json`` + ``tensors.safetensors``.

Nothing in it is ever unpickled: the manifest is JSON, the arrays are safetensors. The
manifest records the SHA-256 of the tensor blob, so truncation or tampering is detected
before any array is used. Files are written atomically (temp file + ``os.replace``), so a
crash or a cancelled save never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from core.errors import ModelFileError

SCHEMA_VERSION = 1
FORMAT_NAME = "lsfa-inspector-model"
_MANIFEST = "manifest.json"
_TENSORS = "tensors.safetensors"
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_model_file(path: str | Path, manifest: dict, tensors: dict[str, np.ndarray]) -> str:
    """Write a model file atomically; returns the model id (hash prefix of its content)."""
    blob = st_save({k: np.ascontiguousarray(v) for k, v in tensors.items()})
    digest = hashlib.sha256(blob).hexdigest()
    full = dict(manifest)
    full["format"] = FORMAT_NAME
    full["schema_version"] = SCHEMA_VERSION
    full["tensors_sha256"] = digest
    full["model_id"] = digest[:12]
    text = json.dumps(full, indent=1, sort_keys=True).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(_MANIFEST, text)
        zf.writestr(_TENSORS, blob)
    atomic_write_bytes(path, buf.getvalue())
    return full["model_id"]


def read_model_file(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model file. Raises :class:`ModelFileError` with the reason."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "model file not found")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = {_MANIFEST, _TENSORS} - names
            if missing:
                raise ModelFileError(path, f"not an LSFA model file (missing {sorted(missing)})")
            if zf.getinfo(_MANIFEST).file_size > _MAX_MANIFEST_BYTES:
                raise ModelFileError(path, "manifest too large; file is corrupt or not a model")
            manifest_bytes = zf.read(_MANIFEST)
            blob = zf.read(_TENSORS)
    except zipfile.BadZipFile:
        raise ModelFileError(path, "not an LSFA model file, or truncated (bad zip container)") from None
    except (zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelFileError(path, f"cannot read model file ({exc})") from None
    except RuntimeError as exc:  # CRC mismatch from zipfile
        raise ModelFileError(path, f"model file is corrupt ({exc})") from None
    try:
        manifest = json.loads(manifest_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(path, "model manifest is not valid JSON (corrupt or tampered)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ModelFileError(path, "not an LSFA Inspector model file")
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise ModelFileError(path, "model manifest has no schema version")
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            path,
            f"written by a newer LSFA Inspector (schema {version}, this version reads up to "
            f"{SCHEMA_VERSION}); please upgrade",
        )
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
    for key in ("format", "schema_version", "tensors_sha256", "model_id"):
        manifest.pop(key, None)
    manifest.update(changes)
    write_model_file(path, manifest, tensors)
