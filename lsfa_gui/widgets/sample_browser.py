"""Sample browser: a sortable, filterable table of samples with score and OK/NG verdict."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from lsfa_gui.state import NG, OK, UNCERTAIN, InspectionState
from lsfa_gui.widgets import result_refresh

# the region columns come last, so a narrow browser still shows the verdict
COLUMNS = ("Name", "Split", "GT", "Score", "Verdict", "Time", "Regions", "Largest")
COL_NAME, COL_SPLIT, COL_GT, COL_SCORE, COL_VERDICT, COL_TIME, COL_REGIONS, COL_LARGEST = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole
UNSCORED_SORT = -1e300

VERDICT_COLORS = {OK: (QColor(46, 125, 50), QColor(232, 245, 233)), NG: (QColor(183, 28, 28), QColor(255, 235, 238)),
                  UNCERTAIN: (QColor(230, 81, 0), QColor(255, 243, 224))}
VERDICT_FILTERS = ("All", "NG", "OK", "UNCERTAIN", "Unscored", "GT defective", "GT good")


class SampleTableModel(QAbstractTableModel):
    """Table model over ``state.entries``; verdicts follow the state's image threshold."""

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        state.samples_reset.connect(self._reset)
        state.sample_updated.connect(self._row_changed)
        state.thresholds_changed.connect(self._verdicts_changed)

    def rowCount(self, parent=QModelIndex()):  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self.state.entries)

    def columnCount(self, parent=QModelIndex()):  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {
                COL_SCORE: "Image anomaly score (raw units of the model)",
                COL_VERDICT: "OK / NG at the current image threshold",
                COL_TIME: "Scoring time of the sample",
                COL_REGIONS: "Number of defect regions (8-connected pixels at or above the pixel threshold)",
                COL_LARGEST: "Area of the largest defect region: mm² of part surface when the sample has a "
                             "point cloud, else pixels of the anomaly map",
                COL_GT: "Ground-truth label, if the dataset has one",
            }.get(section)
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry = self.state.entries[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            sort = role == SORT_ROLE
            if col == COL_NAME:
                return entry.name
            if col == COL_SPLIT:
                return entry.split
            if col == COL_GT:
                return entry.label or ("" if sort else "–")
            if col == COL_SCORE:
                score = entry.image_score
                if sort:
                    return UNSCORED_SORT if score is None else score
                return "" if score is None else f"{score:.3g}"
            if col == COL_VERDICT:
                return self.state.verdict(entry) or ""
            if col in (COL_REGIONS, COL_LARGEST) and entry.result is not None:
                return self._region_cell(entry, col, sort)
            if col in (COL_REGIONS, COL_LARGEST):
                return UNSCORED_SORT if sort else ""
            if col == COL_TIME:
                s = entry.seconds
                if sort:
                    return UNSCORED_SORT if s is None else s
                if s is None:
                    return ""
                return f"{s * 1000:.0f} ms" if s < 1.0 else f"{s:.1f} s"
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_SCORE, COL_REGIONS, COL_LARGEST, COL_TIME):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_VERDICT:
            return int(Qt.AlignmentFlag.AlignCenter)
        if col == COL_VERDICT and role in (Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole):
            verdict = self.state.verdict(entry)
            if verdict in VERDICT_COLORS:
                fg, bg = VERDICT_COLORS[verdict]
                return fg if role == Qt.ItemDataRole.ForegroundRole else bg
        if col == COL_GT and role == Qt.ItemDataRole.ForegroundRole and entry.is_defect:
            return QColor(183, 28, 28)
        if role == Qt.ItemDataRole.ToolTipRole:
            return entry.source or entry.name
        return None

    def _region_cell(self, entry, col: int, sort: bool):
        regions = self.state.regions(entry)
        if col == COL_REGIONS:
            return len(regions) if sort else str(len(regions))
        if not regions:
            return 0 if sort else "–"
        big = regions[0]
        if big.area_mm2 is not None:
            return big.area_mm2 if sort else f"{big.area_mm2:.3g} mm²"
        return big.area_px if sort else f"{big.area_px} px"

    def _reset(self):
        self.beginResetModel()
        self.endResetModel()

    def _row_changed(self, row: int):
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def _verdicts_changed(self):
        if self.state.entries:
            last = len(self.state.entries) - 1
            self.dataChanged.emit(self.index(0, COL_VERDICT), self.index(last, len(COLUMNS) - 1))


class SampleFilterProxy(QSortFilterProxyModel):
    """Text filter over name / split / GT / verdict plus a verdict/label category filter."""

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        self.category = "All"
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setDynamicSortFilter(True)

    def set_category(self, category: str):
        self.beginFilterChange()
        self.category = category
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row, source_parent):  # noqa: N802
        entry = self.state.entries[source_row]
        verdict = self.state.verdict(entry)
        cat = self.category
        if cat in (OK, NG, UNCERTAIN) and verdict != cat:
            return False
        if cat == "Unscored" and entry.result is not None:
            return False
        if cat == "GT defective" and entry.is_defect is not True:
            return False
        if cat == "GT good" and entry.is_defect is not False:
            return False
        text = self.filterRegularExpression().pattern()
        if not text:
            return True
        hay = " ".join([entry.name, entry.split, entry.label or "", verdict or ""]).lower()
        return all(word in hay for word in text.lower().split())


class SampleBrowser(QWidget):
    """Filter box + table; selecting a row sets ``state.current`` and vice versa."""

    sample_activated = Signal(int)  # source row (double-click / Enter)

    def __init__(self, state: InspectionState, parent=None):
        super().__init__(parent)
        self.state = state
        self.model = SampleTableModel(state, self)
        self.proxy = SampleFilterProxy(state, self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit(placeholderText="Filter: name, split, label, OK/NG…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_text)
        self.category_combo = QComboBox()
        self.category_combo.addItems(VERDICT_FILTERS)
        self.category_combo.setToolTip("Show only samples in this group")
        self.category_combo.currentTextChanged.connect(self.proxy.set_category)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        for col, width in ((COL_SPLIT, 44), (COL_GT, 54), (COL_SCORE, 56), (COL_VERDICT, 52), (COL_REGIONS, 52),
                           (COL_LARGEST, 70), (COL_TIME, 52)):
            header.resizeSection(col, width)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_changed)
        self.table.doubleClicked.connect(lambda idx: self.sample_activated.emit(self.proxy.mapToSource(idx).row()))

        self.summary = QLabel()
        self.summary.setObjectName("browserSummary")

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.category_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)

        state.current_changed.connect(self._on_state_current)
        for ev in (state.samples_reset, state.thresholds_changed):
            ev.connect(lambda *a: self._update_summary())
        self._update_summary_soon = result_refresh.on_results(self._update_summary, self)  # a burst of results: once
        state.sample_updated.connect(lambda _i: self._update_summary_soon())
        self._update_summary()

    # ------------------------------------------------------------------ navigation
    def visible_rows(self) -> list[int]:
        """Source rows in the order shown (after filtering and sorting)."""
        return [self.proxy.mapToSource(self.proxy.index(r, 0)).row() for r in range(self.proxy.rowCount())]

    def select_next(self, step: int = 1) -> None:
        """Move the selection ``step`` visible rows down (negative = up), clamped."""
        n = self.proxy.rowCount()
        if n == 0:
            return
        cur = self.proxy.mapFromSource(self.model.index(self.state.current, 0)).row() if self.state.current >= 0 else -1
        target = 0 if cur < 0 else min(max(cur + step, 0), n - 1)
        self.state.set_current(self.proxy.mapToSource(self.proxy.index(target, 0)).row())

    def select_previous(self) -> None:
        self.select_next(-1)

    # ------------------------------------------------------------------ sync
    def _on_filter_text(self, text: str):
        self.proxy.setFilterFixedString(text)

    def _on_row_changed(self, current, _previous):
        if current.isValid():  # the state ignores a row that is already current
            self.state.set_current(self.proxy.mapToSource(current).row())

    def _on_state_current(self, row: int):
        """Show the state's selection. Moving the table's current row here calls
        ``_on_row_changed`` with the same row, which the state ignores; the selection model's
        signals stay connected because the view repaints its highlight from them."""
        if row < 0:
            self.table.clearSelection()
            return
        idx = self.proxy.mapFromSource(self.model.index(row, 0))
        if idx.isValid():
            flags = self.table.selectionModel().SelectionFlag
            self.table.selectionModel().setCurrentIndex(idx, flags.ClearAndSelect | flags.Rows)
            self.table.scrollTo(idx)

    def _update_summary(self):
        entries = self.state.entries
        scored = [e for e in entries if e.result is not None]
        ng = sum(1 for e in scored if self.state.verdict(e) == NG)
        unsure = sum(1 for e in scored if self.state.verdict(e) == UNCERTAIN)
        text = f"{len(entries)} samples · {len(scored)} scored"
        if self.state.thresholds.image is not None and scored:
            text += f" · {ng} NG" + (f" · {unsure} UNCERTAIN" if unsure else "") + f" · {len(scored) - ng - unsure} OK"
        self.summary.setText(text)
