"""Issue 15 (reliability), model files: tampered manifests (even with recomputed checksums)
are refused with one line, the manifest is covered by a checksum, members that would inflate
past their declared size are refused before they are read, schema-1 files still load."""

import hashlib
import json
import math
import time
import zipfile

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from core.cli import main
from core.errors import ModelFileError
from core.model_file import manifest_digest, read_model_file
from core.model_io import load_model


def _parts(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json")), st_load(zf.read("tensors.safetensors"))


def rewrite(path, out, edit_manifest=None, edit_tensors=None, reseal=True):
    """Copy a model file with edits. ``reseal`` recomputes every checksum, as a deliberate
    tamperer would, so only the content validation can catch the edit."""
    manifest, tensors = _parts(path)
    if edit_tensors:
        edit_tensors(tensors)
    blob = st_save(tensors)
    if edit_manifest:
        edit_manifest(manifest)
    if reseal:
        manifest["tensors_sha256"] = hashlib.sha256(blob).hexdigest()
        manifest["tensors_bytes"] = len(blob)
        manifest["manifest_sha256"] = manifest_digest(manifest)
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("tensors.safetensors", blob)
    return out


def _set(path, value):
    def edit(m):
        node = m
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return edit


_DELETE = object()

TAMPERS = {
    "grid 0": (_set(["config", "grid"], 0), None, "grid"),
    "image_size 56000": (_set(["config", "image_size"], 56000), None, "image-size"),
    "no model_id": (_set(["model_id"], _DELETE), None, "model_id"),
    "no xyz extractor": (_set(["extractors", "xyz"], _DELETE), None, "extractor entry for xyz"),
    "junk adaptation": (_set(["adaptation"], "junk"), None, "adaptation"),
    "one-element display_range": (_set(["display_range"], [0.5]), None, "display_range"),
    "string FPFH parameter": (_set(["extractors", "xyz", "params", "fpfh_radius_px"], "big"), None, "fpfh_radius_px"),
    "unknown fit setting": (_set(["config", "turbo_mode"], True), None, "unknown fit setting.*turbo_mode"),
    "NaN image threshold": (_set(["thresholds", "image"], math.nan), None, "image threshold"),
    "falling threshold spread": (_set(["thresholds", "image_spread"], [0.9, 0.1]), None, "image_spread"),
    "threshold spread as text": (_set(["thresholds", "image_spread"], "wide"), None, "image_spread"),
    "bank width != extractor dim": (None, lambda t: t.update({"bank.xyz.vectors": t["bank.xyz.vectors"][:, :5].copy()}),
                                    "memory bank"),
    "negative object frame": (_set(["object_frame"], {"side_px": -3}), None, "object_frame"),
    "object frame as text": (_set(["object_frame"], "everything"), None, "object_frame"),
    "adaptor tensors removed": (_set(["adaptation"], {"config": {}, "summary": {}, "modalities": ["xyz"]}), None,
                                "adaptor"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_manifest_is_refused_in_one_line(tiny_xyz_model, tmp_path, capsys, case):
    root, model = tiny_xyz_model
    edit_manifest, edit_tensors, needle = TAMPERS[case]
    bad = rewrite(model, tmp_path / "bad.lsfa", edit_manifest, edit_tensors)
    with pytest.raises(ModelFileError, match=needle):
        load_model(bad)
    code = main(["score", str(bad), str(root / "cookie" / "test" / "good")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "bad.lsfa" in err


def test_manifest_edit_without_new_checksum_is_detected(tiny_xyz_model, tmp_path):
    _, model = tiny_xyz_model
    bad = rewrite(model, tmp_path / "edited.lsfa", _set(["thresholds", "image"], 1e9), reseal=False)
    with pytest.raises(ModelFileError, match="manifest does not match its checksum"):
        read_model_file(bad)


def test_untampered_model_and_schema_1_file_still_load(tiny_xyz_model, tmp_path):
    _, model = tiny_xyz_model
    assert load_model(model).info["xyz_spacing_m"] > 0

    def as_v1(m):
        m["schema_version"] = 1
        for key in ("manifest_sha256", "tensors_bytes"):
            del m[key]

    old = rewrite(model, tmp_path / "v1.lsfa", as_v1, reseal=False)
    assert load_model(old).model_id == load_model(model).model_id


def test_inflating_tensor_member_is_refused_before_it_is_read(tiny_xyz_model, tmp_path):
    _, model = tiny_xyz_model
    manifest, _ = _parts(model)
    bomb = tmp_path / "bomb.lsfa"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))  # declares the real, small size
        zf.writestr("tensors.safetensors", bytes(256 << 20))  # inflates to 256 MiB
    assert bomb.stat().st_size < 2 << 20
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match="tensor data is 268435456 bytes, the manifest says"):
        read_model_file(bomb)
    assert time.perf_counter() - t0 < 2.0  # refused from the header, nothing inflated


def test_schema_1_member_above_memory_budget_is_refused(tiny_xyz_model, tmp_path, monkeypatch):
    _, model = tiny_xyz_model
    manifest, _ = _parts(model)
    manifest["schema_version"] = 1  # no declared size: the memory budget caps the read
    bomb = tmp_path / "bomb1.lsfa"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("tensors.safetensors", bytes(64 << 20))
    monkeypatch.setenv("LSFA_MEMORY_BUDGET_MB", "16")
    with pytest.raises(ModelFileError, match="claims 67108864 bytes, more than 16777216"):
        read_model_file(bomb)


def test_bank_with_non_finite_values_is_refused(tiny_xyz_model, tmp_path):
    _, model = tiny_xyz_model

    def poison(t):
        t["bank.xyz.vectors"] = t["bank.xyz.vectors"].copy()
        t["bank.xyz.vectors"][0, 0] = np.nan

    bad = rewrite(model, tmp_path / "nan.lsfa", edit_tensors=poison)
    with pytest.raises(ModelFileError, match="non-finite"):
        load_model(bad)


def test_extractor_parameter_kinds_follow_the_factory():
    from core.features.registry import param_defaults
    from core.manifest_check import ManifestProblem, check_param

    dino = param_defaults("dino_vitb8")
    check_param("dino_vitb8", "weights", "/models/dino.pth", *dino["weights"])  # a path is fine
    fpfh = param_defaults("fpfh_surface")
    check_param("fpfh_surface", "spacing_m", 0.001, *fpfh["spacing_m"])
    check_param("fpfh_surface", "sigmas_px", [2.0, 4.0], *fpfh["sigmas_px"])
    for key, value in (("spacing_m", "fine"), ("fpfh_radius_px", "big"), ("sigmas_px", [2.0, None]),
                       ("surface_weight", math.inf)):
        with pytest.raises(ManifestProblem, match=key):
            check_param("fpfh_surface", key, value, *fpfh[key])
