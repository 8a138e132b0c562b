"""The Lab's comparison views: one plot with a curve per variant, and a strip of result thumbnails.

Both are keyed by the queue entry's key and coloured with the entry's colour, so a curve, a table row and a
thumbnail of the same variant are recognisably the same thing. Curves are drawn the cheap way (a pen wider than
1 px is tens of times slower without OpenGL): cosmetic width-1 pens, auto-downsampling, clip to view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QScrollArea, QToolButton, QWidget

from ..core.history import thumbnail
from .canvas import rgba_pixmap

__all__ = ["ComparisonPlot", "ResultStrip"]

PLOT_BACKGROUND = (30, 30, 32)


def _pen(color) -> object:
    pen = pg.mkPen(color, width=1)
    pen.setCosmetic(True)
    return pen


class ComparisonPlot(pg.PlotWidget):
    """PSNR of the running average per variant when ground truth is known, else the data loss on a log axis.

    A star in the variant's colour marks the iteration its result image comes from (the rule's pick).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=PLOT_BACKGROUND)
        self.item: pg.PlotItem = self.getPlotItem()
        self.item.setMenuEnabled(False)
        self.item.showGrid(x=True, y=True, alpha=0.15)
        self.item.setLabel("bottom", "Iteration")
        self.item.getAxis("left").enableAutoSIPrefix(False)
        self.item.getAxis("left").setWidth(52)
        self.legend = self.item.addLegend(offset=(-8, -8), labelTextSize="8pt")
        self.curves: dict[int, pg.PlotDataItem] = {}
        self.markers: dict[int, pg.PlotDataItem] = {}
        self.psnr_mode = True
        self.set_psnr_mode(True)

    def set_psnr_mode(self, on: bool) -> None:
        """PSNR rises, so its legend sits low; the loss falls, so its legend sits high."""
        self.psnr_mode = on
        self.item.setLogMode(False, not on)
        self.item.setLabel("left", "PSNR of the average (dB)" if on else "Data loss (MSE to the photo)")
        self.legend.setOffset((-8, -8) if on else (-8, 8))

    def set_curve(self, key: int, name: str, color, x: np.ndarray, y: np.ndarray) -> None:
        c = self.curves.get(key)
        if c is None:
            c = self.item.plot([], [], pen=_pen(color), name=name)
            c.setDownsampling(auto=True, method="peak")
            c.setClipToView(True)
            self.curves[key] = c
        ok = np.isfinite(y) & ((y > 0) if not self.psnr_mode else True)
        c.setData(x[ok], y[ok])

    def set_marker(self, key: int, color, x: float | None, y: float | None) -> None:
        m = self.markers.get(key)
        if x is None or y is None or not np.isfinite(y):
            if m is not None:
                m.setData([], [])
            return
        if m is None:  # a PlotDataItem (not a bare scatter) so that it follows the log axis; unnamed: no legend row
            m = pg.PlotDataItem(
                [],
                [],
                pen=None,
                symbol="star",
                symbolSize=14,
                symbolPen=pg.mkPen(20, 20, 20),
                symbolBrush=pg.mkBrush(*color),
            )
            self.item.addItem(m)
            self.markers[key] = m
        m.setData([x], [y])

    def remove(self, key: int) -> None:
        for store in (self.curves, self.markers):
            item = store.pop(key, None)
            if item is not None:
                self.item.removeItem(item)

    def clear_all(self) -> None:
        for key in list(self.curves) + list(self.markers):
            self.remove(key)


class ResultStrip(QScrollArea):
    """One checkable thumbnail per variant with a result; clicking one selects that variant."""

    clicked = Signal(int)
    SIDE = 112

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        host = QWidget(self)
        self._row = QHBoxLayout(host)
        self._row.setContentsMargins(2, 2, 2, 2)
        self._row.addStretch(1)
        self.setWidget(host)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self.buttons: dict[int, QToolButton] = {}
        self._fit_height()

    def set_result(self, key: int, image: np.ndarray, text: str, color, tooltip: str = "") -> None:
        """Show (or replace) the thumbnail of ``key``; ``image`` is HxWxC uint8/uint16/float."""
        b = self.buttons.get(key)
        if b is None:
            b = QToolButton(self)
            b.setCheckable(True)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setIconSize(QSize(self.SIDE, self.SIDE))
            b.setProperty("key", key)
            b.clicked.connect(self._on_clicked)
            self._group.addButton(b)
            self._row.insertWidget(self._row.count() - 1, b)
            self.buttons[key] = b
        pm = rgba_pixmap(thumbnail(image, self.SIDE))  # small photos are scaled up with visible pixels, not blurred
        if max(pm.width(), pm.height()) < self.SIDE:
            pm = pm.scaled(
                self.SIDE, self.SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            )
        b.setIcon(QIcon(pm))
        b.setText(text)
        b.setToolTip(tooltip)
        r, g, bl = color
        b.setStyleSheet(
            f"QToolButton {{ border: 2px solid rgb({r},{g},{bl}); border-radius: 4px; padding: 2px; }}"
            "QToolButton:checked { background: rgba(255, 255, 255, 40); border-width: 4px; }"
        )
        self._fit_height()

    def _fit_height(self) -> None:
        """As tall as the tallest card (icon, up to three lines of text, the checked card's wider border) plus
        the horizontal scroll bar, which appears over the cards once they overflow: a fixed guess cut the
        cards' last line and border off."""
        lines = max([b.text().count("\n") + 1 for b in self.buttons.values()] + [3])
        text_h = lines * self.fontMetrics().lineSpacing()
        card = max([b.sizeHint().height() for b in self.buttons.values()] + [self.SIDE + text_h + 16])
        card += 4  # the checked card's border is 2 px wider on each side
        m = self._row.contentsMargins()
        bar = self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(card + m.top() + m.bottom() + bar)

    def set_checked(self, key: int | None) -> None:
        b = self.buttons.get(key) if key is not None else None
        checked = self._group.checkedButton()
        if b is not None:
            b.setChecked(True)
        elif checked is not None:
            self._group.setExclusive(False)
            checked.setChecked(False)
            self._group.setExclusive(True)

    def remove(self, key: int) -> None:
        b = self.buttons.pop(key, None)
        if b is not None:
            self._group.removeButton(b)
            self._row.removeWidget(b)
            b.deleteLater()

    def clear_all(self) -> None:
        for key in list(self.buttons):
            self.remove(key)

    def _on_clicked(self) -> None:
        self.clicked.emit(int(self.sender().property("key")))
