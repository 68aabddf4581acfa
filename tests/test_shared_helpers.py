"""The one-owner helpers: verdicts and confusion counts, label ground truth, valid points,
atomic writes, file-safe names."""

from __future__ import annotations

import numpy as np
import pytest

from core.atomic import atomic_target, atomic_write
from core.data.sample import finite_valid_points, label_is_defect, valid_points
from core.naming import safe_name, sanitize
from core.thresholds import NG, OK, confusion, confusion_counts, confusion_rates, verdict


def test_verdict_and_confusion_share_the_convention():
    assert verdict(1.0, 1.0) == NG and verdict(0.999, 1.0) == OK
    y = np.array([1, 1, 0, 0, 1], bool)
    s = np.array([0.9, 0.2, 0.5, 0.1, 0.5])
    c = confusion_counts(y, s, 0.5)
    assert c == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}
    full = confusion(y, s, 0.5)
    assert {k: full[k] for k in c} == c
    assert {k: full[k] for k in ("precision", "recall", "f1", "accuracy")} == confusion_rates(c)
    assert confusion_rates({"tp": 0, "fp": 0, "fn": 0, "tn": 0}) == dict(precision=0.0, recall=0.0, f1=0.0, accuracy=0.0)


def test_label_is_defect():
    assert label_is_defect(None) is None
    assert label_is_defect("good") is False
    assert label_is_defect("crack") is True


def test_valid_points():
    xyz = np.zeros((2, 3, 3), np.float32)
    xyz[0, 0] = (0, 0, 1)
    xyz[1, 2] = (np.nan, 0, 0)
    assert valid_points(xyz).tolist() == [[True, False, False], [False, False, True]]
    assert finite_valid_points(xyz).tolist() == [[True, False, False], [False, False, False]]
    assert np.array_equal(valid_points(xyz), np.any(xyz != 0, axis=-1))


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    atomic_write(target, b"one", fsync=True)
    assert target.read_bytes() == b"one"
    with pytest.raises(RuntimeError):
        with atomic_target(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"one"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_safe_name():
    assert sanitize("_a b/c_") == "_a_b_c_"
    assert safe_name("_a b/c_") == "a_b_c"
    assert safe_name("///") == "sample"
    assert safe_name("x-1.2_y") == "x-1.2_y"


def test_fit_and_adaptation_settings_refuse_unknown_keys_alike():
    """One rule for stored settings: a key this version does not know is a UserError naming it."""
    from core.adaptation.config import AdaptConfig
    from core.config import FitConfig
    from core.errors import UserError

    stored = FitConfig(seed=5).to_dict()
    assert FitConfig.from_dict(stored) == FitConfig(seed=5)  # what this version writes loads back
    with pytest.raises(UserError, match=r"unknown fit setting\(s\): old_knob, turbo"):
        FitConfig.from_dict({**stored, "turbo": True, "old_knob": 1})
    with pytest.raises(UserError, match=r"unknown adaptation setting\(s\): turbo"):
        AdaptConfig.from_dict({**AdaptConfig().to_dict(), "turbo": True})
