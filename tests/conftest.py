import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core import tv_shim  # noqa: E402

tv_shim.install()

SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.hookimpl(trylast=True)  # after pytest-xvfb has started Xvfb and set DISPLAY
def pytest_configure(config):
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
    os.environ.setdefault("QT_API", "pyside6")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data shipped beside the checkout (../shared/data); skips if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def _tiny_xyz_fit(tmp_path_factory):
    """(dataset root, model path), made once per test session: a tiny demo "cookie" dataset
    (96 px, 5 train / 3 validation / 1 good + 1 dent test) and an xyz-only, frozen model fitted
    without the self-check, with a private preprocessing cache. Tests copy before changing them."""
    from core.cli import main
    from core.demo import generate_demo_dataset

    tmp = tmp_path_factory.mktemp("tiny-xyz")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSFA_CACHE_DIR", str(tmp / "cache"))
    root = generate_demo_dataset(tmp / "demo", seed=4, categories=["cookie"], size=96, n_train=5,
                                 n_validation=3, n_test_good=1, n_test_per_defect=1, defect_types=["dent"])
    model = tmp / "m.lsfa"
    assert main(["fit", str(root), "-c", "cookie", "-o", str(model), "--modalities", "xyz",
                 "--no-self-check", "--no-adapt"]) == 0
    mp.undo()
    return root, model


@pytest.fixture
def tiny_xyz_model(_tiny_xyz_fit, tmp_path_factory, monkeypatch):
    """The session's tiny xyz (dataset root, model path), used with a private cache dir."""
    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return _tiny_xyz_fit


@pytest.fixture(scope="session")
def _tiny_xyz_flagging_fit(_tiny_xyz_fit, tmp_path_factory):
    """(dataset root, model path): a copy of the tiny xyz model whose image threshold flags both
    test parts and whose pixel threshold leaves a defect region on each (the 0.99 quantile of the
    lower-scoring part's map), for tests of what flagged parts get (region columns, reports)
    whatever the tiny model's own thresholds flag."""
    from dataclasses import replace

    import numpy as np

    from core.data.dataset import open_dataset
    from core.model_io import load_model, save_model

    root, model_path = _tiny_xyz_fit
    model = load_model(model_path)
    results = [model.score(r.load()) for r in open_dataset(root).samples("cookie", "test")]
    low = min(results, key=lambda r: r.image_score)
    model.thresholds = replace(model.thresholds, image=0.5 * low.image_score,
                               pixel=float(np.quantile(low.anomaly_map, 0.99)), source="user")
    out = tmp_path_factory.mktemp("tiny-xyz-flagging") / "m.lsfa"
    save_model(model, out)
    return root, out


@pytest.fixture
def tiny_xyz_flagging_model(_tiny_xyz_flagging_fit, tmp_path_factory, monkeypatch):
    """The tiny xyz model with thresholds that flag both test parts, used with a private cache dir."""
    monkeypatch.setenv("LSFA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return _tiny_xyz_flagging_fit


@pytest.fixture
def settings(tmp_path):
    """Private QSettings (an ini file in tmp_path), so tests never touch the user's settings."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    """A MainWindow on private settings, without the 3D view; closed after the test."""
    from lsfa_gui.main_window import MainWindow

    w = MainWindow(settings=settings, enable_3d=False)
    qtbot.addWidget(w)
    yield w
    w.close()
