"""The inspection window: wires the state, the panels, the background jobs and the menus."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QSplitter,
    QStyle,
    QTextEdit,
    QToolBar,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from core.naming import safe_name
from lsfa_gui import export, tasks
from lsfa_gui.colormaps import lut
from lsfa_gui.settings import Settings
from lsfa_gui.state import COLORMAPS, InspectionState, ModelInfo, SampleEntry, Thresholds
from lsfa_gui.widgets.cloud_view import CloudView
from lsfa_gui.widgets.data_banner import DataBanner
from lsfa_gui.widgets.histogram_panel import HistogramPanel
from lsfa_gui.widgets.image_view import ImageView
from lsfa_gui.widgets.log_panel import LogPanel
from lsfa_gui.widgets.metrics_panel import MetricsPanel, compute_metrics, metrics_input
from lsfa_gui.widgets.sample_browser import SampleBrowser
from lsfa_gui.widgets.status_bar import JobStatusBar
from lsfa_gui.widgets.threshold_panel import ThresholdPanel
from lsfa_gui.widgets.watch_panel import WatchPanel
from lsfa_gui.worker import JobRunner

APP_TITLE = "LSFA Inspector"
WATCH_KEEP = 300  # parts a watch keeps in the browser with their maps (older ones: scores only)
WATCH_TRIM = 50  # dropped at a time once WATCH_KEEP + WATCH_TRIM are listed
STYLE = """
QMainWindow::separator { width: 4px; height: 4px; background: #d0d0d0; }
QDockWidget::title { background: #37474f; color: white; padding: 4px 6px; font-weight: bold; }
QLabel#imageHeader { font-size: 13px; padding: 2px 4px; }
QLabel#readout { color: #333; padding: 1px 4px; }
QLabel#browserSummary { color: #555; }
QLabel#thresholdInfo { color: #555; }
QToolBar { spacing: 4px; }
QTableView { gridline-color: #e0e0e0; }
"""


def entries_from_refs(refs: list[Any]) -> list[SampleEntry]:
    return [SampleEntry(name=r.name, split=r.split, label=r.label, source=r.source(), ref=r) for r in refs]


class MainWindow(QMainWindow):
    """Sample browser, RGB and 3D views, thresholds, histogram, metrics, log, status bar."""

    scoring_finished = Signal()  # a fit/score/demo job ended successfully and results are in
    metrics_updated = Signal()

    def __init__(self, settings: QSettings | None = None, enable_3d: bool | None = None):
        super().__init__()
        self.setWindowTitle(APP_TITLE)
        self.settings = Settings(settings)
        self.state = InspectionState()
        self.model = None  # core.model.Model
        self.model_path: str | None = None
        self.jobs = JobRunner(self)  # fit / score / open: one at a time, new supersedes old
        self.aux = JobRunner(self)  # save / export: independent of the main job
        self.metrics_runner = JobRunner(self)  # threshold-free metrics after scoring
        self._closing = False
        self._queued: list = []  # actions to start after the current job succeeds

        d = self.state.display
        d.colormap = self.settings.colormap(d.colormap)
        if d.colormap not in COLORMAPS:
            d.colormap = COLORMAPS[0]
        d.opacity = min(1.0, max(0.0, self.settings.opacity(d.opacity)))

        # ---------------------------------------------------------------- panels
        self.image_view = ImageView(self.state)
        self.cloud_view = CloudView(self.state, enable_3d=enable_3d)
        self.browser = SampleBrowser(self.state)
        self.threshold_panel = ThresholdPanel(self.state)
        self.histogram = HistogramPanel(self.state)
        self.metrics = MetricsPanel(self.state)
        self.log_panel = LogPanel()
        self.watch_panel = WatchPanel(self.state)
        self._watch_paused = threading.Event()
        self._watch_rid: int | None = None
        self._watch_model = None  # the open model with its own live thresholds, while watching
        self.status = JobStatusBar()
        self.setStatusBar(self.status)

        views = QSplitter(Qt.Orientation.Horizontal)
        views.setObjectName("viewsSplitter")
        views.addWidget(self.image_view)
        views.addWidget(self.cloud_view)
        views.setSizes([500, 500])
        views.setChildrenCollapsible(False)
        self.views_splitter = views
        self.data_banner = DataBanner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.data_banner)
        column.addWidget(views, 1)
        self.setCentralWidget(central)

        self.docks: dict[str, QDockWidget] = {}
        left, bottom = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
        self._add_dock("browser", "Samples", self.browser, left)
        self._add_dock("thresholds", "Thresholds", self.threshold_panel, left)
        self._add_dock("histogram", "Score histogram", self.histogram, bottom)
        self._add_dock("metrics", "Metrics", self.metrics, bottom)
        self._add_dock("log", "Log", self.log_panel, bottom)
        self._add_dock("watch", "Live inspection", self.watch_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.docks["watch"].hide()
        self.splitDockWidget(self.docks["browser"], self.docks["thresholds"], Qt.Orientation.Vertical)
        self.splitDockWidget(self.docks["histogram"], self.docks["metrics"], Qt.Orientation.Horizontal)
        self.splitDockWidget(self.docks["metrics"], self.docks["log"], Qt.Orientation.Horizontal)
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setStyleSheet(STYLE)

        self._build_actions()

        # ---------------------------------------------------------------- wiring
        self.threshold_panel.save_requested.connect(self.save_thresholds)
        self.threshold_panel.message.connect(lambda text: self.log(text))
        self.status.cancel_button.clicked.connect(self.cancel_job)
        self.state.model_changed.connect(self._on_model_changed)
        self.state.model_changed.connect(self.data_banner.clear)
        self.data_banner.fit_requested.connect(lambda: self.fit_current_dataset())
        self.state.display_changed.connect(self._on_display_changed)
        self.state.thresholds_changed.connect(self._sync_watch_thresholds)
        self.watch_panel.stop_requested.connect(self.stop_watch)
        self.watch_panel.pause_toggled.connect(lambda on: self._watch_paused.set() if on else self._watch_paused.clear())
        self.jobs.finished.connect(self._on_job_finished)

        for runner in (self.jobs,):
            runner.started.connect(lambda _rid, title: self.status.job_started(title))
            runner.progressed.connect(lambda _rid, ev: self.status.job_progress(ev))
            runner.partial.connect(self._on_partial)
            runner.succeeded.connect(self._on_job_succeeded)
            runner.failed.connect(self._on_job_failed)
            runner.cancelled.connect(self._on_job_cancelled)
        self.aux.succeeded.connect(self._on_aux_succeeded)
        self.metrics_runner.succeeded.connect(self._on_metrics)
        self.metrics_runner.failed.connect(lambda _rid, msg, details: self.log(f"Metrics: {msg}", "error", details))
        self.aux.failed.connect(lambda _rid, msg, details: self.log(msg, "error", details))
        self._aux_kind: dict[int, str] = {}

        geometry, win_state = self.settings.window_state()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 980)
        self._layout_restored = win_state is not None and self.restoreState(win_state)
        self._first_show = True
        self._on_model_changed()
        self.log("Ready. Open a dataset, a model or samples from the File menu, or start with --demo.")

    # ------------------------------------------------------------------ construction helpers
    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._first_show:
            self._first_show = False
            if not self._layout_restored:  # sizes only stick once the window has its real size
                QTimer.singleShot(0, self._default_dock_sizes)
            QTimer.singleShot(0, self.cloud_view.warm_up)

    def _default_dock_sizes(self):
        self.resizeDocks([self.docks["browser"]], [350], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["browser"], self.docks["thresholds"]], [560, 240], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["histogram"]], [270], Qt.Orientation.Vertical)
        self.resizeDocks(
            [self.docks["histogram"], self.docks["metrics"], self.docks["log"]], [380, 300, 250], Qt.Orientation.Horizontal
        )
        QTimer.singleShot(0, lambda: self.views_splitter.setSizes([1, 1]))  # equal halves

    def _add_dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

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
        a["auto_thresholds"] = self._action("&Auto thresholds", self._auto_thresholds, None, "Best F1 on labelled data, else a quantile of good scores")

        menu = self.menuBar()
        m = menu.addMenu("&File")
        for key in ("open_dataset", "open_model", "open_samples", "demo", None, "fit", "score", "watch", "cancel", None,
                    "export_csv", "export_json", "export_png", "export_pngs", "export_annotated", "export_report", None, "save_thresholds", "save_model_as", None, "quit"):
            m.addSeparator() if key is None else m.addAction(a[key])
        v = menu.addMenu("&View")
        for key in ("next", "previous", None, "reset_camera", "stretch"):
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

    # ------------------------------------------------------------------ logging
    def log(self, text: str, level: str = "info", details: str = "") -> None:
        self.log_panel.log(text, level, details)
        if level in ("error", "warning"):
            self.status.showMessage(text, 8000)
            self.docks["log"].show()
            self.docks["log"].raise_()

    # ------------------------------------------------------------------ jobs
    def _start_job(self, title: str, fn) -> int:
        self.metrics.set_metrics(None)
        return self.jobs.start(title, fn)

    def queue_after_job(self, action) -> None:
        """Run ``action()`` now if no job runs, else after the current one succeeds."""
        if self.jobs.busy:
            self._queued.append(action)
        else:
            action()

    def _run_queued(self):
        if self._queued and not self.jobs.busy:
            self._queued.pop(0)()

    def cancel_job(self):
        if self.jobs.busy:
            self.jobs.cancel()

    def _on_escape(self):
        focus = QApplication.focusWidget()
        if isinstance(focus, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)):
            focus.clearFocus()
            return
        self.cancel_job()

    def start_demo(self, counts: dict | None = None, config=None):
        """Generate the demo data (once), load or fit its model, score its test split."""
        self._start_job("Demo", tasks.demo_job(counts=counts, config=config))

    def open_dataset(self, root: str, category: str | None = None, fit_if_needed: bool = False, config=None):
        """List and score a dataset; ``fit_if_needed`` fits a model first when none is open
        (with ``config``, a FitConfig from the Fit settings dialog, or a cached/default model)."""
        fit = fit_if_needed and self.model is None
        self._start_job("Open dataset", tasks.open_dataset_job(root, category, self.model, fit, config if fit else None))

    def open_model(self, path: str):
        self._start_job("Load model", tasks.load_model_job(path))

    def open_samples(self, paths: list[str]):
        self._start_job("Open samples", tasks.open_samples_job(paths))

    def open_path(self, path: str):
        """``main.py PATH``: a model file, a dataset folder or a single sample file."""
        p = Path(path)
        if p.is_file() and p.suffix.lower() == tasks.MODEL_SUFFIX:
            self.open_model(str(p))
        elif p.is_dir():
            self.open_dataset(str(p))
        else:
            self.open_samples([str(p)])

    def score_all(self):
        if self.model is None:
            self.log("No model: open a model file or fit one first.", "warning")
            return
        reqs = [tasks.SampleRequest(i, e.ref) for i, e in enumerate(self.state.entries) if e.ref is not None]
        if not reqs:
            self.log("Nothing to score: open a dataset or samples first.", "warning")
            return
        self._start_job("Scoring", tasks.score_job(self.model, reqs))

    def fit_current_dataset(self, config=None):
        """Fit on the open dataset with ``config`` (a FitConfig; None: ask with the Fit settings dialog)."""
        if not self.state.dataset_root or not self.state.category:
            self.log("Open a dataset folder first (it needs a train split of good samples).", "warning")
            return
        if config is None:
            from lsfa_gui.widgets.fit_dialog import FitDialog

            dialog = FitDialog(self.settings, parent=self)
            dialog.exec()
            if dialog.result_config is None:  # cancelled
                return
            config = dialog.result_config
        path = tasks.fitted_model_path(self.state.dataset_root, self.state.category)
        reqs = [tasks.SampleRequest(i, e.ref) for i, e in enumerate(self.state.entries) if e.ref is not None]
        # the current model and its results stay until the new model is ready (a cancelled or
        # failed fit leaves them as they were)
        self._start_job("Fitting", tasks.fit_job(self.state.dataset_root, self.state.category, path, config, score_refs=reqs))

    # ------------------------------------------------------------------ live inspection
    @property
    def watching(self) -> bool:
        return self._watch_rid is not None and self.jobs.current_id == self._watch_rid

    def start_watch(self, folder: str, csv_path: str | None = "", recursive: bool = False,
                    settle_s: float | None = None, poll_s: float | None = None) -> bool:
        """Watch ``folder`` with the open model (core.watch in the background job runner); each
        new part becomes an entry, is selected and shown. ``csv_path``: the CSV log ("" =
        ``lsfa-watch.csv`` in the folder, None = none). False if no model is open."""
        if self.model is None:
            self.log("Open or fit a model first: watching a folder scores each new part with it.", "warning")
            return False
        if csv_path == "":
            csv_path = str(Path(folder) / "lsfa-watch.csv")
        # the job scores with its own copy of the thresholds (kept equal to the live ones);
        # the open model's own thresholds are left as they are
        self._watch_model = copy.copy(self.model)
        self._watch_model.thresholds = copy.copy(self.model.thresholds)
        self._sync_watch_thresholds()
        self._watch_paused.clear()
        self.state.set_entries([])
        self.watch_panel.set_watching(True, folder, csv_path)
        self.docks["watch"].show()
        self.docks["watch"].raise_()
        self.log(f"Watching {folder}" + (f"; CSV log {csv_path}" if csv_path else ""))
        self._watch_rid = self._start_job("Watching", tasks.watch_job(
            self._watch_model, folder, csv_path, recursive=recursive, settle_s=settle_s, poll_s=poll_s,
            paused=self._watch_paused.is_set))
        return True

    def stop_watch(self) -> None:
        if self.watching:
            self.jobs.cancel()

    def watch_folder_dialog(self):
        folder = QFileDialog.getExistingDirectory(self, "Watch folder (new samples are scored as they arrive)",
                                                  self._dialog_dir("watch"))
        if folder:
            self.settings.set_last_dir("watch", folder)
            self.start_watch(folder)

    def _sync_watch_thresholds(self):
        """The watch job scores with the model's thresholds: keep them equal to the live ones,
        so the CSV log records the verdicts the window shows."""
        thr = getattr(self._watch_model, "thresholds", None)
        if thr is None:
            return
        t = self.state.thresholds
        if t.image is not None:
            thr.image = t.image
        if t.pixel is not None:
            thr.pixel = t.pixel
        thr.uncertain_until = t.uncertain_until
        thr.min_defect_area = t.min_defect_area

    def _on_job_finished(self, rid: int):
        if rid == self._watch_rid:
            self._watch_rid = None
            self.watch_panel.set_watching(False)

    def _on_watch_scored(self, record):
        row = record.row
        entries = self.state.entries
        if len(entries) >= WATCH_KEEP + WATCH_TRIM:  # a long run: keep the newest parts (maps, images)
            drop = len(entries) - WATCH_KEEP + 1
            self.watch_panel.archive(drop)
            self.state.set_entries(entries[drop:])
        entry = SampleEntry(name=row["name"], source=row["path"], ref=record.ref)
        (index,) = self.state.add_entries([entry])
        if record.result is not None:
            self.state.set_result(index, record.result)
        else:
            self.watch_panel.mark_error(index, row["error"])
            self.log(f"{row['name']}: {row['error']}", "warning")
        self.state.set_current(index)

    # ------------------------------------------------------------------ job messages
    def _on_partial(self, _rid: int, msg: Any):
        if isinstance(msg, tasks.WatchScored):
            self._on_watch_scored(msg.record)
        elif isinstance(msg, tasks.SampleScored):
            self.state.set_result(msg.index, msg.result)
            if self.state.current < 0:
                self.state.set_current(msg.index)
        elif isinstance(msg, tasks.DatasetOpened):
            self._show_listing(msg.listing)
        elif isinstance(msg, tasks.ModelReady):
            if msg.fitted:
                self.state.clear_results()  # the old model's scores; the new ones follow
            self._set_model(msg.model, msg.path)
            self.log(("Fitted" if msg.fitted else "Loaded") + f" model {msg.path}", "success")
        elif isinstance(msg, tasks.SampleFailed) and msg.quiet:
            pass  # told once for the batch (the data banner)
        elif isinstance(msg, tasks.SampleFailed):
            name = self.state.entries[msg.index].name if 0 <= msg.index < len(self.state.entries) else "?"
            self.log(f"{name}: {msg.message}", "warning")
        elif isinstance(msg, tasks.Note):
            self.log(msg.text, msg.level)
        elif isinstance(msg, tasks.DataMismatch):
            self.data_banner.show_findings(msg.messages)
            for text in msg.messages:
                self.log(f"Model/data check: {text}", "warning")

    def _show_listing(self, listing: tasks.DatasetListing):
        self.state.dataset_root = listing.root
        self.state.category = listing.category
        self.state.set_entries(entries_from_refs(listing.refs))
        others = [c for c in listing.categories if c != listing.category]
        more = f" (other categories: {', '.join(others)})" if others else ""
        self.log(f"Opened {listing.format} dataset {listing.root}, category {listing.category!r}: {len(listing.refs)} samples{more}")
        self.setWindowTitle(f"{APP_TITLE} — {Path(listing.root).name} / {listing.category}")

    def _set_model(self, model, path: str | None):
        self.model = model
        self.model_path = path
        thr = getattr(model, "thresholds", None)
        seeded = Thresholds(getattr(thr, "image", None), getattr(thr, "pixel", None),
                            min_defect_area=getattr(thr, "min_defect_area", 0))
        self.state.set_min_defect_area(seeded.min_defect_area)
        rng = getattr(model, "display_range", None)
        name = Path(path).name if path else "unsaved model"
        check = (getattr(model, "info", None) or {}).get("self_check") or {}
        self.state.set_model(ModelInfo(path=path, name=name, seeded=seeded, colour_range=tuple(rng) if rng else None,
                                       estimate=check.get("estimate"), model_id=getattr(model, "model_id", "") or ""))

    def _on_job_succeeded(self, _rid: int, result: Any):
        self._handle_result(result)
        QTimer.singleShot(0, self._run_queued)

    def _handle_result(self, result: Any):
        if isinstance(result, tasks.ModelReady):
            self._set_model(result.model, result.path)
            self.log(f"Loaded model {result.path}", "success")
            self.status.job_ended("Model loaded")
            if any(e.ref is not None for e in self.state.entries):
                self.state.clear_results()
                QTimer.singleShot(0, self.score_all)
            return
        if isinstance(result, list):  # sample refs from "Open samples"
            indices = self.state.add_entries(entries_from_refs(result))
            self.log(f"Opened {len(result)} sample(s)")
            self.status.job_ended(f"Opened {len(result)} sample(s)")
            if self.model is not None:
                reqs = [tasks.SampleRequest(i, self.state.entries[i].ref) for i in indices]
                QTimer.singleShot(0, lambda: self._start_job("Scoring", tasks.score_job(self.model, reqs)))
            else:
                self.log("No model yet: open a model file (or fit one) to score these samples.", "warning")
            if self.state.current < 0 and indices:
                self.state.set_current(indices[0])
            return
        if isinstance(result, tasks.Pipeline):
            self.state.fit_colour_range_to_results()
            text = f"Scored {result.scored} sample(s)" + (f", {result.failed} failed" if result.failed else "")
            if result.model is None and result.listing is not None:
                text = f"Opened {len(result.listing.refs)} samples (no model yet: open one or Fit)"
            self.status.job_ended(text)
            self.log(text, "success" if not result.failed else "warning")
            if result.scored:
                self._start_metrics()
                self.scoring_finished.emit()
            return
        self.status.job_ended("Done")

    def _on_job_failed(self, _rid: int, message: str, details: str):
        self._queued.clear()
        self.status.job_ended("Failed")
        self.log(message, "error", details)

    def _on_job_cancelled(self, _rid: int):
        self._queued.clear()
        self.status.job_ended("Cancelled")
        self.log("Cancelled.", "warning")

    # ------------------------------------------------------------------ metrics / aux
    def _start_metrics(self):
        data = metrics_input(self.state)
        self.metrics_runner.start("Metrics", lambda progress, emit: compute_metrics(data, progress))

    def _on_metrics(self, _rid: int, result: Any):
        n = len(self.state.labelled_scores()[0])
        self.metrics.set_metrics(result, f"Over {n} labelled scored samples.")
        self.metrics_updated.emit()

    def _on_aux_succeeded(self, rid: int, result: Any):
        kind = self._aux_kind.pop(rid, "")
        if kind == "save_thresholds":
            self.state.model.seeded = Thresholds(self.state.thresholds.image, self.state.thresholds.pixel,
                                                 min_defect_area=self.state.thresholds.min_defect_area)
            self.log(f"Thresholds saved to {self.model_path} (model id {result})", "success")
            self.status.showMessage("Thresholds saved", 5000)
        elif kind == "save_model":
            self.log(f"Model saved to {self.model_path} (model id {result})", "success")
        elif kind == "export":
            self.log(f"Exported {len(result)} overlay PNG(s)", "success")
        elif kind == "report":
            self.log(f"Wrote the report {result}", "success")

    def save_thresholds(self):
        if self.model is None or not self.model_path:
            self.log("No model file to save thresholds into.", "warning")
            return
        t = self.state.thresholds
        if t.image is None or t.pixel is None:
            self.log("Both thresholds must be set before saving.", "warning")
            return
        rid = self.aux.start("Save thresholds", tasks.save_thresholds_job(self.model, self.model_path, t.image, t.pixel,
                                                                          t.min_defect_area))
        self._aux_kind[rid] = "save_thresholds"

    def save_model_as(self, path: str):
        if self.model is None:
            self.log("No model to save.", "warning")
            return
        self.model_path = path
        t = self.state.thresholds
        fn = tasks.save_thresholds_job(self.model, path, t.image, t.pixel) if t.image is not None and t.pixel is not None \
            else (lambda progress, emit: tasks.save_model_job(self.model, path))
        rid = self.aux.start("Save model", fn)
        self._aux_kind[rid] = "save_model"
        self.state.model.path = path
        self.state.model.name = Path(path).name
        self._on_model_changed()

    # ------------------------------------------------------------------ dialogs
    def _dialog_dir(self, kind: str) -> str:
        return self.settings.last_dir(kind) or str(Path.home())

    def open_dataset_dialog(self):
        folder = QFileDialog.getExistingDirectory(self, "Open dataset folder", self._dialog_dir("dataset"))
        if not folder:
            return
        self.settings.set_last_dir("dataset", folder)
        category = None
        try:
            from core.data.dataset import open_dataset

            cats = open_dataset(folder).categories
            if len(cats) > 1:
                category, ok = QInputDialog.getItem(self, "Category", "Category to inspect:", cats, 0, False)
                if not ok:
                    return
        except Exception as exc:  # noqa: BLE001 - shown to the user; the job reports it again
            self.log(str(exc), "error")
            return
        fit, config = False, None
        if self.model is None:
            fit = QMessageBox.question(
                self, "No model", "No model is open. Fit one on this dataset's train split now (runs in the background)?"
            ) == QMessageBox.StandardButton.Yes
            if fit:
                from lsfa_gui.widgets.fit_dialog import FitDialog

                dialog = FitDialog(self.settings, parent=self)
                dialog.exec()
                if dialog.result_config is None:  # cancelled: open without fitting
                    fit = False
                config = dialog.result_config
        self.open_dataset(folder, category, fit_if_needed=fit, config=config)

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

    def _export_snapshot(self):
        """(state copy, colour table) for a background export: later GUI changes do not reach it."""
        import copy

        state = copy.copy(self.state)  # shallow: entries/results are only read
        state.display = copy.copy(self.state.display)
        state.thresholds = copy.copy(self.state.thresholds)
        return state, lut(self.state.display.colormap)

    def export_all_pngs(self, folder: str, annotated: bool = False):
        state, table = self._export_snapshot()
        rid = self.aux.start("Export overlays", lambda progress, emit: export.export_all_overlays(
            state, folder, table, progress, annotated))
        self._aux_kind[rid] = "export"

    def export_report_dialog(self):
        default = str(Path(self._dialog_dir("export")) / "report.html")
        path, _ = QFileDialog.getSaveFileName(self, "Export report", default, "HTML (*.html)")
        if path:
            self.settings.set_last_dir("export", str(Path(path).parent))
            self.export_report(path)

    def export_report(self, path: str) -> int:
        """Write the HTML report in the background (aux job); returns its job id."""
        state, table = self._export_snapshot()
        rid = self.aux.start("Export report", lambda progress, emit: export.export_report(state, path, table, progress))
        self._aux_kind[rid] = "report"
        return rid

    # ------------------------------------------------------------------ misc
    def _auto_thresholds(self):
        self.threshold_panel.auto_image()
        self.threshold_panel.auto_pixel()

    def _on_model_changed(self):
        info = self.state.model
        self.status.set_model(f"Model: {info.name}" if info.path else "No model")
        has_model = bool(info.path)
        self.actions_by_name["save_thresholds"].setEnabled(has_model)
        self.actions_by_name["save_model_as"].setEnabled(has_model)

    def _on_display_changed(self):
        d = self.state.display
        act = self.colormap_actions.get(d.colormap)
        if act is not None and not act.isChecked():
            act.setChecked(True)
        stretch = self.actions_by_name["stretch"]
        if stretch.isChecked() != d.per_sample_range:
            with signals_blocked(stretch):
                stretch.setChecked(d.per_sample_range)
        self.settings.save_display(d.colormap, d.opacity)

    def _about(self):
        QMessageBox.about(
            self, APP_TITLE,
            "<b>LSFA Inspector</b><br>Multimodal (RGB + 3D) anomaly detection with LSFA feature adaptation.<br><br>"
            "Thresholds are in raw score units: a sample is NG when its image score ≥ the image threshold; "
            "pixels/points ≥ the pixel threshold form the defect region.",
        )

    def closeEvent(self, event):  # noqa: N802 - Qt override
        if not self._closing:
            self._closing = True
            self.settings.save_window_state(self.saveGeometry(), self.saveState())
            self.settings.sync()
            self.jobs.shutdown(10000)
            self.aux.shutdown(10000)
            self.metrics_runner.shutdown(10000)
            self.cloud_view.close_plotter()
        super().closeEvent(event)
