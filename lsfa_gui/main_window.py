"""The inspection window: wires the state, the panels, the background jobs and the menus."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QMessageBox, QScrollArea, QSplitter, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

from lsfa_gui.actions import WindowActions
from lsfa_gui.dialogs import FileDialogs
from lsfa_gui.jobs import JobControl
from lsfa_gui.roi_control import RoiControl
from lsfa_gui.originals import OriginalLoader
from lsfa_gui.settings import Settings
from lsfa_gui.state import COLORMAPS, InspectionState, entry_has_xyz
from lsfa_gui.thresholding import apply_auto_thresholds
from lsfa_gui.watching import WatchControl
from lsfa_gui.widgets.cloud_view import CloudView
from lsfa_gui.widgets.data_banner import DataBanner
from lsfa_gui.widgets.histogram_panel import HistogramPanel
from lsfa_gui.widgets.image_view import ImageView
from lsfa_gui.widgets.log_panel import LogPanel
from lsfa_gui.widgets.metrics_panel import MetricsPanel
from lsfa_gui.widgets.sample_browser import SampleBrowser
from lsfa_gui.widgets.status_bar import JobStatusBar
from lsfa_gui.widgets.threshold_panel import ThresholdPanel
from lsfa_gui.widgets.watch_panel import WatchPanel

APP_TITLE = "LSFA Inspector"
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


class MainWindow(JobControl, WatchControl, RoiControl, FileDialogs, WindowActions, QMainWindow):
    """Sample browser, RGB and 3D views, thresholds, histogram, metrics, log, status bar.

    This module owns the layout and the wiring; the running of engine work is in
    ``lsfa_gui.jobs``, live inspection in ``lsfa_gui.watching``, the region of interest in
    ``lsfa_gui.roi_control``, the file dialogs in
    ``lsfa_gui.dialogs`` and the menus, toolbar and shortcuts in ``lsfa_gui.actions``.
    """

    scoring_finished = Signal()  # a fit/score/demo job ended successfully and results are in
    metrics_updated = Signal()

    def __init__(self, settings: QSettings | None = None, enable_3d: bool | None = None):
        super().__init__()
        self.setWindowTitle(APP_TITLE)
        self.settings = Settings(settings)
        self.state = InspectionState()
        self.originals = OriginalLoader(self.state, self)  # the selected sample at original resolution
        self._init_jobs()
        self._init_watch()
        self._closing = False

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
        self.status = JobStatusBar()
        self.setStatusBar(self.status)
        self._init_roi()

        views = QSplitter(Qt.Orientation.Horizontal)
        views.setObjectName("viewsSplitter")
        views.addWidget(self.image_view)
        views.addWidget(self.cloud_view)
        views.setSizes([500, 500])
        views.setChildrenCollapsible(False)
        self.views_splitter = views
        self.data_banner = DataBanner()  # the model/data check's findings, above the views
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
        self._add_dock("metrics", "Metrics", self.metrics, bottom, scroll=True)  # its notes grow with warnings
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
        self._connect_jobs()
        self._connect_watch()
        self.threshold_panel.message.connect(lambda text: self.log(text))
        self.state.model_changed.connect(self._on_model_changed)
        self.state.model_changed.connect(self.data_banner.clear)
        self.data_banner.fit_requested.connect(lambda: self.fit_current_dataset())
        self.state.display_changed.connect(self._on_display_changed)
        self.state.samples_reset.connect(self._update_3d_pane)
        self.state.model_changed.connect(self._update_3d_pane)
        self.state.sample_updated.connect(self._on_sample_updated_3d)

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

    def _add_dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea,
                  scroll: bool = False) -> QDockWidget:
        """A closable, movable dock holding ``widget``; with ``scroll``, inside a vertical scroll
        area, so that a short dock shows a scroll bar instead of cutting text off."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        if scroll:
            area_widget = QScrollArea()
            area_widget.setWidget(widget)
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QFrame.Shape.NoFrame)
            area_widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            widget = area_widget
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

    def set_title(self, subtitle: str = "") -> None:
        self.setWindowTitle(f"{APP_TITLE} — {subtitle}" if subtitle else APP_TITLE)

    # ------------------------------------------------------------------ logging
    def log(self, text: str, level: str = "info", details: str = "") -> None:
        self.log_panel.log(text, level, details)
        if level in ("error", "warning"):
            self.status.showMessage(text, 8000)
            self.docks["log"].show()
            self.docks["log"].raise_()

    # ------------------------------------------------------------------ misc
    def _auto_thresholds(self):
        for note in apply_auto_thresholds(self.state):
            self.log(note)

    def _on_model_changed(self):
        info = self.state.model
        members = getattr(info.model, "members", None)  # an ensemble (the accurate preset)
        kind = f" ({' + '.join(f'{m.config.image_size} px' for m in members)})" if members else ""
        self.status.set_model(f"Model: {info.name}{kind}" if info.path else "No model")
        has_model = bool(info.path)
        self.actions_by_name["save_thresholds"].setEnabled(has_model)
        self.actions_by_name["save_model_as"].setEnabled(has_model)

    def _update_3d_pane(self):
        """RGB-only data (no 3D points in the model or the samples): the 3D view folds away and
        the image view takes the centre; it comes back for data with 3D points."""
        self.cloud_view.setVisible(self.state.has_xyz() is not False)

    def _on_sample_updated_3d(self, index: int):
        if not self.cloud_view.isVisibleTo(self) and entry_has_xyz(self.state.entries[index]):
            self.cloud_view.show()

    def _on_display_changed(self):
        d = self.state.display
        act = self.colormap_actions.get(d.colormap)
        if act is not None and not act.isChecked():
            act.setChecked(True)
        stretch = self.actions_by_name["stretch"]
        if stretch.isChecked() != d.per_sample_range:
            with signals_blocked(stretch):
                stretch.setChecked(d.per_sample_range)
        from_threshold = self.actions_by_name["from_threshold"]
        if from_threshold.isChecked() != d.from_threshold:
            with signals_blocked(from_threshold):
                from_threshold.setChecked(d.from_threshold)
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
            self._shutdown_jobs(10000)
            self.originals.shutdown()
            self.cloud_view.close_plotter()
        super().closeEvent(event)
