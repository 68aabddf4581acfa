"""The window's region of interest: load one from a PNG, draw one in the image view, clear or
save it; each change goes onto the open model (``Model.set_roi``, as ``lsfa score --roi`` does)
and the listed samples are scored again, so scores, verdicts and outlines follow. Saving the
model (Save model as…, Save thresholds to model file) stores the ROI in the model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from core.errors import UserError
from lsfa_gui.widgets.roi_editor import RoiEditor

DRAWN = "the region drawn in the image view"
PNG_FILTER = "Masks (*.png *.bmp);;All files (*)"


class RoiControl:
    """MainWindow's part for the model's region of interest. Needs the window's ``state``,
    ``image_view``, ``model``, ``log``, ``settings``, ``_dialog_dir``, ``queue_after_job`` and ``score_all``."""

    def _init_roi(self) -> None:
        self.roi_editor = RoiEditor(self.image_view.view, self.image_view.base_item, self.state, self)

    # ------------------------------------------------------------------ dialogs
    def load_roi_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Load region of interest (non-zero pixels are inspected)",
                                              self._dialog_dir("roi"), PNG_FILTER)
        if path:
            self.settings.set_last_dir("roi", str(Path(path).parent))
            self.load_roi(path)

    def save_roi_dialog(self):
        if getattr(self.model, "roi", None) is None:
            self.log("The model has no region of interest to save.", "warning")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save region of interest as PNG", self._dialog_dir("roi"), PNG_FILTER)
        if path:
            self.settings.set_last_dir("roi", str(Path(path).parent))
            self.save_roi(path)

    # ------------------------------------------------------------------ actions
    def load_roi(self, path: str) -> None:
        """Read a ROI PNG (original image pixels; core.roi.read_roi) and apply it."""
        from core.roi import read_roi

        try:
            roi = read_roi(path)
        except UserError as exc:
            self.log(str(exc), "error")
            return
        self.set_roi(roi, str(path))

    def start_roi_drawing(self) -> None:
        """Put an editable polygon on the image; *Apply drawn region* makes it the ROI."""
        if self.model is None:
            self.log("Open or fit a model first: the region of interest belongs to the model.", "warning")
            return
        if not self.roi_editor.start():
            self.log("Select a scored sample first: the region is drawn on its image.", "warning")
            return
        self.log("Drag the yellow polygon's corners (click an edge to add one), then Region of interest ▸ "
                 "Apply drawn region.")

    def apply_drawn_roi(self) -> None:
        """The drawn polygon, in original image pixels, becomes the model's ROI."""
        from core.roi import original_shape

        entry = self.state.current_entry
        if not self.roi_editor.drawing or entry is None or entry.ref is None:
            self.log("Draw a region first (Region of interest ▸ Draw region).", "warning")
            return
        try:
            shape = original_shape(entry.ref)
            roi = self.roi_editor.finish(shape)
        except UserError as exc:
            self.log(str(exc), "error")
            return
        self.set_roi(roi, DRAWN)

    def clear_roi(self) -> None:
        """Inspect the whole image again."""
        self.roi_editor.cancel()
        if getattr(self.model, "roi", None) is not None:
            self.set_roi(None, "")

    def save_roi(self, path: str) -> None:
        from core.roi import write_roi_png

        try:
            write_roi_png(path, self.model.roi)
        except UserError as exc:
            self.log(str(exc), "error")
            return
        self.log(f"Saved the region of interest to {path}", "success")

    def set_roi(self, roi: np.ndarray | None, source: str) -> None:
        """Make ``roi`` (H×W original pixels, or None) the open model's ROI once no job runs, then
        score the listed samples again. A ROI whose size is not the current sample's is refused."""
        from core.roi import inspected_share, original_shape

        model = self.model
        if model is None:
            self.log("Open or fit a model first: the region of interest belongs to the model.", "warning")
            return
        entry = self.state.current_entry or next((e for e in self.state.entries if e.ref is not None), None)
        if roi is not None and entry is not None and entry.ref is not None:
            try:
                h, w = original_shape(entry.ref)
            except UserError:
                h, w = roi.shape
            if roi.shape != (h, w):
                self.log(f"{source}: the region of interest is {roi.shape[1]}×{roi.shape[0]} px but the images are "
                         f"{w}×{h} px; a ROI must be the size of the dataset's images", "error")
                return

        def apply():
            try:
                model.set_roi(roi, source)
            except UserError as exc:
                self.log(str(exc), "error")
                return
            if roi is None:
                self.log("Region of interest cleared: the whole image is inspected.", "success")
            else:
                self.log(f"Region of interest from {source}: {100 * inspected_share(model.roi):.1f} % of the image "
                         "inspected. Save the model to store it in the model file.", "success")
            if model is self.model:
                self.score_all()

        self.queue_after_job(apply)
