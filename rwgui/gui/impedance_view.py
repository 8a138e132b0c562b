"""View > "Why it works": the Deep Image Prior paper's Figure 2, live, on the photo in the window.

The four fits of :mod:`rwgui.core.impedance` (the photo, the photo plus noise, its pixels shuffled, pure noise)
run one after another through one :class:`~rwgui.gui.worker.RunController`, the same worker the main run uses:
the engine runs on a QThread, never on the GUI thread, payloads of a fit that was replaced are dropped, and
closing the window stops the fit and waits for its thread. The next fit starts when the controller reports the
current one finished. The four loss curves share one log-scale plot; a table fills in the iteration at which
each curve first reaches each threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.config import RunConfig, preset
from ..core.errors import RwguiError
from ..core.history import KeepSchedule
from ..core.impedance import (
    DEFAULT_ITERATIONS,
    DEFAULT_SIDE,
    DEFAULT_SIGMA,
    EXPLANATION,
    LABELS,
    TARGETS,
    Threshold,
    default_thresholds,
    first_at_or_below,
    fit_config,
    format_hit,
    make_targets,
    target_problems,
    working_photo,
)
from ..core.pixels import rgba8_for_display
from ..core.problems import Problem
from ..core.session import Session
from ..core.vocabulary import StopReason
from .plots import LogAxis
from .worker import RunController, RunSummary

__all__ = ["WhyItWorksWindow", "WhyItWorksHookup", "COLORS"]

#: One colour per target, in ``TARGETS`` order: the photo green, the noisy photo blue, the others warm.
COLORS: dict[str, tuple[int, int, int]] = {
    "image": (90, 200, 110),
    "image_noise": (110, 160, 255),
    "shuffled": (240, 170, 60),
    "noise": (230, 90, 90),
}


def _pen(color: tuple[int, int, int]) -> pg.QtGui.QPen:
    pen = pg.mkPen(color, width=1)
    pen.setCosmetic(True)  # width-1 cosmetic pens are the cheap way to draw (see plots.py)
    return pen


def _pixmap(pixels: np.ndarray, scale: int) -> QPixmap:
    """An HxWxC float image, or an HxWx4 uint8 frame, as a pixmap ``scale`` times its size (nearest)."""
    rgba = pixels if pixels.dtype == np.uint8 and pixels.shape[2] == 4 else rgba8_for_display(pixels)
    rgba = np.ascontiguousarray(rgba)
    h, w = rgba.shape[:2]
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()  # the copy owns its pixels
    return QPixmap.fromImage(img).scaled(w * scale, h * scale, mode=Qt.TransformationMode.FastTransformation)


class WhyItWorksWindow(QWidget):
    """A window of its own: the explanation, the four curves, the threshold table, the fit being drawn."""

    finished = Signal()  # every fit ended (or one failed, or Stop): tests wait on it
    REDRAW_MS = 500  # a redraw a half second is live enough and leaves the GIL to the fit

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Why it works: fitting a photo, and noise")
        self.setObjectName("why_it_works")
        self.controller = RunController(self)
        self.curves: dict[str, list[float]] = {name: [] for name in TARGETS}
        self.thresholds: tuple[Threshold, ...] = default_thresholds(DEFAULT_SIGMA)
        self.variances: dict[str, float] = {}
        self.iterations = DEFAULT_ITERATIONS
        self._queue: list[tuple[str, Problem]] = []
        self._config: RunConfig | None = None
        self._current: str | None = None
        self._ended: dict[str, StopReason] = {}
        self._targets: dict[str, np.ndarray] = {}

        about = QLabel(EXPLANATION, self)
        about.setWordWrap(True)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: gray")

        self.plot = pg.PlotWidget(self, axisItems={"left": LogAxis("left")})
        self.plot.setBackground((30, 30, 32))
        item = self.plot.getPlotItem()
        item.setLogMode(False, True)
        item.setLabel("left", "MSE to the target")
        item.setLabel("bottom", "Iteration")
        item.getAxis("left").enableAutoSIPrefix(False)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setMenuEnabled(False)
        self.legend = item.addLegend(offset=(8, -8), labelTextSize="9pt")  # bottom left: the curves fall to the right
        self.lines: dict[str, pg.PlotDataItem] = {}
        for name in TARGETS:
            line = item.plot([], [], pen=_pen(COLORS[name]), name=LABELS[name])
            line.setDownsampling(auto=True, method="peak")
            line.setClipToView(True)
            self.lines[name] = line
        self.threshold_lines: list[pg.InfiniteLine] = []

        self.table = QTableWidget(0, len(TARGETS), self)
        self.table.setHorizontalHeaderLabels([LABELS[n] for n in TARGETS])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setToolTip("The first iteration at which each fit's MSE is at or below the row's threshold")
        self.table.setMaximumHeight(110)

        self.target_view = QLabel(self)
        self.output_view = QLabel(self)
        for view in (self.target_view, self.output_view):
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)
            view.setMinimumSize(140, 140)
        self.status = QLabel("", self)
        self.again = QPushButton("Run again", self)
        self.again.setToolTip("Fit the four targets again, from the photo the window shows now")
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.clicked.connect(self.stop)

        side = QVBoxLayout()
        side.addWidget(QLabel("Target", self))
        side.addWidget(self.target_view)
        side.addWidget(QLabel("The network's output", self))
        side.addWidget(self.output_view)
        side.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.plot, 1)
        middle.addLayout(side)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.again)
        buttons.addWidget(self.stop_button)
        lay = QVBoxLayout(self)
        lay.addWidget(about)
        lay.addWidget(self.note)
        lay.addLayout(middle, 1)
        lay.addWidget(self.table)
        lay.addLayout(buttons)

        self._redraw_timer = QTimer(self, singleShot=True, interval=self.REDRAW_MS)
        self._redraw_timer.timeout.connect(self.redraw)
        c = self.controller
        c.reports_ready.connect(self._on_reports)
        c.frame_ready.connect(self._on_frame)
        c.run_finished.connect(self._on_finished)
        c.run_failed.connect(self._on_failed)
        self.resize(1100, 720)

    # ----- control ------------------------------------------------------------------------------------
    def start(
        self,
        photo: np.ndarray,
        *,
        name: str = "the photo",
        base: RunConfig | None = None,
        iterations: int = DEFAULT_ITERATIONS,
        side: int | None = DEFAULT_SIDE,
        sigma: float = DEFAULT_SIGMA,
        seed: int = 0,
    ) -> None:
        """Fit the four targets of ``photo`` (downscaled to ``side``), one after another, with ``base``'s
        network and machine settings (the denoise preset by default); a run still going is replaced."""
        small = working_photo(photo, side)
        self._targets = make_targets(small, sigma, seed)
        self.variances = {n: float(np.var(t)) for n, t in self._targets.items()}
        self._queue = list(target_problems(self._targets).items())
        self._config = fit_config(base, iterations=iterations, seed=seed)
        self.iterations = iterations
        self.thresholds = default_thresholds(sigma)
        self.curves = {n: [] for n in TARGETS}
        self._ended = {}
        h, w = small.shape[:2]
        self.note.setText(
            f"{name} at {w}x{h} (a small working copy, to keep the four fits short), "
            f"noise σ = {sigma * 255:.3g}/255, {iterations} iterations per fit, seed {seed}; the "
            f"{self._config.prior} network with no early stopping. Thresholds: σ² (as far from the target as the "
            "noise is from the photo), and fractions of each target's own variance (Var) left unfitted."
        )
        self._draw_thresholds()
        self._fill_table()
        self.redraw()
        self.stop_button.setEnabled(True)
        self._next()

    def _next(self) -> None:
        if not self._queue or self._config is None:
            self._finish()
            return
        name, problem = self._queue.pop(0)
        self._current = name
        self.target_view.setPixmap(_pixmap(self._targets[name], self._scale()))
        self.output_view.clear()
        self.status.setText(f"Fitting {LABELS[name]} ({len(self._ended) + 1} of {len(TARGETS)})…")
        # only the curves and a few frames: no timeline here, so almost nothing is kept
        self.controller.start(
            problem, self._config, frame_hz=2.0, keep=KeepSchedule(1), average_every_s=1e9, pick_every_s=1e9
        )

    def stop(self) -> None:
        """End the fit going on and start no other (the curves so far stay)."""
        self._queue.clear()
        self.controller.stop()

    def is_running(self) -> bool:
        return self.controller.is_busy()

    def shutdown(self) -> bool:
        """Stop the fit and wait for its thread (the window or the studio closing). True when it ended."""
        self._queue.clear()
        self._redraw_timer.stop()
        return self.controller.shutdown()

    def closeEvent(self, ev) -> None:
        self.shutdown()
        super().closeEvent(ev)

    # ----- what the fits send (GUI thread) -----------------------------------------------------------
    def _on_reports(self, reports: list) -> None:
        if self._current is None:
            return
        curve = self.curves[self._current]
        for rep in reports:
            curve.append(rep.loss_terms["data"])
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def _on_frame(self, iteration: int, rgba: np.ndarray) -> None:
        self.output_view.setPixmap(_pixmap(rgba, self._scale()))

    def _on_finished(self, summary: RunSummary) -> None:
        """The fit ended: the next one starts when it ran its whole budget; a stop or a failure ends them all."""
        if self._current is not None:
            self._ended[self._current] = summary.reason
        self.redraw()
        if summary.reason is not StopReason.BUDGET:
            self._queue.clear()
            if summary.reason is StopReason.USER:
                self.status.setText("Stopped.")
        self._next()

    def _on_failed(self, message: str) -> None:
        self._queue.clear()
        self.status.setText(f"The fit failed: {message}")

    def _finish(self) -> None:
        self._current = None
        self.stop_button.setEnabled(False)
        if len(self._ended) == len(TARGETS) and all(r is StopReason.BUDGET for r in self._ended.values()):
            self.status.setText("Done.")
        self.finished.emit()

    # ----- drawing ------------------------------------------------------------------------------------
    def _scale(self) -> int:
        h, w = next(iter(self._targets.values())).shape[:2] if self._targets else (128, 128)
        return max(1, 160 // max(h, w))

    def _draw_thresholds(self) -> None:
        item = self.plot.getPlotItem()
        for line in self.threshold_lines:
            item.removeItem(line)
        self.threshold_lines = []
        for t in self.thresholds:
            if t.relative:  # a level of its own per target: no one line to draw
                continue
            pen = pg.mkPen((170, 170, 170), width=1, style=Qt.PenStyle.DashLine)
            line = pg.InfiniteLine(
                pos=np.log10(t.value), angle=0, pen=pen, label=f"{t.value:.2g}", labelOpts={"position": 0.97}
            )
            item.addItem(line, ignoreBounds=True)
            self.threshold_lines.append(line)

    def redraw(self) -> None:
        """Every curve and the table from the losses received so far."""
        for name, values in self.curves.items():
            y = np.asarray(values, dtype=np.float64)
            self.lines[name].setData(np.arange(1, len(y) + 1), y)
        self._fill_table()

    def iterations_to(self, name: str, threshold: Threshold) -> int | None:
        """The first iteration at which ``name``'s curve reached ``threshold`` so far; None if not yet."""
        return first_at_or_below(self.curves[name], threshold.level(self.variances.get(name, 0.0)))

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.thresholds))
        self.table.setVerticalHeaderLabels([t.label for t in self.thresholds])
        for row, t in enumerate(self.thresholds):
            for col, name in enumerate(TARGETS):
                hit = self.iterations_to(name, t)
                if hit is None and name not in self._ended:
                    text = "…"
                else:
                    text = format_hit(hit, len(self.curves[name]))
                cell = QTableWidgetItem(text)
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, col, cell)

    def table_text(self) -> list[list[str]]:
        """The table's cells as shown (tests read them); _fill_table fills every cell, "" stands for none."""
        return [
            [
                item.text() if (item := self.table.item(r, c)) is not None else ""
                for c in range(self.table.columnCount())
            ]
            for r in range(self.table.rowCount())
        ]


class WhyItWorksHookup(QObject):
    """Puts View > "Why it works…" into the studio: opens the window on the session's photo (its ground truth,
    the clean photo, when one is known: the figure is about a natural image) with the network and machine
    settings of the denoise preset and the settings dock's device and speed."""

    def __init__(
        self,
        session: Session,
        window: QMainWindow,
        menu: QMenu,
        settings: Callable[[], RunConfig],
        show_error: Callable[[str, str], None],
    ) -> None:
        super().__init__(window)
        self.session = session
        self.settings = settings
        self.show_error = show_error
        self.parent_window = window
        self.window: WhyItWorksWindow | None = None
        self._options: dict[str, Any] = {}
        self.action = QAction("&Why it works…", window)
        self.action.setStatusTip(
            "Fit the network to this photo, to noise and to the photo shuffled: the paper's Figure 2, live"
        )
        self.action.triggered.connect(self.open)
        menu.addAction(self.action)

    def open(self, *_: object, **options: Any) -> WhyItWorksWindow | None:
        """Show the window and start its fits on the current photo (a window already fitting keeps going).
        ``options`` go to :meth:`WhyItWorksWindow.start` (``base``, ``iterations``, ``side``: tests make the
        fits small) and are kept for "Run again"."""
        if self.session.photo is None:
            return None
        self._options = dict(options)
        if self.window is None:
            self.window = WhyItWorksWindow(self.parent_window)
            self.window.again.clicked.connect(self._start)
        win = self.window
        win.show()
        win.raise_()
        if not win.is_running():
            self._start()
        return win

    def _start(self) -> None:
        photo, win = self.session.photo, self.window
        if win is None or photo is None:
            return
        gt = photo.ground_truth
        clean = gt is not None and gt.shape == photo.pixels.shape
        pixels = gt if clean and gt is not None else photo.pixels
        options = dict(self._options)
        if "base" not in options:
            try:
                cfg = self.settings()
                options["base"] = preset("denoise", device=cfg.device, speed=cfg.speed)
            except RwguiError:
                options["base"] = preset("denoise")
        name = f"{photo.name}{' (its ground truth)' if clean else ''}"
        try:
            win.start(pixels, name=name, **options)
        except RwguiError as exc:
            self.show_error(str(exc), "Why it works")

    def shutdown(self) -> None:
        if self.window is not None:
            self.window.shutdown()
