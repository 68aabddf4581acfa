"""Fit settings dialog: widgets <-> FitConfig, remembered choices, weights check, fit action wiring."""

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog, QDialogButtonBox

from core.config import FitConfig, option_help
from lsfa_gui.settings import Settings
from lsfa_gui.widgets.fit_dialog import FitDialog


@pytest.fixture
def settings(tmp_path):
    return Settings(QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))


def make_dialog(qtbot, settings=None, **kwargs):
    dialog = FitDialog(settings, devices=["cpu", "cuda"], **kwargs)
    qtbot.addWidget(dialog)
    return dialog


def ok_button(dialog):
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_defaults_give_the_default_config(qtbot):
    dialog = make_dialog(qtbot)
    assert dialog.config() == FitConfig()
    assert ok_button(dialog).isEnabled() and dialog.error.text() == ""
    assert dialog.rgb_backbone.findText("efficientnet_lite0") >= 0 and dialog.xyz_backbone.findText("fpfh") >= 0
    assert not dialog.rgb_weights.isEnabled()  # efficientnet_lite0 takes no weights file
    for name in ("efficientnet_lite1", "efficientnet_lite2"):  # the larger Lite variants are offered
        assert dialog.rgb_backbone.findText(name) >= 0
        dialog.rgb_backbone.setCurrentText(name)
        assert not dialog.rgb_weights.isEnabled() and ok_button(dialog).isEnabled()
        assert dialog.config().rgb_backbone == name


def test_widgets_to_config(qtbot, tmp_path):
    weights = tmp_path / "pretrain.pth"
    weights.write_bytes(b"x")
    base = FitConfig(image_size=112, adaptation={"lr": 1e-3})
    dialog = make_dialog(qtbot, base=base)
    dialog.modalities.setCurrentText("rgb,xyz")
    dialog.xyz_backbone.setCurrentText("pointmae")
    dialog.xyz_weights.set_path(str(weights))
    dialog.device.setCurrentText("cuda")
    dialog.adapt.setChecked(True)
    dialog.adaptor.setCurrentText("mlp")
    dialog.losses["gc"].setChecked(False)
    dialog.epochs.setValue(7)
    dialog.coreset_ratio.setValue(0.25)
    dialog.fusion.setCurrentText("ocsvm")
    dialog.seed.setValue(42)
    dialog.rgb_rotations.setCurrentIndex(dialog.rgb_rotations.findData(4))
    dialog.bank_shifts.setCurrentIndex(dialog.bank_shifts.findData(3))
    assert dialog.config().patch_distance == "relative"  # the default
    dialog.patch_distance.setCurrentIndex(dialog.patch_distance.findData("raw"))
    cfg = dialog.config()
    assert (cfg.modalities, cfg.rgb_backbone, cfg.xyz_backbone) == ("rgb,xyz", "efficientnet_lite0", "pointmae")
    assert (cfg.rgb_weights, cfg.xyz_weights, cfg.device) == (None, str(weights), "cuda")
    assert cfg.adapt and cfg.adaptation == {"lr": 1e-3, "adaptor": "mlp", "losses": ["la", "ga", "lc"], "epochs": 7}
    assert (cfg.coreset_ratio, cfg.fusion, cfg.seed, cfg.rgb_rotations, cfg.bank_shifts) == (0.25, "ocsvm", 42, 4, 3)
    assert cfg.patch_distance == "raw"
    assert cfg.image_size == 112  # fields the dialog does not show come from the base config
    dialog.adapt.setChecked(False)
    assert not dialog.config().adapt and dialog.config().adaptation == {"lr": 1e-3}
    dialog.modalities.setCurrentText("rgb")  # the 3D backbone is unused: its weights are dropped
    assert dialog.config().xyz_weights is None and not dialog.xyz_backbone.isEnabled()


def test_config_to_widgets(qtbot):
    cfg = FitConfig(modalities="xyz", device="cuda", adapt=True, coreset_ratio=0.05, fusion="ocsvm", seed=3,
                    rgb_rotations=2, bank_shifts=1, patch_distance="raw", adaptation={"adaptor": "mlp", "losses": ["la", "lc"], "epochs": 2})
    dialog = make_dialog(qtbot)
    dialog.set_config(cfg)
    assert dialog.modalities.currentText() == "xyz" and dialog.device.currentText() == "cuda"
    assert dialog.adapt.isChecked() and dialog.adaptor.currentText() == "mlp" and dialog.epochs.value() == 2
    assert [n for n, b in dialog.losses.items() if b.isChecked()] == ["la", "lc"]
    assert dialog.coreset_ratio.value() == pytest.approx(0.05) and dialog.fusion.currentText() == "ocsvm"
    assert dialog.seed.value() == 3 and not dialog.rgb_backbone.isEnabled()
    assert dialog.rgb_rotations.currentData() == 2 and "turned 180°" in dialog.rgb_rotations.currentText()
    assert dialog.bank_shifts.currentData() == 1 and "diagonally" in dialog.bank_shifts.currentText()
    assert dialog.patch_distance.currentData() == "raw" and "raw kNN" in dialog.patch_distance.currentText()
    assert dialog.config() == cfg


def test_choices_are_remembered(qtbot, settings):
    first = make_dialog(qtbot, settings)
    first.fusion.setCurrentText("ocsvm")
    first.seed.setValue(9)
    first.adaptor.setCurrentText("mlp")  # remembered even with adaptation off
    first.accept()
    assert first.result() == QDialog.DialogCode.Accepted and first.result_config.seed == 9
    second = make_dialog(qtbot, settings)
    assert (second.fusion.currentText(), second.seed.value(), second.adaptor.currentText()) == ("ocsvm", 9, "mlp")
    assert second.config() == first.result_config
    settings.q.setValue("fit/choices", '{"fusion": "nonsense", "seed": 1}')  # unusable -> defaults
    assert make_dialog(qtbot, settings).config() == FitConfig()


def test_backbone_needing_weights_blocks_ok(qtbot, tmp_path, settings):
    dialog = make_dialog(qtbot, settings)
    if dialog.rgb_backbone.findText("dino_vitb8") < 0:
        pytest.skip("dino_vitb8 backbone not installed")
    dialog.rgb_backbone.setCurrentText("dino_vitb8")
    assert dialog.rgb_weights.isEnabled()
    assert not ok_button(dialog).isEnabled() and "needs a weights file" in dialog.error.text()
    assert dialog.error.isVisibleTo(dialog)
    dialog.accept()  # refused: nothing returned, nothing remembered
    assert dialog.result_config is None and settings.fit_choices() == {}
    dialog.rgb_weights.set_path(str(tmp_path / "missing.pth"))
    assert not ok_button(dialog).isEnabled() and "not found" in dialog.error.text()
    (tmp_path / "dino.pth").write_bytes(b"x")
    dialog.rgb_weights.set_path(str(tmp_path / "dino.pth"))
    assert ok_button(dialog).isEnabled() and dialog.error.text() == ""
    dialog.modalities.setCurrentText("xyz")  # RGB backbone unused: no weights needed
    dialog.rgb_weights.set_path("")
    assert ok_button(dialog).isEnabled()
    dialog.modalities.setCurrentText("auto")
    dialog.rgb_backbone.setCurrentText("efficientnet_lite0")
    dialog.adapt.setChecked(True)
    for box in dialog.losses.values():
        box.setChecked(False)
    assert not ok_button(dialog).isEnabled() and "loss" in dialog.error.text()


def test_fit_action_passes_the_dialog_config_to_the_job(qtbot, tmp_path, monkeypatch):
    from lsfa_gui import tasks
    from lsfa_gui.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(window)
    window.state.dataset_root, window.state.category = str(tmp_path / "data"), "puck"

    def accept_with_seed(dialog):
        dialog.seed.setValue(123)
        dialog.fusion.setCurrentText("ocsvm")
        dialog.accept()
        return QDialog.DialogCode.Accepted

    captured = {}

    def fake_fit_job(root, category, model_path, config=None, score_refs=None, **_roi):
        captured.update(root=root, category=category, config=config)
        return lambda progress: None

    monkeypatch.setattr(FitDialog, "exec", accept_with_seed)
    monkeypatch.setattr(tasks, "fit_job", fake_fit_job)
    with qtbot.waitSignal(window.jobs.succeeded, timeout=10000):
        window.actions_by_name["fit"].trigger()
    assert captured["category"] == "puck" and isinstance(captured["config"], FitConfig)
    assert (captured["config"].seed, captured["config"].fusion) == (123, "ocsvm")
    assert window.settings.fit_choices()["seed"] == 123

    captured.clear()  # cancelling the dialog starts no job
    monkeypatch.setattr(FitDialog, "exec", lambda dialog: QDialog.DialogCode.Rejected)
    window.actions_by_name["fit"].trigger()
    assert captured == {} and not window.jobs.busy
    window.close()


def test_image_view_keeps_square_pixels(qtbot):
    """The square model-grid image is shown aspect-locked in a non-square view (no stretching)."""
    from lsfa_gui._testing import synthetic_result
    from lsfa_gui.state import InspectionState, SampleEntry
    from lsfa_gui.widgets.image_view import ImageView

    state = InspectionState()
    result = synthetic_result(0, "crack", size=64)
    state.set_entries([SampleEntry(result.name, "test", result.label)])
    state.set_result(0, result)
    view = ImageView(state)
    qtbot.addWidget(view)
    view.resize(300, 700)  # tall and narrow
    view.show()
    qtbot.waitExposed(view)
    state.set_current(0)
    for size in ((300, 700), (900, 300)):
        view.resize(*size)
        qtbot.waitUntil(lambda: view.canvas.width() > 0 and abs(view.view.width() / max(view.view.height(), 1) - 1) > 0.2)
        px, py = view.view.viewPixelSize()
        assert px == pytest.approx(py, rel=0.02)


def test_resolution_preset_and_self_check_are_offered_and_remembered(qtbot, settings):
    from core.config import PRESETS

    dialog = make_dialog(qtbot, settings)
    assert dialog.preset.currentText() == "auto" and dialog.self_check.isChecked()
    dialog.preset.setCurrentText("accurate")
    dialog.self_check.setChecked(False)
    config = dialog.config()
    assert {k: getattr(config, k) for k in PRESETS["accurate"]} == PRESETS["accurate"]
    assert config.ensemble == [[320, 40, 5.7]]  # accurate: the two-resolution ensemble
    assert config.self_check is False
    dialog.accept()
    again = make_dialog(qtbot, settings)  # the choices come back next time
    assert again.preset.currentText() == "accurate" and not again.self_check.isChecked()
    assert again.config() == config
    # the uncertain band is offered with the self-check only, off by default, and remembered
    assert not again.uncertain_band.isEnabled() and not again.config().uncertain_band
    again.self_check.setChecked(True)
    assert again.uncertain_band.isEnabled() and not again.uncertain_band.isChecked()
    again.uncertain_band.setChecked(True)
    assert again.config().uncertain_band is True
    # so is the threshold on training parts scored leave-one-out, on by default
    assert again.threshold_training_parts.isEnabled() and again.config().threshold_training_parts is True
    again.threshold_training_parts.setChecked(False)
    assert again.config().threshold_training_parts is False
    again.accept()
    remembered = make_dialog(qtbot, settings)
    assert remembered.uncertain_band.isChecked() and not remembered.threshold_training_parts.isChecked()
    remembered.self_check.setChecked(False)
    assert not remembered.threshold_training_parts.isEnabled()
    # the crop around the part is on by default, can be switched off, and is remembered
    crop = make_dialog(qtbot, settings)
    assert crop.object_crop.isChecked() and crop.config().object_crop is True
    # RGB-only data is cropped by the part's colour only when asked; offered only with the crop
    assert not crop.rgb_object_crop.isChecked() and crop.config().rgb_object_crop is False
    assert crop.rgb_object_crop.toolTip() == option_help("rgb_object_crop")
    crop.rgb_object_crop.setChecked(True)
    assert crop.config().rgb_object_crop is True
    crop.object_crop.setChecked(False)
    assert crop.config().object_crop is False and not crop.rgb_object_crop.isEnabled()
    crop.accept()
    reopened = make_dialog(qtbot, settings)
    assert not reopened.object_crop.isChecked() and reopened.rgb_object_crop.isChecked()
    assert not reopened.rgb_object_crop.isEnabled()
    # so is the colour-contrast block of the RGB features
    colour = make_dialog(qtbot, settings)
    assert colour.colour_contrast.isChecked() and colour.config().colour_contrast is True
    assert colour.colour_contrast.toolTip() == option_help("colour_contrast")
    colour.colour_contrast.setChecked(False)
    assert colour.config().colour_contrast is False
    colour.accept()
    assert not make_dialog(qtbot, settings).config().colour_contrast
    # the position channel's weight: 1 by default, offered only with the crop, remembered
    position = make_dialog(qtbot, settings)
    assert position.position_weight.value() == 1.0 and not position.position_weight.isEnabled()  # crop off above
    position.object_crop.setChecked(True)
    assert position.position_weight.isEnabled()
    position.position_weight.setValue(0.0)
    assert position.position_weight.text() == "off" and position.config().position_weight == 0.0
    position.position_weight.setValue(2.5)
    assert position.config().position_weight == 2.5
    position.accept()
    assert make_dialog(qtbot, settings).config().position_weight == 2.5
    custom = make_dialog(qtbot, base=FitConfig(image_size=256, grid=32))
    assert custom.preset.currentText() == "custom"
    assert (custom.config().image_size, custom.config().grid) == (256, 32)


def test_tooltips_and_cli_help_come_from_the_one_settings_schema(qtbot):
    import argparse
    from dataclasses import fields

    from core.commands import fit as fit_command

    dialog = make_dialog(qtbot)
    assert dialog.fusion.toolTip() == option_help("fusion") and "tail_sum" in option_help("fusion")
    assert dialog.self_check.toolTip() == option_help("self_check")
    assert all(option_help(f.name) for f in fields(FitConfig))  # every setting is described
    parser = argparse.ArgumentParser()
    fit_command.register(parser.add_subparsers())
    fit_parser = parser._subparsers._group_actions[0].choices["fit"]
    undocumented = [a.option_strings for a in fit_parser._actions if not a.help]
    assert undocumented == []
    assert " ".join(option_help("fusion").split()[:8]) in " ".join(fit_parser.format_help().split())


def test_the_dialog_shows_the_epochs_the_engine_will_run(qtbot):
    """Issue 16 item 8: 'Epochs 4' while the fit runs 34: the note states the min_steps rule's result."""
    from core.adaptation.config import AdaptConfig

    dialog = make_dialog(qtbot, n_train=44, data_modalities=("rgb", "xyz"))
    assert dialog.epochs.value() == 4
    runs = AdaptConfig().epochs_for(44)
    assert runs == 34 and dialog.epochs_note.text().startswith("34 epochs will run: 44 training images")
    dialog.epochs.setValue(5)  # epochs given explicitly are run as they are
    assert dialog.epochs_note.text() == "5 epochs on 44 training images"
    dialog.modalities.setCurrentText("xyz")  # one modality with the default losses: skipped
    assert dialog.epochs_note.text().startswith("skipped")
    assert "at least 200 training steps" in make_dialog(qtbot).epochs_note.text()  # no dataset known: the rule


def test_adaptation_is_greyed_out_for_data_without_3d_points(qtbot, settings):
    dialog = make_dialog(qtbot, settings, n_train=20, data_modalities=("rgb",))
    assert not dialog.adapt.isEnabled() and not dialog.adapt.isChecked()
    assert "no 3D points" in dialog.adapt_note.text() and not dialog.adapt_note.isHidden()
    assert dialog.config().adapt is False and ok_button(dialog).isEnabled()
    dialog.accept()
    assert settings.fit_choices()["adapt"] is True  # the choice is kept for data that has 3D points
    again = make_dialog(qtbot, settings, n_train=20, data_modalities=("rgb", "xyz"))
    assert again.adapt.isEnabled() and again.adapt.isChecked() and again.config().adapt


def test_the_fit_action_tells_the_dialog_about_the_training_data(qtbot, tmp_path, monkeypatch):
    from core.demo import generate_demo_dataset
    from lsfa_gui import tasks
    from lsfa_gui.main_window import MainWindow

    root = generate_demo_dataset(tmp_path / "demo", seed=1, categories=["cookie"], size=64, n_train=3, n_validation=1,
                                 n_test_good=1, n_test_per_defect=1, defect_types=["dent"])
    assert tasks.train_summary(root, "cookie") == (3, ("rgb", "xyz"))
    assert tasks.train_summary(tmp_path / "missing", "cookie") == (0, ())
    window = MainWindow(settings=QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(window)
    window.state.dataset_root, window.state.category = str(root), "cookie"
    seen = {}

    def look(dialog):
        seen.update(n=dialog.n_train, mods=dialog.data_modalities, note=dialog.epochs_note.text())
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(FitDialog, "exec", look)
    window.actions_by_name["fit"].trigger()
    assert seen["n"] == 3 and seen["mods"] == ("rgb", "xyz")
    assert seen["note"].startswith("200 epochs will run: 3 training images")  # 1 micro-batch per epoch
    window.close()


def test_point_units_are_offered_for_3d_data_and_remembered(qtbot, settings):
    dialog = make_dialog(qtbot, settings, data_modalities=("rgb", "xyz"))
    assert [dialog.point_units.itemData(i) for i in range(dialog.point_units.count())] == ["m", "cm", "mm"]
    assert dialog.point_units.isEnabled() and dialog.units() == "m"  # default metres
    dialog.modalities.setCurrentText("rgb")  # no 3D points read: greyed out, no unit passed
    assert not dialog.point_units.isEnabled() and dialog.units() is None
    dialog.modalities.setCurrentText("auto")
    dialog.point_units.setCurrentIndex(dialog.point_units.findData("mm"))
    dialog.accept()
    assert dialog.result_units == "mm" and settings.fit_choices()["xyz_units"] == "mm"
    again = make_dialog(qtbot, settings, data_modalities=("rgb", "xyz"))
    assert again.point_units.currentData() == "mm" and again.units() == "mm"
    assert again.config() == dialog.result_config  # the unit is no FitConfig field
    rgb_only = make_dialog(qtbot, settings, data_modalities=("rgb",))
    assert not rgb_only.point_units.isEnabled() and rgb_only.units() is None
    settings.q.setValue("fit/choices", '{"xyz_units": "inch"}')  # unusable -> metres
    assert make_dialog(qtbot, settings).units() == "m"


def test_fit_action_passes_the_point_units_to_the_fit(qtbot, tmp_path, monkeypatch):
    """Fit… with Point units = millimetres reaches core.pipeline.fit(xyz_units="mm")."""
    import core.model_io
    import core.pipeline
    from core.errors import UserError
    from lsfa_gui.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat), enable_3d=False)
    qtbot.addWidget(window)
    window.state.dataset_root, window.state.category = str(tmp_path / "data"), "puck"

    def accept_with_mm(dialog):
        dialog.point_units.setCurrentIndex(dialog.point_units.findData("mm"))
        dialog.accept()
        return QDialog.DialogCode.Accepted

    captured = {}

    def fake_fit(root, category, config, progress=None, xyz_units=None, **_roi):
        captured.update(root=root, xyz_units=xyz_units)
        raise UserError("stop after the fit call")

    monkeypatch.setattr(FitDialog, "exec", accept_with_mm)
    monkeypatch.setattr(core.pipeline, "fit", fake_fit)
    monkeypatch.setattr(core.model_io, "save_model", lambda *a: pytest.fail("nothing is fitted"))
    with qtbot.waitSignal(window.jobs.failed, timeout=10000):
        window.actions_by_name["fit"].trigger()
    assert captured == {"root": str(tmp_path / "data"), "xyz_units": "mm"}
    assert window.settings.fit_choices()["xyz_units"] == "mm"
    window.close()


def test_resolution_note_says_which_models_auto_fits_on_this_data(qtbot):
    two_d = make_dialog(qtbot, data_modalities=("rgb",))
    assert two_d.preset.currentText() == "auto"
    assert two_d.resolution_note.text() == "224 px + 320 px models: this data has no point clouds"
    two_d.preset.setCurrentText("fast")
    assert two_d.resolution_note.text() == "one 224 px model"
    three_d = make_dialog(qtbot, data_modalities=("rgb", "xyz"))
    assert three_d.resolution_note.text() == "one 224 px model"
    three_d.preset.setCurrentText("accurate")
    assert three_d.resolution_note.text() == "224 px + 320 px models, about 3× the time of one"
    unknown = make_dialog(qtbot)
    assert unknown.resolution_note.text() == "one 224 px model; data without point clouds: 224 px + 320 px models"
