"""The .lsfa container: round trip, atomic writes, and clear errors for bad files."""

import json
import zipfile

import numpy as np
import pytest

from core.errors import ModelFileError
from core.model_file import SCHEMA_VERSION, read_model_file, update_manifest, write_model_file


def _write(path):
    tensors = {"bank.rgb.vectors": np.arange(12, dtype=np.float32).reshape(3, 4), "x": np.ones(2, np.int64)}
    model_id = write_model_file(path, {"thresholds": {"image": 1.5}}, tensors)
    return model_id, tensors


def test_round_trip(tmp_path):
    path = tmp_path / "m.lsfa"
    model_id, tensors = _write(path)
    manifest, loaded = read_model_file(path)
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["model_id"] == model_id
    assert manifest["thresholds"] == {"image": 1.5}
    for k, v in tensors.items():
        np.testing.assert_array_equal(loaded[k], v)
        assert loaded[k].dtype == v.dtype
    assert not list(tmp_path.glob(".*tmp")), "no temp file left behind"


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "m.lsfa"
    _write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="m.lsfa"):
        read_model_file(path)


def test_tampered_tensors_are_detected(tmp_path):
    path = tmp_path / "m.lsfa"
    _write(path)
    manifest, tensors = read_model_file(path)
    tensors["bank.rgb.vectors"][0, 0] = 99.0
    from safetensors.numpy import save

    with zipfile.ZipFile(path, "w") as zf:  # rewrite with the old manifest, new tensors
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("tensors.safetensors", save(tensors))
    with pytest.raises(ModelFileError, match="checksum"):
        read_model_file(path)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "m.lsfa"
    _write(path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        blob = zf.read("tensors.safetensors")
    manifest["schema_version"] = SCHEMA_VERSION + 1
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("tensors.safetensors", blob)
    with pytest.raises(ModelFileError, match="newer"):
        read_model_file(path)


def test_not_a_model_and_missing(tmp_path):
    junk = tmp_path / "junk.lsfa"
    junk.write_bytes(b"\x80\x04K\x01.")  # a pickle: must be refused, never loaded
    with pytest.raises(ModelFileError, match="not an LSFA model file"):
        read_model_file(junk)
    with pytest.raises(ModelFileError, match="not found"):
        read_model_file(tmp_path / "absent.lsfa")


def test_update_manifest_keeps_tensors(tmp_path):
    path = tmp_path / "m.lsfa"
    _, tensors = _write(path)
    update_manifest(path, {"thresholds": {"image": 2.0}})
    manifest, loaded = read_model_file(path)
    assert manifest["thresholds"] == {"image": 2.0}
    np.testing.assert_array_equal(loaded["bank.rgb.vectors"], tensors["bank.rgb.vectors"])
