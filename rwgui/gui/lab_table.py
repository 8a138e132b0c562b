"""The Lab's queue and results in one table: a row per variant, filled in as its run reports.

One table rather than a queue list plus a results table: the person reads "what will run" and "what it gave"
in the same row, with the variant's colour (as on the plot and thumbnails) on the left. The best row by PSNR
gets a star, bold text and a tinted background.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from ..core.vocabulary import LabStatus, StopReason
from .lab_model import Entry

__all__ = ["ResultsTable", "COLUMNS"]

COLUMNS = (
    ("Variant", "Prior · regulariser (λ) · stopping rule; the colour is its curve and thumbnail."),
    ("Status", "queued, running, completed, ended by its rule, stopped by you, or failed (hover for why)."),
    ("Iterations", "Steps run."),
    ("Pick", "Iteration of the result image: the stopping rule's pick (the last one for 'fixed')."),
    (
        "Result PSNR",
        "PSNR of the result image (the running average at the pick) against the ground truth, as Save result "
        "writes it: for inpainting with the known pixels kept.",
    ),
    ("Raw PSNR", "PSNR of the raw iterate at the pick (the same way), for comparison with the average."),
    ("ms / step", "Time per optimisation step (the regulariser's cost shows here)."),
)
BEST_BRUSH = QBrush(QColor(255, 196, 0, 70))
_STATUS = {LabStatus.QUEUED: "queued", LabStatus.STOPPED: "stopped by you", LabStatus.FAILED: "failed"}
_REASON = {StopReason.BUDGET: "completed", StopReason.RULE: "ended by its rule", StopReason.USER: "stopped by you"}


def _swatch(color) -> QIcon:
    pm = QPixmap(12, 12)
    pm.fill(QColor(*color))
    return QIcon(pm)


class ResultsTable(QTableWidget):
    """Rows keyed by entry key (stored in the Variant cell's UserRole); read-only, single row selection."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        for i, (name, tip) in enumerate(COLUMNS):
            item = QTableWidgetItem(name)
            item.setToolTip(tip)
            self.setHorizontalHeaderItem(i, item)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(22)
        head = self.horizontalHeader()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for i in range(1, len(COLUMNS)):
            head.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        self._rows: dict[int, int] = {}  # entry key -> row
        self._psnr = True

    def set_entries(self, entries: list[Entry], best: int | None, psnr: bool = True) -> None:
        """Rebuild every row (queue edits, a new photo); the selection follows its key."""
        keep = self.selected_key()
        self._psnr = psnr
        self.setColumnHidden(4, not psnr)
        self.setColumnHidden(5, not psnr)
        with QSignalBlocker(self):
            self.setRowCount(len(entries))
            self._rows = {e.key: i for i, e in enumerate(entries)}
            for e in entries:
                self.update_entry(e, best)
            self.clearSelection()
        if keep is not None and keep in self._rows:
            self.select_key(keep)
        else:
            self.itemSelectionChanged.emit()

    def update_entry(self, e: Entry, best: int | None, total: int | None = None) -> None:
        row = self._rows.get(e.key)
        if row is None:
            return
        s = e.summary
        if e.status == LabStatus.RUNNING:
            status = f"running {e.data.n} / {total}" if total else "running"
        elif e.status == LabStatus.DONE and s is not None:
            status = _REASON.get(s.reason, s.reason)
        else:
            status = _STATUS.get(e.status, e.status)
        p, raw, sps = e.psnr(), e.psnr("psnr"), e.seconds_per_step()
        is_best = e.key == best
        cells = (
            ("★ " if is_best else "") + e.label,
            status,
            str(s.iterations if s is not None else e.data.n) if (s is not None or e.data.n) else "",
            "" if e.image_iteration is None else str(e.image_iteration),
            "" if p is None else f"{p:.2f} dB",
            "" if raw is None else f"{raw:.2f} dB",
            "" if sps is None else f"{sps * 1000:.1f}",
        )
        font = QFont(self.font())
        font.setBold(is_best)
        items: list[QTableWidgetItem] = []
        for col, text in enumerate(cells):
            item = self.item(row, col)
            if item is None:
                item = QTableWidgetItem()
                self.setItem(row, col, item)
            item.setText(text)
            item.setFont(font)
            item.setBackground(BEST_BRUSH if is_best else QBrush())
            if col > 1:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            items.append(item)
        first = items[0]
        first.setData(Qt.ItemDataRole.UserRole, e.key)
        first.setIcon(_swatch(e.color))
        first.setToolTip(e.label)
        items[1].setToolTip(e.message or status)

    def selected_key(self) -> int | None:
        rows = self.selectionModel().selectedRows() if self.selectionModel() else []
        if not rows:
            return None
        item = self.item(rows[0].row(), 0)
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def select_key(self, key: int) -> None:
        row = self._rows.get(key)
        if row is not None:
            self.selectRow(row)

    def is_highlighted(self, key: int) -> bool:
        row = self._rows.get(key)
        item = self.item(row, 0) if row is not None else None  # every row's cells exist (update_entry)
        return item is not None and item.font().bold() and item.text().startswith("★")
