"""Fit settings dialog: modalities, point units, backbones (+ weight files), device, LSFA
adaptation, memory bank and fusion. Returns a :class:`core.config.FitConfig` and the unit of the
point clouds (``lsfa fit --xyz-units``); remembers the last choices in QSettings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from superqt.utils import signals_blocked

from core.adaptation.config import ADAPTOR_CHOICES, ADAPTOR_HELP, LOSS_HELP, LOSS_NAMES, AdaptConfig
from core.config import AUTO_ENSEMBLE, MAX_POSITION_WEIGHT, PRESETS, FitConfig, option_choices, option_help
from core.data.units import UNIT_NAMES
from core.errors import UserError
from lsfa_gui.settings import Settings

WEIGHTS_REQUIRED = frozenset({"dino_vitb8", "pointmae"})  # backbones that need a checkpoint file
ADAPTORS = ADAPTOR_CHOICES
FUSIONS = option_choices("fusion")
RGB_ORIENTATIONS = {1: "as captured", 2: "as captured and turned 180°", 4: "every 90° turn"}  # rgb_rotations
BANK_SHIFTS = {0: "as captured", 1: "+ shifted half a cell diagonally", 3: "+ shifted half a cell right, down, both"}
PATCH_DISTANCES = {"relative": "relative to the training patches' spread", "raw": "raw kNN distance"}
CUSTOM_PRESET = "custom"  # shown when the resolution matches no preset
# FitConfig fields this dialog edits (and remembers); everything else comes from the base config.
DIALOG_FIELDS = ("modalities", "rgb_backbone", "xyz_backbone", "rgb_weights", "xyz_weights", "device",
                 "adapt", "coreset_ratio", "rgb_rotations", "bank_shifts", "patch_distance", "fusion", "seed", "self_check", "threshold_training_parts", "uncertain_band", "object_crop", "rgb_object_crop", "position_weight", "colour_contrast", "image_size",
                 "grid",
                 "blur_sigma", "ensemble")
ADAPT_FIELDS = ("adaptor", "losses", "epochs")  # AdaptConfig overrides this dialog edits
POINT_UNITS_HELP = ("unit of the coordinates in the xyz files (lsfa fit --xyz-units); stored with the "
                    "model and used when it scores")
WEIGHT_FILTER = "Checkpoints (*.pth *.pt *.ckpt *.safetensors *.bin);;All files (*)"


def available_devices() -> list[str]:
    """"cpu", plus "cuda" when torch sees a GPU."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def available_backbones(modality: str) -> list[str]:
    from core.features.registry import available

    return available(modality)


def preset_of(config: FitConfig) -> str:
    """The name of the resolution preset ``config`` uses, else CUSTOM_PRESET."""
    for name, values in PRESETS.items():
        if all(getattr(config, k) == v for k, v in values.items()):
            return name
    return CUSTOM_PRESET


def uses(modalities: str, modality: str) -> bool:
    """Whether a fit with ``modalities`` may use the ``modality`` backbone ("auto" may use both)."""
    return modalities == "auto" or modality in modalities.split(",")


def merge_choices(base: FitConfig, choices: dict) -> FitConfig:
    """``base`` with remembered dialog ``choices`` applied; ``base`` itself when they are unusable."""
    try:
        picked = {k: choices[k] for k in DIALOG_FIELDS if k in choices}
        adaptation = {**base.adaptation, **{k: v for k, v in dict(choices.get("adaptation") or {}).items() if k in ADAPT_FIELDS}}
        AdaptConfig.from_dict(adaptation)
        return dataclasses.replace(base, **picked, adaptation=adaptation)
    except (UserError, TypeError, ValueError, AttributeError):
        return base


class WeightsPicker(QWidget):
    """A path line edit with a "…" button opening a file dialog."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("checkpoint file")
        self.button = QToolButton()
        self.button.setText("…")
        self.button.setToolTip(f"Choose the {title} file")
        self.button.clicked.connect(self.browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.button)

    def path(self) -> str:
        return self.edit.text().strip()

    def set_path(self, path: str | None) -> None:
        self.edit.setText(path or "")

    def browse(self) -> None:
        start = str(Path(self.path()).parent) if self.path() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, f"Choose the {self.title}", start, WEIGHT_FILTER)
        if path:
            self.set_path(path)


class FitDialog(QDialog):
    """Settings of a fit. ``exec()`` then ``result_config`` (a FitConfig) when accepted.

    ``base``: the config whose other fields (image size, grid, thresholds quantiles...) are kept;
    ``settings``: where the last choices are read from and, on OK, written to.
    """

    def __init__(self, settings: Settings | None = None, base: FitConfig | None = None, parent=None,
                 devices: list[str] | None = None, n_train: int | None = None,
                 data_modalities: tuple[str, ...] | None = None):
        super().__init__(parent)
        self.n_train = n_train  # training images of the dataset to fit (None: not known)
        self.data_modalities = data_modalities  # what its training samples have (None: not known)
        self._adapt_wanted = True  # the user's adaptation choice, kept while the data rules it out
        self.setWindowTitle("Fit settings")
        self.setMinimumWidth(420)
        self.settings = settings
        self.base = base if base is not None else FitConfig()
        self.result_config: FitConfig | None = None
        self.result_units: str | None = None  # "m", "cm" or "mm" on OK; None without 3D points

        self.modalities = QComboBox()
        self.modalities.addItems(list(option_choices("modalities")))
        self.modalities.setToolTip(option_help("modalities"))
        self.rgb_backbone = QComboBox()
        self.rgb_backbone.addItems(available_backbones("rgb"))
        self.rgb_backbone.setToolTip(option_help("rgb_backbone"))
        self.xyz_backbone = QComboBox()
        self.xyz_backbone.addItems(available_backbones("xyz"))
        self.xyz_backbone.setToolTip(option_help("xyz_backbone"))
        self.rgb_weights = WeightsPicker("RGB backbone weights")
        self.xyz_weights = WeightsPicker("3D backbone weights")
        self.point_units = QComboBox()
        for units, name in UNIT_NAMES.items():
            self.point_units.addItem(name, units)
        self.point_units.setToolTip(POINT_UNITS_HELP)
        self.device = QComboBox()
        self.device.addItems(devices if devices is not None else available_devices())

        self.adapt = QGroupBox("LSFA feature adaptation")
        self.adapt.setCheckable(True)
        self.adapt.setToolTip(option_help("adapt"))
        self.adaptor = QComboBox()
        self.adaptor.addItems(list(ADAPTORS))
        self.adaptor.setToolTip(ADAPTOR_HELP)
        self.losses = {name: QCheckBox(name) for name in LOSS_NAMES}
        for name, box in self.losses.items():
            box.setToolTip(LOSS_HELP[name])
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 1000)
        self.epochs_note = QLabel()  # the epochs the engine will really run (min_steps rule)
        self.epochs_note.setObjectName("epochsNote")
        self.epochs_note.setStyleSheet("color:#555;")
        self.epochs_note.setWordWrap(True)
        self.resolution_note = QLabel()  # the models the chosen resolution fits on this data
        self.resolution_note.setObjectName("resolutionNote")
        self.resolution_note.setStyleSheet("color:#555;")
        self.resolution_note.setWordWrap(True)
        self.adapt_note = QLabel()  # why adaptation cannot run on this data
        self.adapt_note.setStyleSheet("color:#555;")
        self.adapt_note.setWordWrap(True)

        self.coreset_ratio = QDoubleSpinBox()
        self.coreset_ratio.setDecimals(3)
        self.coreset_ratio.setRange(0.001, 1.0)
        self.coreset_ratio.setSingleStep(0.01)
        self.coreset_ratio.setToolTip(option_help("coreset_ratio"))
        self.rgb_rotations = QComboBox()
        for turns, text in RGB_ORIENTATIONS.items():
            self.rgb_rotations.addItem(text, turns)
        self.rgb_rotations.setToolTip(option_help("rgb_rotations"))
        self.bank_shifts = QComboBox()
        for shifts, text in BANK_SHIFTS.items():
            self.bank_shifts.addItem(text, shifts)
        self.bank_shifts.setToolTip(option_help("bank_shifts"))
        self.patch_distance = QComboBox()
        for name, text in PATCH_DISTANCES.items():
            self.patch_distance.addItem(text, name)
        self.patch_distance.setToolTip(option_help("patch_distance"))
        self.fusion = QComboBox()
        self.fusion.addItems(list(FUSIONS))
        self.fusion.setToolTip(option_help("fusion"))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip(option_help("seed"))
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setToolTip("resolution: auto (default) = one 224 px model (28×28 patches) for RGB + 3D "
                               "data; data without point clouds adds a 320 px model (40×40 patches), combined "
                               "with it (RGB-only fits are cheap, and the second model outlines and ranks defects "
                               "better there); fast = always one 224 px model; accurate = always both, about 3× "
                               "slower to fit and to score on RGB + 3D data")
        self.object_crop = QCheckBox("Crop each image to the part (needs point clouds)")
        self.object_crop.setToolTip(option_help("object_crop"))
        self.rgb_object_crop = QCheckBox("… and RGB-only images, by colour")
        self.rgb_object_crop.setToolTip(option_help("rgb_object_crop"))
        self.object_crop.toggled.connect(self.rgb_object_crop.setEnabled)
        self.colour_contrast = QCheckBox("Colour-contrast block in the RGB features")
        self.colour_contrast.setToolTip(option_help("colour_contrast"))
        self.position_weight = QDoubleSpinBox()
        self.position_weight.setRange(0.0, MAX_POSITION_WEIGHT)
        self.position_weight.setDecimals(2)
        self.position_weight.setSingleStep(0.25)
        self.position_weight.setSpecialValueText("off")
        self.position_weight.setToolTip(option_help("position_weight"))
        self.object_crop.toggled.connect(self.position_weight.setEnabled)  # the channel needs the crop
        self.self_check = QCheckBox("Self-check on synthetic defects")
        self.self_check.setToolTip(option_help("self_check"))
        self.threshold_training_parts = QCheckBox("Threshold also on training parts scored leave-one-out")
        self.threshold_training_parts.setToolTip(option_help("threshold_training_parts"))
        self.uncertain_band = QCheckBox("Uncertain band above the held-out good parts")
        self.uncertain_band.setToolTip(option_help("uncertain_band"))
        for box in (self.threshold_training_parts, self.uncertain_band):
            self.self_check.toggled.connect(box.setEnabled)

        self.error = QLabel()
        self.error.setObjectName("fitError")
        self.error.setStyleSheet("color:#c62828;")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Fit")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        data = QGroupBox("Data and backbones")
        form = QFormLayout(data)
        form.addRow("Modalities", self.modalities)
        form.addRow("Point units", self.point_units)
        form.addRow("RGB backbone", self.rgb_backbone)
        form.addRow("RGB weights", self.rgb_weights)
        form.addRow("", self.colour_contrast)
        form.addRow("3D backbone", self.xyz_backbone)
        form.addRow("3D weights", self.xyz_weights)
        form.addRow("Device", self.device)
        aform = QFormLayout(self.adapt)
        aform.addRow("Adaptor", self.adaptor)
        loss_row = QHBoxLayout()
        for box in self.losses.values():
            loss_row.addWidget(box)
        loss_row.addStretch(1)
        aform.addRow("Losses", loss_row)
        aform.addRow("Epochs", self.epochs)
        aform.addRow("", self.epochs_note)
        bank = QGroupBox("Memory bank and scoring")
        bform = QFormLayout(bank)
        bform.addRow("Resolution", self.preset)
        bform.addRow(self.resolution_note)  # the whole row's width: in the field column it wrapped and was cut
        bform.addRow("", self.object_crop)
        bform.addRow("", self.rgb_object_crop)
        bform.addRow("Position weight", self.position_weight)
        bform.addRow("Coreset ratio", self.coreset_ratio)
        bform.addRow("RGB bank orientations", self.rgb_rotations)
        bform.addRow("Bank image positions", self.bank_shifts)
        bform.addRow("Patch distance", self.patch_distance)
        bform.addRow("Fusion", self.fusion)
        bform.addRow("Seed", self.seed)
        bform.addRow("", self.self_check)
        bform.addRow("", self.threshold_training_parts)
        bform.addRow("", self.uncertain_band)
        layout = QVBoxLayout(self)
        for w in (data, self.adapt_note, self.adapt, bank, self.error, self.buttons):
            layout.addWidget(w)

        stored = settings.fit_choices() if settings is not None else {}
        self.set_config(merge_choices(self.base, stored) if stored else self.base)
        self.set_units(stored.get("xyz_units"))

        for combo in (self.modalities, self.rgb_backbone, self.xyz_backbone, self.preset):
            combo.currentTextChanged.connect(self._update)
        for edit in (self.rgb_weights.edit, self.xyz_weights.edit):
            edit.textChanged.connect(self._update)
        self.adapt.toggled.connect(self._on_adapt_toggled)
        self.epochs.valueChanged.connect(self._update)
        for box in self.losses.values():
            box.toggled.connect(self._update)
        self._update()

    # ------------------------------------------------------------------ config <-> widgets
    def set_config(self, config: FitConfig) -> None:
        """Show ``config`` (backbones/devices not offered here keep the current choice)."""
        adapt = {**AdaptConfig().to_dict(), **config.adaptation}
        self.modalities.setCurrentText(config.modalities)
        self.rgb_backbone.setCurrentText(config.rgb_backbone)
        self.xyz_backbone.setCurrentText(config.xyz_backbone)
        self.rgb_weights.set_path(config.rgb_weights)
        self.xyz_weights.set_path(config.xyz_weights)
        self.device.setCurrentText(config.device)
        self._adapt_wanted = bool(config.adapt)
        self.adapt.setChecked(bool(config.adapt))
        self.adaptor.setCurrentText(str(adapt["adaptor"]))
        for name, box in self.losses.items():
            box.setChecked(name in adapt["losses"])
        self.epochs.setValue(int(adapt["epochs"]))
        self.coreset_ratio.setValue(float(config.coreset_ratio))
        self.rgb_rotations.setCurrentIndex(max(0, self.rgb_rotations.findData(int(config.rgb_rotations))))
        self.bank_shifts.setCurrentIndex(max(0, self.bank_shifts.findData(int(config.bank_shifts))))
        self.patch_distance.setCurrentIndex(max(0, self.patch_distance.findData(config.patch_distance)))
        self.fusion.setCurrentText(config.fusion)
        self.seed.setValue(int(config.seed))
        self.self_check.setChecked(bool(config.self_check))
        self.threshold_training_parts.setChecked(bool(config.threshold_training_parts))
        self.uncertain_band.setChecked(bool(config.uncertain_band))
        for box in (self.threshold_training_parts, self.uncertain_band):
            box.setEnabled(bool(config.self_check))
        self.object_crop.setChecked(bool(config.object_crop))
        self.rgb_object_crop.setChecked(bool(config.rgb_object_crop))
        self.rgb_object_crop.setEnabled(bool(config.object_crop))
        self.position_weight.setValue(float(config.position_weight))
        self.position_weight.setEnabled(bool(config.object_crop))
        self.colour_contrast.setChecked(bool(config.colour_contrast))
        preset = preset_of(config)
        self._custom_resolution = {k: getattr(config, k) for k in PRESETS["fast"]}
        if preset == CUSTOM_PRESET and self.preset.findText(CUSTOM_PRESET) < 0:
            self.preset.addItem(CUSTOM_PRESET)
        self.preset.setCurrentText(preset)
        self._update()

    def set_units(self, units: str | None) -> None:
        """Show the point unit ``units`` ("m", "cm", "mm"; anything else: metres)."""
        self.point_units.setCurrentIndex(max(0, self.point_units.findData(units)))

    def units(self) -> str | None:
        """The unit of the point clouds to fit on; None when the fit reads no 3D points."""
        return self.point_units.currentData() if self.point_units.isEnabled() else None

    def reads_points(self) -> bool:
        """Whether the fit may read 3D points: the data has them (or is not known) and the
        modalities choice may use them."""
        data = self.data_modalities
        return (data is None or "xyz" in data) and uses(self.modalities.currentText(), "xyz")

    def choices(self) -> dict:
        """What the widgets show, adaptation included even when it is off (what gets remembered)."""
        return {
            "modalities": self.modalities.currentText(),
            "xyz_units": self.point_units.currentData(),
            "rgb_backbone": self.rgb_backbone.currentText(),
            "xyz_backbone": self.xyz_backbone.currentText(),
            "rgb_weights": self.rgb_weights.path() or None,
            "xyz_weights": self.xyz_weights.path() or None,
            "device": self.device.currentText(),
            "adapt": self._adapt_wanted,
            "coreset_ratio": round(self.coreset_ratio.value(), self.coreset_ratio.decimals()),
            "rgb_rotations": int(self.rgb_rotations.currentData()),
            "bank_shifts": int(self.bank_shifts.currentData()),
            "patch_distance": self.patch_distance.currentData(),
            "fusion": self.fusion.currentText(),
            "seed": self.seed.value(),
            "self_check": self.self_check.isChecked(),
            "threshold_training_parts": self.threshold_training_parts.isChecked(),
            "uncertain_band": self.uncertain_band.isChecked(),
            "object_crop": self.object_crop.isChecked(),
            "rgb_object_crop": self.rgb_object_crop.isChecked(),
            "position_weight": round(self.position_weight.value(), self.position_weight.decimals()),
            "colour_contrast": self.colour_contrast.isChecked(),
            **(PRESETS.get(self.preset.currentText()) or self._custom_resolution),
            "adaptation": {
                "adaptor": self.adaptor.currentText(),
                "losses": [n for n, box in self.losses.items() if box.isChecked()],
                "epochs": self.epochs.value(),
            },
        }

    def config(self) -> FitConfig:
        """The FitConfig the widgets describe (``base`` for the fields not shown). Weight files of
        backbones that take none are dropped; adaptation overrides only when adaptation is on."""
        c = self.choices()
        c["adapt"] = c["adapt"] and not self.adaptation_ruled_out()
        adaptation = dict(self.base.adaptation)
        if c["adapt"]:
            defaults = AdaptConfig().to_dict()
            for key, value in c["adaptation"].items():  # keep only real overrides of the defaults
                default = defaults.get(key)
                same = list(value) == list(default) if isinstance(value, (list, tuple)) else value == default
                if same:
                    adaptation.pop(key, None)
                else:
                    adaptation[key] = value
        fields = {k: c[k] for k in DIALOG_FIELDS}  # "adapt": False where the data rules it out
        for m in ("rgb", "xyz"):
            if c[f"{m}_backbone"] not in WEIGHTS_REQUIRED or not uses(c["modalities"], m):
                fields[f"{m}_weights"] = None
        return dataclasses.replace(self.base, **fields, adaptation=adaptation)

    def problem(self) -> str:
        """Why the settings cannot be used ("" when they can)."""
        c = self.choices()
        for m, label in (("rgb", "RGB"), ("xyz", "3D")):
            name, path = c[f"{m}_backbone"], c[f"{m}_weights"]
            if not uses(c["modalities"], m) or name not in WEIGHTS_REQUIRED:
                continue
            if not path:
                return f"The {label} backbone {name} needs a weights file: choose one with “…”."
            if not Path(path).expanduser().is_file():
                return f"{label} weights file not found: {path}"
        if c["adapt"] and not self.adaptation_ruled_out() and not c["adaptation"]["losses"]:
            return "LSFA adaptation needs at least one loss (or switch adaptation off)."
        try:
            self.config()
        except UserError as exc:
            return str(exc)
        return ""

    def adaptation_ruled_out(self) -> str:
        """Why LSFA adaptation cannot run with these data and modalities ("" when it can): it
        aligns RGB with 3D features, so it needs both."""
        data = self.data_modalities
        if data is not None and not {"rgb", "xyz"} <= set(data):
            missing = "3D points" if "xyz" not in data else "RGB images"
            return f"LSFA adaptation needs RGB and 3D data; this dataset has no {missing}, so it is off."
        return ""

    def epochs_text(self) -> str:
        """The epochs adaptation will run, from the engine's rule (AdaptConfig.epochs_for)."""
        config = self.config()
        if not config.adapt:
            return ""
        if config.modalities in ("rgb", "xyz") and config.skips_adaptation((config.modalities,)):
            return f"skipped: this fit uses {config.modalities} only (pick only lc, gc to force the intra-modal losses)"
        try:
            adapt = AdaptConfig.from_dict(config.adaptation)
        except UserError:
            return ""
        if self.n_train:
            runs = adapt.epochs_for(self.n_train)
            if runs != adapt.epochs:
                return (f"{runs} epochs will run: {self.n_train} training images, at least "
                        f"{adapt.min_steps} training steps")
            return f"{runs} epochs on {self.n_train} training images"
        if adapt.min_steps:
            return f"small training sets run more epochs (at least {adapt.min_steps} training steps)"
        return ""

    # ------------------------------------------------------------------ behaviour
    def _on_adapt_toggled(self, on: bool):
        if self.adapt.isEnabled():
            self._adapt_wanted = on
        self._update()

    def _update(self, *_):
        ruled_out = self.adaptation_ruled_out()
        self.adapt.setEnabled(not ruled_out)
        with signals_blocked(self.adapt):
            self.adapt.setChecked(self._adapt_wanted and not ruled_out)
        self.adapt_note.setText(ruled_out)
        self.adapt_note.setVisible(bool(ruled_out))
        self.epochs_note.setText(self.epochs_text())
        self.resolution_note.setText(self.resolution_text())
        mods = self.modalities.currentText()
        self.point_units.setEnabled(self.reads_points())
        for m, combo, picker in (("rgb", self.rgb_backbone, self.rgb_weights), ("xyz", self.xyz_backbone, self.xyz_weights)):
            combo.setEnabled(uses(mods, m))
            picker.setEnabled(uses(mods, m) and combo.currentText() in WEIGHTS_REQUIRED)
        text = self.problem()
        self.error.setText(text)
        self.error.setVisible(bool(text))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not text)

    def resolution_text(self) -> str:
        """The models the chosen resolution fits, with "auto" resolved for this dataset when its
        modalities are known."""
        resolution = PRESETS.get(self.preset.currentText()) or self._custom_resolution
        config = dataclasses.replace(self.base, **resolution)

        def models(point_clouds: bool) -> str:
            sizes = " + ".join(f"{c.image_size} px" for c in config.member_configs(point_clouds))
            return f"{sizes} models" if "+" in sizes else f"one {sizes} model"

        if config.ensemble != AUTO_ENSEMBLE:
            text = models(point_clouds=True)
            return text if text.startswith("one") else f"{text}, about 3× the time of one"
        if self.data_modalities is None:
            return f"{models(True)}; data without point clouds: {models(False)}"
        if "xyz" in self.data_modalities:
            return models(True)
        return f"{models(False)}: this data has no point clouds"

    def accept(self):
        if self.problem():
            self._update()
            return
        self.result_config = self.config()
        self.result_units = self.units()
        if self.settings is not None:
            self.settings.save_fit_choices(self.choices())
        super().accept()
