"""The window's file dialogs (open a dataset, model or samples, save the model, watch a
folder, export results and overlays); each hands the chosen path to the window's action."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox

from core.naming import safe_name
from lsfa_gui import export, tasks
from lsfa_gui.colormaps import lut


class FileDialogs:
    """MainWindow's part that asks for files and folders (remembering the last folder of each
    kind in the settings). Needs the window's ``settings``, ``state``, ``model``, ``log`` and
    its job and watch actions."""

    def _dialog_dir(self, kind: str) -> str:
        """Where a dialog of ``kind`` starts: the folder last used for it, else the open
        dataset's folder, else the home folder."""
        for folder in (self.settings.last_dir(kind), self.state.dataset_root):
            if folder and Path(folder).is_dir():
                return str(folder)
        return str(Path.home())

    # ------------------------------------------------------------------ recent files
    def _build_recent_menus(self, file_menu: QMenu) -> None:
        """File ▸ Recent models and Recent folders (newest first; missing entries are pruned)."""
        self.recent_menus = {}
        for kind, title in (("models", "Recent &models"), ("folders", "Recent &folders")):
            menu = file_menu.addMenu(title)
            menu.aboutToShow.connect(lambda k=kind: self._fill_recent_menu(k))
            self.recent_menus[kind] = menu
            self._fill_recent_menu(kind, report=False)

    def _prune_recent(self, kind: str, report: bool = True) -> list[str]:
        """The recent paths of ``kind`` that still exist; the others leave the list (logged)."""
        paths = self.settings.recent(kind)
        kept = [p for p in paths if Path(p).exists()]
        if kept != paths:
            self.settings.set_recent(kind, kept)
            if report:
                for gone in (p for p in paths if p not in kept):
                    self.log(f"{gone} no longer exists; removed from the recent {kind}.", "warning")
        return kept

    def _fill_recent_menu(self, kind: str, report: bool = True) -> None:
        menu = self.recent_menus[kind]
        menu.clear()
        paths = self._prune_recent(kind, report)
        for path in paths:
            act = menu.addAction(path)
            act.triggered.connect(lambda _c=False, k=kind, p=path: self.open_recent(k, p))
        menu.setEnabled(bool(paths))

    def open_recent(self, kind: str, path: str) -> None:
        """Open a model file (``kind`` "models") or a dataset folder ("folders") from the recent list."""
        if not Path(path).exists():
            self._prune_recent(kind)
            self._fill_recent_menu(kind, report=False)
            return
        if kind == "models":
            self.open_model(path)
        else:
            self.open_dataset_asking(path)

    def open_dataset_dialog(self):
        folder = QFileDialog.getExistingDirectory(self, "Open dataset folder", self._dialog_dir("dataset"))
        if folder:
            self.settings.set_last_dir("dataset", folder)
            self.open_dataset_asking(folder)

    def open_dataset_asking(self, folder: str):
        """Open the dataset ``folder``, asking for its category (if it has several) and whether
        to fit a model (if none is open)."""
        category = None
        try:
            from core.data.dataset import open_dataset

            cats = open_dataset(folder).categories
            if len(cats) > 1:
                category, ok = QInputDialog.getItem(self, "Category", "Category to inspect:", cats, 0, False)
                if not ok:
                    return
            category = category or (cats[0] if cats else None)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the job reports it again
            self.log(str(exc), "error")
            return
        fit, config, xyz_units = False, None, None
        if self.model is None:
            fit = QMessageBox.question(
                self, "No model", "No model is open. Fit one on this dataset's train split now (runs in the background)?"
            ) == QMessageBox.StandardButton.Yes
            if fit:
                from lsfa_gui.widgets.fit_dialog import FitDialog

                n_train, modalities = tasks.train_summary(folder, category) if category else (0, ())
                dialog = FitDialog(self.settings, parent=self, n_train=n_train or None, data_modalities=modalities or None)
                dialog.exec()
                if dialog.result_config is None:  # cancelled: open without fitting
                    fit = False
                config, xyz_units = dialog.result_config, dialog.result_units
        self.open_dataset(folder, category, fit_if_needed=fit, config=config, xyz_units=xyz_units)

    def open_model_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open model file", self._dialog_dir("model"), "LSFA models (*.lsfa);;All files (*)")
        if path:
            self.settings.set_last_dir("model", str(Path(path).parent))
            self.open_model(path)

    def open_samples_dialog(self):
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open samples", self._dialog_dir("samples"),
            "Samples (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.npy *.pcd);;All files (*)",
        )
        if paths:
            self.settings.set_last_dir("samples", str(Path(paths[0]).parent))
            self.open_samples(paths)

    def save_model_as_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save model as", self._dialog_dir("model"), "LSFA models (*.lsfa)")
        if path:
            if not path.endswith(tasks.MODEL_SUFFIX):
                path += tasks.MODEL_SUFFIX
            self.settings.set_last_dir("model", str(Path(path).parent))
            self.save_model_as(path)

    def watch_folder_dialog(self):
        folder = QFileDialog.getExistingDirectory(self, "Watch folder (new samples are scored as they arrive)",
                                                  self._dialog_dir("watch"))
        if folder:
            self.settings.set_last_dir("watch", folder)
            self.start_watch(folder)

    def export_results_dialog(self, fmt: str):
        path, _ = QFileDialog.getSaveFileName(self, f"Export results ({fmt.upper()})", str(Path(self._dialog_dir("export")) / f"results.{fmt}"), f"{fmt.upper()} (*.{fmt})")
        if path:
            self.settings.set_last_dir("export", str(Path(path).parent))
            self.export_results(path)

    def export_results(self, path: str) -> Path | None:
        try:
            out = export.export_json(self.state, path) if path.lower().endswith(".json") else export.export_csv(self.state, path)
        except OSError as exc:
            self.log(f"Export failed: {exc}", "error")
            return None
        self.log(f"Exported {len(self.state.entries)} rows to {out}", "success")
        return out

    def export_current_png_dialog(self):
        e = self.state.current_entry
        if e is None or e.result is None:
            self.log("Select a scored sample first.", "warning")
            return
        default = Path(self._dialog_dir("export")) / f"{safe_name(e.name)}_overlay.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export overlay PNG", str(default), "PNG (*.png)")
        if path:
            self.settings.set_last_dir("export", str(Path(path).parent))
            self.export_current_png(path)

    def export_current_png(self, path: str) -> Path | None:
        try:
            out = export.export_overlay_png(self.state, self.state.current, path, lut(self.state.display.colormap))
        except (OSError, ValueError) as exc:
            self.log(f"Export failed: {exc}", "error")
            return None
        self.log(f"Saved overlay {out}", "success")
        return out

    def export_all_pngs_dialog(self, annotated: bool = False):
        folder = QFileDialog.getExistingDirectory(self, "Folder for overlay PNGs", self._dialog_dir("export"))
        if folder:
            self.settings.set_last_dir("export", folder)
            self.export_all_pngs(folder, annotated)

    def export_report_dialog(self):
        default = str(Path(self._dialog_dir("export")) / "report.html")
        path, _ = QFileDialog.getSaveFileName(self, "Export report", default, "HTML (*.html)")
        if path:
            self.settings.set_last_dir("export", str(Path(path).parent))
            self.export_report(path)
