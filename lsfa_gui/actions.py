"""The window's actions: menus, toolbar, keyboard shortcuts (Esc cancels the running job)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QStyle,
    QTextEdit,
    QToolBar,
)

from lsfa_gui.state import COLORMAPS

TEXT_FIELDS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)
# widgets that use the arrow keys themselves: with one of them focused an arrow key stays theirs
ARROW_KEY_WIDGETS = TEXT_FIELDS + (QAbstractSlider, QComboBox)
SAMPLE_ARROWS = {Qt.Key.Key_Down: 1, Qt.Key.Key_Right: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_Left: -1}


class WindowActions:
    """MainWindow's part that builds ``actions_by_name``, the menus and the toolbar, each
    action calling one of the window's methods."""

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        self.addAction(act)
        return act

    def _build_actions(self):
        a = self.actions_by_name = {}
        a["open_dataset"] = self._action("Open &dataset folder…", self.open_dataset_dialog, QKeySequence.StandardKey.Open, "Open a dataset folder (MVTec 3D-AD, Eyecandies, plain folder)")
        a["open_model"] = self._action("Open &model file…", self.open_model_dialog, "Ctrl+M", "Open a .lsfa model file")
        a["open_samples"] = self._action("Open &samples…", self.open_samples_dialog, "Ctrl+Shift+O", "Open single sample files (RGB image, .tiff/.npy xyz, .pcd)")
        a["demo"] = self._action("Open &demo data", self.start_demo, None, "Generate (once) and score the built-in demo data")
        a["fit"] = self._action("&Fit model on dataset…", self.fit_current_dataset, "Ctrl+F", "Fit a model on the open dataset's train split (asks for the fit settings)")
        a["score"] = self._action("&Score all", self.score_all, "Ctrl+R", "Score every sample with the current model")
        a["watch"] = self._action("&Watch folder…", self.watch_folder_dialog, "Ctrl+W", "Live inspection: score each new sample dropped into a folder (CSV log beside them)")
        a["cancel"] = self._action("&Cancel", self.cancel_job, None, "Cancel the running job (Esc)")
        # Esc cancels the job, except while typing in a field: there it only leaves the field
        self._escape = QShortcut(QKeySequence("Esc"), self, self._on_escape)
        # the arrow keys move through the samples from anywhere in the window (N / P are the
        # Next / Previous actions), except in a field or slider, which keeps them
        self._arrow_shortcuts = [
            QShortcut(QKeySequence(key), self, self.browser.select_next if step > 0 else self.browser.select_previous)
            for key, step in SAMPLE_ARROWS.items()
        ]
        QApplication.instance().focusChanged.connect(self._on_focus_changed)
        a["export_csv"] = self._action("Export results as &CSV…", lambda: self.export_results_dialog("csv"), None)
        a["export_json"] = self._action("Export results as &JSON…", lambda: self.export_results_dialog("json"), None)
        a["export_png"] = self._action("Export overlay &PNG of this sample…", self.export_current_png_dialog, "Ctrl+E")
        a["export_pngs"] = self._action("Export overlay PNGs of &all samples…", self.export_all_pngs_dialog, None)
        a["export_annotated"] = self._action("Export a&nnotated PNGs of all samples…",
                                             lambda: self.export_all_pngs_dialog(annotated=True), None)
        a["export_report"] = self._action("Export &report (HTML)…", self.export_report_dialog, None)
        a["save_thresholds"] = self._action("Save &thresholds to model file", self.save_thresholds, "Ctrl+S")
        a["save_model_as"] = self._action("Save model &as…", self.save_model_as_dialog, "Ctrl+Shift+S")
        a["quit"] = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        a["next"] = self._action("&Next sample", self.browser.select_next, "N", "Next sample in the list (N)")
        a["previous"] = self._action("&Previous sample", self.browser.select_previous, "P", "Previous sample in the list (P)")
        a["reset_camera"] = self._action("&Reset 3D camera", self.cloud_view.reset_camera, "R")
        a["stretch"] = self._action("Per-sample colour &stretch", lambda: None, None)
        a["stretch"].setCheckable(True)
        a["stretch"].toggled.connect(lambda on: self.state.set_display(per_sample_range=on))
        a["from_threshold"] = self._action("Colour range from the pixel &threshold", lambda: None, None,
                                           "Colour only scores at or above the pixel threshold (the top of the range stays fixed)")
        a["from_threshold"].setCheckable(True)
        a["from_threshold"].setChecked(self.state.display.from_threshold)
        a["from_threshold"].toggled.connect(lambda on: self.state.set_display(from_threshold=on))
        a["roi_load"] = self._action("&Load region of interest (PNG)…", self.load_roi_dialog, None,
                                     "A mask the size of the dataset's images: non-zero pixels are inspected, zero pixels ignored")
        a["roi_draw"] = self._action("&Draw region…", self.start_roi_drawing, None,
                                     "Draw a polygon on the image: only inside it is inspected")
        a["roi_apply"] = self._action("&Apply drawn region", self.apply_drawn_roi, None,
                                      "Make the drawn polygon the model's region of interest and score again")
        a["roi_clear"] = self._action("&Clear region of interest", self.clear_roi, None, "Inspect the whole image again")
        a["roi_save"] = self._action("&Save region of interest as PNG…", self.save_roi_dialog, None)
        a["auto_thresholds"] = self._action("&Auto thresholds", self._auto_thresholds, None, "Best F1 on labelled data, else a quantile of good scores")

        menu = self.menuBar()
        m = menu.addMenu("&File")
        for key in ("open_dataset", "open_model", "open_samples", "demo"):
            m.addAction(a[key])
        self._build_recent_menus(m)
        for key in (None, "fit", "score", "watch", "cancel", None,
                    "export_csv", "export_json", "export_png", "export_pngs", "export_annotated", "export_report", None,
                    "save_thresholds", "save_model_as", None, "quit"):
            m.addSeparator() if key is None else m.addAction(a[key])
        v = menu.addMenu("&View")
        for key in ("next", "previous", None, "reset_camera", "stretch", "from_threshold"):
            v.addSeparator() if key is None else v.addAction(a[key])
        cmaps = v.addMenu("&Colormap")
        group = QActionGroup(self)
        self.colormap_actions = {}
        for name in COLORMAPS:
            act = QAction(name, self, checkable=True)
            act.setChecked(name == self.state.display.colormap)
            act.triggered.connect(lambda _c=False, n=name: self.state.set_display(colormap=n))
            group.addAction(act)
            cmaps.addAction(act)
            self.colormap_actions[name] = act
        v.addSeparator()
        for dock in self.docks.values():
            v.addAction(dock.toggleViewAction())
        r = menu.addMenu("&Region of interest")
        for key in ("roi_load", "roi_draw", "roi_apply", None, "roi_clear", "roi_save"):
            r.addSeparator() if key is None else r.addAction(a[key])
        t = menu.addMenu("&Thresholds")
        t.addAction(a["auto_thresholds"])
        t.addAction(a["save_thresholds"])
        h = menu.addMenu("&Help")
        h.addAction(self._action("&About", self._about))

        sp = QStyle.StandardPixmap
        for key, icon in (
            ("open_dataset", sp.SP_DirOpenIcon), ("open_model", sp.SP_FileDialogDetailedView),
            ("open_samples", sp.SP_FileIcon), ("fit", sp.SP_MediaPlay), ("score", sp.SP_BrowserReload),
            ("previous", sp.SP_ArrowBack), ("next", sp.SP_ArrowForward), ("export_csv", sp.SP_FileDialogListView),
            ("export_png", sp.SP_DesktopIcon), ("save_thresholds", sp.SP_DialogSaveButton), ("cancel", sp.SP_BrowserStop),
        ):
            a[key].setIcon(self.style().standardIcon(icon))
        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setMovable(False)
        for key in ("open_dataset", "open_model", "open_samples", None, "fit", "score", None, "previous", "next", None, "export_csv", "export_png", None, "save_thresholds"):
            tb.addSeparator() if key is None else tb.addAction(a[key])
        a["next"].setIconText("Next")
        a["previous"].setIconText("Prev")
        a["open_dataset"].setIconText("Open dataset")
        a["open_model"].setIconText("Open model")
        a["open_samples"].setIconText("Open samples")
        a["fit"].setIconText("Fit…")
        a["score"].setIconText("Score all")
        a["export_csv"].setIconText("Export CSV")
        a["export_png"].setIconText("Export PNG")
        a["save_thresholds"].setIconText("Save thresholds")
        self.addToolBar(tb)

    def _on_focus_changed(self, _old, new):
        """A field or slider keeps its arrow keys: the window's arrow shortcuts pause meanwhile."""
        for shortcut in self._arrow_shortcuts:
            shortcut.setEnabled(not isinstance(new, ARROW_KEY_WIDGETS))

    def _on_escape(self):
        focus = QApplication.focusWidget()
        if isinstance(focus, TEXT_FIELDS):
            focus.clearFocus()
            return
        self.cancel_job()
