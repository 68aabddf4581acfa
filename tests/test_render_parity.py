"""One renderer for CLI and GUI: the CLI's ``--maps`` PNG and the GUI's PNG export of the same
SampleResult, thresholds and colour range are the same pixels (and the same PNG bytes)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from core import render
from core.commands.score import map_image
from core.results import Thresholds
from lsfa_gui import export
from lsfa_gui.colormaps import lut
from lsfa_gui._testing import synthetic_result
from lsfa_gui.state import InspectionState, ModelInfo, SampleEntry
from lsfa_gui.state import ThresholdSettings as GuiThresholds


def gui_state_for(model, result) -> InspectionState:
    """The state as the main window sets it up for a model and one scored sample."""
    st = InspectionState()
    thr = model.thresholds
    st.set_model(ModelInfo(path="m.lsfa", name="m", seeded=GuiThresholds(thr.image, thr.pixel),
                           colour_range=tuple(model.display_range)))
    st.set_entries([SampleEntry(result.name, result.split, result.label)])
    st.set_result(0, result)
    return st


@pytest.mark.parametrize("with_rgb", [True, False])
@pytest.mark.parametrize("label", ["crack", "good", None])
def test_cli_and_gui_export_pngs_are_identical(tmp_path, with_rgb, label):
    result = synthetic_result(3, label, size=96, with_rgb=with_rgb)
    model = SimpleNamespace(display_range=(0.15, 0.9), thresholds=Thresholds(0.6, 0.5))
    cli_png = tmp_path / "cli.png"
    render.save_png(cli_png, map_image(result, model))
    gui_png = export.export_overlay_png(gui_state_for(model, result), 0, tmp_path / "gui.png", lut("turbo"))
    cli, gui = np.asarray(Image.open(cli_png)), np.asarray(Image.open(gui_png))
    assert cli.shape == gui.shape == (96, 96, 3)
    assert np.array_equal(cli, gui)
    assert cli_png.read_bytes() == gui_png.read_bytes()
    if label == "crack":  # the defect region is outlined at the pixel threshold
        assert np.any(np.all(cli == render.PREDICTION_RGB, axis=-1))
        assert np.any(np.all(cli == render.GROUND_TRUTH_RGB, axis=-1))


def test_turbo_lut_is_pyqtgraphs_table():
    pg = pytest.importorskip("pyqtgraph")
    table = np.asarray(pg.colormap.get("turbo").getLookupTable(0.0, 1.0, 256, alpha=False), np.uint8)
    assert np.array_equal(render.TURBO_LUT, table)
    assert lut("turbo") is render.TURBO_LUT


@pytest.mark.parametrize("width", [1, 2])
def test_outline_is_the_mask_minus_its_erosion_also_at_the_image_edge(width):
    from scipy import ndimage

    rng = np.random.default_rng(width)
    for mask in (rng.random((60, 45)) > 0.7, np.pad(np.ones((5, 7), bool), ((0, 30), (20, 0))), np.zeros((9, 9), bool)):
        expected = mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=0)
        assert np.array_equal(render.outline(mask, width), expected)


def test_colorize_with_fade_and_below():
    amap = np.linspace(0.0, 1.2, 400, dtype=np.float32).reshape(20, 20)
    rgba = render.colorize(amap, (0.1, 1.1), render.TURBO_LUT, below=0.5, fade=True)
    idx = render.lut_indices(amap, (0.1, 1.1))
    assert np.array_equal(rgba[..., :3], render.TURBO_LUT[idx])
    alpha = (idx.astype(np.uint16) * 255 // 255).astype(np.uint8)
    alpha[amap < 0.5] = 0
    assert np.array_equal(rgba[..., 3], alpha)
    assert np.all(render.colorize(amap, (0.1, 1.1), render.TURBO_LUT)[..., 3] == 255)
