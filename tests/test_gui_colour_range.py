"""Issue 16 item 2: the default colour range starts at the pixel threshold, so a good part shows
no colour and a defect uses the whole colormap."""

from types import SimpleNamespace

import numpy as np
import pytest

from core import render
from lsfa_gui._testing import scored_state, synthetic_result
from lsfa_gui.colormaps import lut
from lsfa_gui.export import overlay_image
from lsfa_gui.state import SampleEntry


def scored(labels=("good", "crack")):
    results = [synthetic_result(i, lab, size=64) for i, lab in enumerate(labels)]
    return scored_state(results), results


def test_range_from_threshold():
    assert render.range_from_threshold((0.1, 1.1), 0.5) == (0.5, 1.1)
    assert render.range_from_threshold((0.1, 1.1), None) == (0.1, 1.1)
    assert render.range_from_threshold((0.1, 1.1), 1.5) == (0.1, 1.1)  # no empty range


def test_a_good_sample_below_the_threshold_shows_no_colour_by_default():
    st, results = scored()
    good, crack = st.entries
    assert float(results[0].anomaly_map.max()) < 0.5  # every pixel of the good part is below it
    assert st.display.from_threshold and st.display_range(good) == (0.5, 1.1)
    table = lut(st.display.colormap)
    base = render.base_image(results[0])
    assert np.array_equal(overlay_image(st, good, table), base)  # the image as it is: no colour
    defect = overlay_image(st, crack, table)
    assert np.any(defect != render.base_image(results[1]))  # the defect is coloured
    # the old fixed range tints the whole good part (the faint wash the issue describes)
    st.set_display(from_threshold=False)
    assert np.count_nonzero(np.any(overlay_image(st, good, table) != base, axis=-1)) > 0.5 * base.shape[0] * base.shape[1]


def test_moving_the_pixel_threshold_moves_the_range():
    st, _ = scored()
    seen = []
    st.colour_range_changed.connect(lambda: seen.append(st.display_range()))
    st.set_thresholds(pixel=0.7)
    assert seen == [(0.7, 1.1)]
    st.set_display(per_sample_range=True)  # the stretch still wins when asked for
    lo, hi = st.display_range(st.entries[0])
    assert lo == pytest.approx(float(st.entries[0].result.anomaly_map.min()))


def test_the_view_menu_switches_the_mode(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from lsfa_gui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(w)
    act = w.actions_by_name["from_threshold"]
    assert act.isChecked()
    act.trigger()
    assert not w.state.display.from_threshold
    w.state.set_display(from_threshold=True)
    assert act.isChecked()
    w._set_model(SimpleNamespace(thresholds=SimpleNamespace(image=0.6, pixel=0.5), display_range=(0.1, 1.1)), "/x/m.lsfa")
    w.state.set_entries([SampleEntry("good_000", "test", "good")])
    w.state.set_result(0, synthetic_result(0, "good", size=48))
    w.state.set_current(0)
    assert "from the pixel threshold" in w.image_view.readout_text()
    w.close()
