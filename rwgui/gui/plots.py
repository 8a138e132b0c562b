"""Live curves: loss (log y), PSNR raw and running average (with ground truth), and the stopping signal.

Drawn with pyqtgraph the cheap way, because redrawing grows with the history and a pen wider than 1 px is
tens of times slower without OpenGL: cosmetic width-1 pens, ``autoDownsample`` + ``clipToView``, y values kept
in preallocated numpy buffers grown by doubling, one ``setData`` per report batch.
A solid vertical line follows the iterate being viewed; a star and a dashed line mark the rule's pick.

The PSNR curves are the network output's, measured every step. Where Save result writes another image (an
inpainting run keeps the photo's known pixels), the legend says so ("network output",
:meth:`CurvesWidget.set_psnr_source`) and a white star gives the PSNR of what Save result writes at the result's
iteration (:meth:`CurvesWidget.set_written`), measured by the window at the rule's pick and at the end of the run.

The ranges are set here, not by pyqtgraph's auto range (which would recompute the bounds on every ``setData``):
x grows in round steps, y in generous ones, so the axes stay put on most redraws. Clearing the curves (a new
run, a new photo) starts the ranges afresh: the first data after it is fitted exactly, as auto range would,
instead of being drawn inside the previous run's ranges, where a new run's first points were a flat line.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ..core.curves import CurveData

__all__ = ["CurveData", "CurvesWidget"]

PICK_COLOR = (255, 196, 0)
CURSOR_COLOR = (120, 200, 255)
WRITTEN_COLOR = (255, 255, 255)
#: The PSNR curves' legend names: (key, name, name where Save result writes another image).
_PSNR_CURVES = (
    ("psnr", "PSNR (raw)", "Network output (raw)"),
    ("psnr_average", "PSNR (average)", "Network output (average)"),
)


def _nice_ceil(v: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= v."""
    k = 10.0 ** math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if m * k >= v:
            return m * k
    return 10 * k


class LogAxis(pg.AxisItem):
    """A left axis that always has numbers in log mode. pyqtgraph puts log ticks only on 1..9 x 10^k, so a
    curve that stays between two of them (a loss between 0.012 and 0.018, common once a fit settles) gets an
    axis without a single number; then this axis adds 1-2-5 steps in the values themselves."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._fine_step: float | None = None  # the value step of the ticks last made here, for their strings

    def tickValues(self, minVal, maxVal, size):
        ticks = super().tickValues(minVal, maxVal, size)
        self._fine_step = None
        if not self.logMode or sum(len(v) for _, v in ticks) >= 2 or not maxVal > minVal:
            return ticks
        lo, hi = 10.0**minVal, 10.0**maxVal
        step = _nice_ceil((hi - lo) / 4)  # three to five numbers on the axis
        first = math.ceil(lo / step) * step
        values = [first + i * step for i in range(int((hi - first) / step) + 1)]
        values = [v for v in values if lo <= v <= hi and v > 0]
        if len(values) < 2:
            return ticks
        self._fine_step = step
        return [(None, [math.log10(v) for v in values])]

    def tickStrings(self, values, scale, spacing):
        step = self._fine_step
        if not self.logMode or step is None:
            return super().tickStrings(values, scale, spacing)
        out = []
        for v in values:
            x = 10.0**v
            digits = max(1, math.floor(math.log10(abs(x))) - math.floor(math.log10(step)) + 1)
            out.append(f"{x:.{digits}g}")
        return out


def _pen(color, style=Qt.PenStyle.SolidLine):
    pen = pg.mkPen(color, width=1, style=style)
    pen.setCosmetic(True)
    return pen


class _Plot:
    """One plot: its curves, the viewed-iterate line, the pick line and star."""

    def __init__(
        self, layout: pg.GraphicsLayout, row: int, ylabel: str, log_y: bool, legend_at: tuple[int, int] = (-8, 8)
    ) -> None:
        self.item: pg.PlotItem = layout.addPlot(row=row, col=0, axisItems={"left": LogAxis("left")})
        self.item.setLabel("left", ylabel)
        self.item.getAxis("left").enableAutoSIPrefix(False)
        self.item.showGrid(x=True, y=True, alpha=0.15)
        self.item.setLogMode(False, log_y)
        self.item.setMenuEnabled(False)
        self.item.getAxis("left").setWidth(52)
        self.legend = self.item.addLegend(offset=legend_at, labelTextSize="8pt")
        self.log_y = log_y
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.cursor = pg.InfiniteLine(angle=90, pen=_pen(CURSOR_COLOR))
        self.cursor.hide()
        self.item.addItem(self.cursor, ignoreBounds=True)
        self.pick_line = pg.InfiniteLine(angle=90, pen=_pen(PICK_COLOR, Qt.PenStyle.DashLine))
        self.pick_line.hide()
        self.item.addItem(self.pick_line, ignoreBounds=True)
        self.star = pg.ScatterPlotItem(symbol="star", size=14, pen=pg.mkPen(40, 30, 0), brush=pg.mkBrush(*PICK_COLOR))
        self.item.addItem(self.star)
        self.item.disableAutoRange()
        self.follow = True  # manage the y range ourselves until the person zooms or pans
        self.fresh = True  # no data fitted since the last clear: the next fit ignores the range shown
        self.item.vb.sigRangeChangedManually.connect(self._on_manual)

    def _on_manual(self, *_) -> None:
        self.follow = False

    def reset_range(self) -> None:
        """The curves were cleared: follow the data again, fit the next data from scratch, and show an empty
        plot's neutral range meanwhile rather than the last run's."""
        self.follow = True
        self.fresh = True
        neutral = (-2.0, 0.0) if self.log_y else (0.0, 1.0)  # a loss of 0.01..1, a linear 0..1
        self.item.vb.setRange(xRange=(0.0, 10.0), yRange=neutral, padding=0)

    def fit_y(self, columns: list[np.ndarray]) -> None:
        """Grow the y range in generous steps (or refit when the data fills under a third of it), so the axes,
        whose ticks pyqtgraph regenerates in Python on every range change, stay put on most redraws."""
        if not self.follow:
            return
        vals = np.concatenate([c[np.isfinite(c)] for c in columns]) if columns else np.empty(0)
        if self.log_y:
            vals = np.log10(vals[vals > 0])
        if vals.size == 0:
            return
        lo, hi = float(vals.min()), float(vals.max())
        span = max(hi - lo, 1e-3 if self.log_y else 1e-2)
        if self.fresh:  # the first data since a clear: its own range, never the last run's
            self.fresh = False
            self.item.vb.setYRange(lo - 0.05 * span, hi + 0.05 * span, padding=0)
            return
        cur_lo, cur_hi = self.item.vb.viewRange()[1]
        if lo >= cur_lo and hi <= cur_hi and span > 0.35 * (cur_hi - cur_lo):
            return
        grow = 0.25 * span
        new_lo = lo - (grow if lo < cur_lo else 0.05 * span)
        new_hi = hi + (grow if hi > cur_hi else 0.05 * span)
        self.item.vb.setYRange(new_lo, new_hi, padding=0)

    def add_curve(self, key: str, label: str, color) -> None:
        c = self.item.plot([], [], pen=_pen(color), name=label)
        c.setDownsampling(auto=True, method="peak")
        c.setClipToView(True)
        self.curves[key] = c

    def set_log(self, on: bool) -> None:
        if on != self.log_y:
            self.log_y = on
            self.item.setLogMode(False, on)


class CurvesWidget(QWidget):
    """Loss, PSNR and stopping-signal plots with linked x axes; click a plot to jump to that iteration."""

    iteration_clicked = Signal(int)
    # At most one redraw a second while a run streams: a repaint of the three plots takes ~10 ms of Python
    # on the GUI thread, holding the GIL the run's own Python needs (measured: rwgui.bench.streaming).
    REDRAW_MS = 1000

    def __init__(self, parent: QWidget | None = None, data: CurveData | None = None) -> None:
        super().__init__(parent)
        self.data = data if data is not None else CurveData()  # the session's curves, when it holds them
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(self.REDRAW_MS)
        self._redraw_timer.timeout.connect(self.redraw)
        self._glw = pg.GraphicsLayoutWidget(self)
        self._glw.setBackground((30, 30, 32))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self._glw)
        self.loss = _Plot(self._glw.ci, 0, "Loss", True)
        self.loss.add_curve("loss", "Loss", (230, 230, 230))
        self.psnr = _Plot(self._glw.ci, 1, "PSNR (dB)", False, legend_at=(-8, -8))  # PSNR rises: legend low
        (raw, raw_name, _), (avg, avg_name, _) = _PSNR_CURVES
        self.psnr.add_curve(raw, raw_name, (110, 170, 255))
        self.psnr.add_curve(avg, avg_name, (120, 220, 120))
        # what Save result writes, where it is not the network's output (inpainting keeps the known pixels)
        self.written = pg.ScatterPlotItem(
            symbol="star", size=14, pen=pg.mkPen(PICK_COLOR), brush=pg.mkBrush(*WRITTEN_COLOR)
        )
        self.psnr.item.addItem(self.written)
        self._written: tuple[int, float] | None = None
        self._written_legend: pg.ScatterPlotItem | None = None  # the star's legend entry, while it has one
        self._psnr_source = ""
        self.signal = _Plot(self._glw.ci, 2, "Signal", True)
        self.signal.add_curve("signal", "Stopping signal", (240, 140, 80))
        for p in (self.psnr, self.signal):
            p.item.setXLink(self.loss.item)
        self.signal.item.setLabel("bottom", "Iteration")
        self._plots = (self.loss, self.psnr, self.signal)
        self.star_legend = pg.ScatterPlotItem(
            symbol="star", size=10, pen=pg.mkPen(40, 30, 0), brush=pg.mkBrush(*PICK_COLOR)
        )
        self.loss.legend.addItem(self.star_legend, "Rule's pick")
        self._pick: int | None = None
        self._cursor: int | None = None
        self._budget: int | None = None
        self._x_hi: float | None = None
        self._shown: tuple | None = None
        self._glw.scene().sigMouseClicked.connect(self._on_clicked)
        self.clear()

    # ----- data -------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget the curves (a new run)."""
        self.data.clear()
        self._redraw_timer.stop()
        for p in self._plots:
            for c in p.curves.values():
                c.setData([], [])
        self.signal.set_log(True)
        for p in self._plots:
            p.reset_range()  # the last run's x and y ranges go with its curves
        self._x_hi = None
        self.set_pick(None)
        self.set_cursor(None)
        self.set_written(None)
        self.set_psnr_source("")
        self._update_visibility()

    def set_psnr_source(self, whose: str) -> None:
        """Say that the curves are the network output's PSNR (``whose`` not empty) where Save result writes
        another image, and name the saved image's star; "" for none. The legend says it, so no one reads the
        curves as the saved image's."""
        if whose == self._psnr_source:
            return
        self._psnr_source = whose
        for key, name, output_name in _PSNR_CURVES:
            label = self.psnr.legend.getLabel(self.psnr.curves[key])
            if label is not None:
                label.setText(output_name if whose else name)
        if whose and self._written_legend is None:
            self._written_legend = self.written
            self.psnr.legend.addItem(self.written, "Saved result")
        elif not whose and self._written_legend is not None:
            self.psnr.legend.removeItem(self._written_legend)
            self._written_legend = None

    def set_written(self, point: tuple[int, float] | None) -> None:
        """The PSNR of what Save result writes, (iteration, dB), marked on the PSNR plot; None hides it."""
        self._written = point
        if point is None:
            self.written.setData([], [])
            return
        self.written.setData([point[0]], [point[1]])
        if self.data.n:
            self._fit_ranges()

    def written_psnr(self) -> tuple[int, float] | None:
        return self._written

    def set_budget(self, iterations: int | None) -> None:
        """The run's iteration budget: the x axis never extends past it."""
        self._budget = iterations

    def append(self, reports: list) -> None:
        """Add a batch of StepReports; the plots redraw at most every ``REDRAW_MS``."""
        self.data.extend(reports)
        self.data_grew()

    def data_grew(self) -> None:
        """Someone else (the session) appended to ``data``: redraw within ``REDRAW_MS``."""
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def redraw(self) -> None:
        """Push the buffers to the curves now (also called at the end of a run)."""
        self._redraw_timer.stop()
        d = self.data
        x = d.column("iteration")
        if d.has("signal") and self.signal.log_y and np.nanmin(d.column("signal")) <= 0:
            self.signal.set_log(False)  # SURE can go negative: log only while every value is positive
        for p in self._plots:
            for key, c in p.curves.items():
                y = d.column(key)
                if d.has(key):
                    c.setData(x, y, connect="finite")
        pick = d.column("pick_iteration")[-1] if d.n else np.nan
        if math.isfinite(pick):
            self.set_pick(int(pick))
        self._update_visibility()
        if d.n:
            self._fit_ranges()

    def _fit_ranges(self) -> None:
        """x: 0 .. a 1-2-5 round number past the last iteration (capped at the budget), so it changes rarely."""
        last = float(self.data.column("iteration")[-1])
        x_hi = _nice_ceil(max(10.0, last * 1.15))
        if self._budget:
            x_hi = min(x_hi, float(self._budget))
        x_hi = max(x_hi, last)
        if self.loss.follow and x_hi != self._x_hi:
            self._x_hi = x_hi
            self.loss.item.vb.setXRange(0, x_hi, padding=0.03)  # room for the pick's star at the last step
        for p in self._plots:
            if p.item.isVisible():
                columns = [self.data.column(k) for k in p.curves if self.data.has(k)]
                if p is self.psnr and self._written is not None:
                    columns.append(np.array([self._written[1]]))  # the saved image's star stays in view
                p.fit_y(columns)

    def _update_visibility(self) -> None:
        shown = (self.data.has("psnr"), self.data.has("signal"))
        if shown == self._shown:
            return  # changing labels relayouts the whole plot: only when something appears or goes
        self._shown = shown
        self.psnr.item.setVisible(shown[0])
        self.signal.item.setVisible(shown[1])
        last = self.signal if shown[1] else self.psnr if shown[0] else self.loss
        for p in self._plots:
            p.item.setLabel("bottom", "Iteration" if p is last else None)
            p.item.showAxis("bottom", p is last)

    # ----- markers ----------------------------------------------------------------------------------
    def set_pick(self, iteration: int | None) -> None:
        """Mark the rule's pick on every curve: a star on each curve and a dashed vertical line."""
        self._pick = iteration
        for p in self._plots:
            p.pick_line.setVisible(iteration is not None)
            if iteration is None:
                p.star.setData([], [])
                continue
            p.pick_line.setValue(iteration)
            xs, ys = [], []
            for key in p.curves:
                v = self.data.value_at(key, iteration)
                if v is not None and (not p.log_y or v > 0):
                    xs.append(iteration)
                    ys.append(math.log10(v) if p.log_y else v)
            p.star.setData(xs, ys)

    def pick(self) -> int | None:
        return self._pick

    def set_cursor(self, iteration: int | None) -> None:
        """The iterate being viewed (timeline scrubbing); None hides the line."""
        self._cursor = iteration
        for p in self._plots:
            p.cursor.setVisible(iteration is not None)
            if iteration is not None:
                p.cursor.setValue(iteration)

    def cursor_iteration(self) -> int | None:
        """The iterate set by set_cursor (not named ``cursor``: that would hide QWidget.cursor)."""
        return self._cursor

    def _on_clicked(self, ev) -> None:
        for p in self._plots:
            if p.item.isVisible() and p.item.sceneBoundingRect().contains(ev.scenePos()):
                x = p.item.vb.mapSceneToView(ev.scenePos()).x()
                if self.data.n and x >= 0:
                    self.iteration_clicked.emit(int(round(x)))
                return
