"""Lab mode: run several variants on the same photo, one after another, and compare them in one view.

Why: which prior, regulariser and stopping rule suit a photo is an empirical question; the Lab answers it
with the same photo, seed and iteration budget for every variant, so only the named choices differ.

Variants run through ONE :class:`RunController`, reused sequentially: the next starts when the current one's
``run_finished`` arrives (GUI thread), so there is never more than one engine on the device. All worker
payloads reach this panel only through the controller's GUI-thread relays: a slot connected straight to the
worker would run in the worker's thread, and the relays drop a finished variant's late payloads by run id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from ..core.config import RunConfig
from ..core.errors import RwguiError
from ..core.pixels import rgba8_for_display
from ..core.problems import Problem
from ..core.session import LabResult
from ..core.vocabulary import Iterate, LabStatus, StopReason
from .canvas import ImagePane
from .lab_controls import RunBox, VariantBox
from .lab_model import NONE, PALETTE, Entry, LabVariant, default_weight, same_problem
from .lab_table import ResultsTable
from .lab_views import ComparisonPlot, ResultStrip
from .worker import KeptImage, RunController, RunSummary

__all__ = ["LabPanel"]


#: A variant's status after its run ended for ``reason``; any other reason is a failure.
_STATUS_AFTER = {StopReason.BUDGET: LabStatus.DONE, StopReason.RULE: LabStatus.DONE, StopReason.USER: LabStatus.STOPPED}


class _LabController(RunController):
    """The Lab's controller. Not the panel's child: when the panel is deleted from C++ (its parent went away)
    the children go first, and the run must still be stopped and waited for."""

    @Slot()
    def _on_owner_destroyed(self) -> None:
        self.shutdown()


class LabPanel(QWidget):
    """Queue variants, run them in turn on the window's photo, compare curves, numbers and images."""

    result_chosen = Signal(object)  # LabResult: the person takes this variant's result (not its settings)
    settings_chosen = Signal(object)  # LabResult: the person asks for this variant's settings in the window
    results_changed = Signal()  # a variant finished, or rows were removed: ``lab_results()`` changed
    queue_finished = Signal()
    REDRAW_MS = 250  # curves redraw at most 4 times a second (pyqtgraph paints in Python, holding the GIL)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._problem: Problem | None = None
        self._base = RunConfig()
        self._entries: list[Entry] = []
        self._next_key = 0
        self._pending: list[Entry] = []
        self._current: Entry | None = None
        self._settings: tuple | None = None
        self._best: int | None = None
        self._stopped = False  # the person pressed Stop during this queue run
        self.last_choice: LabResult | None = None  # the last result handed over
        self.controller = _LabController()
        self.destroyed.connect(self.controller._on_owner_destroyed)
        app = QCoreApplication.instance()
        if app is not None:  # a backstop for a window that forgets to call shutdown() when it closes
            app.aboutToQuit.connect(self.controller._on_owner_destroyed)
        self.controller.reports_ready.connect(self._on_reports)
        self.controller.iterate_kept.connect(self._on_kept)
        self.controller.frame_ready.connect(self._on_frame)
        self.controller.run_failed.connect(self._on_failed)
        self.controller.run_finished.connect(self._on_finished)
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(self.REDRAW_MS)
        self._redraw.timeout.connect(self._redraw_current)
        self._build()
        self._update_buttons()

    # ----- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.variant_box = VariantBox(self)
        self.add_button = self.variant_box.add_button
        self.add_button.clicked.connect(self.add_current)
        self.run_box = RunBox(self)
        self.run_button, self.stop_button = self.run_box.run_button, self.run_box.stop_button
        self.run_button.clicked.connect(self.run_queue)
        self.stop_button.clicked.connect(self.stop)
        self.folder_button = QPushButton("Run on a folder…", self)
        self.folder_button.setToolTip(
            "Runs every queued variant on each photo of a folder (as rwgui-restore would) and shows each "
            "variant's mean ± std PSNR over the photos: choose a prior on more than one photo."
        )
        self.folder_button.clicked.connect(self.open_folder_run)
        self.folder_dialog: Any = None  # the LabFolderDialog, made on first use
        self.status_label = QLabel("Open the Lab from the main window to load its photo and settings.", self)
        self.status_label.setWordWrap(True)

        left = QWidget(self)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.variant_box)
        lv.addWidget(self.run_box)
        lv.addWidget(self.folder_button)
        lv.addWidget(self.status_label)
        lv.addStretch(1)
        left.setFixedWidth(270)

        self.plot = ComparisonPlot(self)
        self.preview = ImagePane(self)
        self.preview.setMinimumWidth(160)
        top = QSplitter(Qt.Orientation.Horizontal, self)
        top.addWidget(self.plot)
        top.addWidget(self.preview)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        self.table = ResultsTable(self)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QPushButton("Clear queue", self)
        self.clear_button.clicked.connect(self.clear_queue)
        self.use_button = QPushButton("Use this result", self)
        self.use_button.setToolTip(
            "Adds the selected variant's result to the main window's timeline and makes it the result; the main "
            "run's iterates and the main settings stay as they are."
        )
        self.use_button.clicked.connect(self.use_result)
        self.settings_button = QPushButton("Use its settings", self)
        self.settings_button.setToolTip("Puts the selected variant's settings into the main window's settings.")
        self.settings_button.clicked.connect(self.use_settings)
        row = QHBoxLayout()
        row.addWidget(self.remove_button)
        row.addWidget(self.clear_button)
        row.addStretch(1)
        row.addWidget(self.settings_button)
        row.addWidget(self.use_button)
        self.strip = ResultStrip(self)
        self.strip.clicked.connect(self.select)
        bottom = QWidget(self)
        bv = QVBoxLayout(bottom)
        bv.setContentsMargins(0, 0, 0, 0)
        bv.addWidget(self.table)
        bv.addLayout(row)
        bv.addWidget(self.strip)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(top)
        right.addWidget(bottom)
        right.setChildrenCollapsible(False)
        top.setMinimumHeight(220)
        self.table.setMinimumHeight(110)
        right.setSizes([500, 400])  # the comparison plot is the point of the Lab: it gets the most room
        lay = QHBoxLayout(self)
        lay.addWidget(left)
        lay.addWidget(right, 1)

    # ----- public API ---------------------------------------------------------------------------------
    def set_problem(self, problem: Problem, base_config: RunConfig) -> bool:
        """Load the window's photo/mask snapshot and settings. Refused (False) while the queue runs."""
        if self.is_running():
            self.status_label.setText(
                "The queue is running on the photo it started with; stop it to load "
                "the main window's current photo and settings."
            )
            return False
        if self._problem is None or not same_problem(self._problem, problem):
            for e in self._entries:
                e.reset()
            self.plot.clear_all()
            self.strip.clear_all()
            self._best = None
        self._problem, self._base = problem, base_config
        self.plot.set_psnr_mode(problem.ground_truth is not None)
        self.variant_box.set_base(base_config)
        self.run_box.set_base(base_config)
        self.preview.set_image(rgba8_for_display(problem.naive()))
        self.preview.set_title("damaged photo")
        h, w = problem.size
        gt = "with ground truth: ranked by PSNR" if problem.ground_truth is not None else "no ground truth: pick by eye"
        self.status_label.setText(f"{w}×{h} {problem.task} photo, {gt}.")
        self._refresh_all()
        return True

    def add_variant(self, prior: str, loss: str = NONE, weight: float | None = None, stop: str | None = None) -> bool:
        """Queue a variant; λ and the rule default to the base settings'. Duplicates and invalid ones are refused."""
        stop = self._base.stop if stop is None else stop
        v = LabVariant(prior, loss, default_weight(loss, self._base) if weight is None else float(weight), stop)
        if loss == NONE:
            v = LabVariant(prior, NONE, 0.0, stop)
        if any(e.variant == v for e in self._entries):
            self.status_label.setText(f"{v.label()} is already in the queue.")
            return False
        try:
            v.config(self._base, **self._run_settings())
        except RwguiError as exc:
            self.status_label.setText(f"Cannot queue {v.label()}: {exc}")
            return False
        e = Entry(self._next_key, v, PALETTE[self._next_key % len(PALETTE)])
        self._next_key += 1
        self._entries.append(e)
        if self.is_running():
            self._pending.append(e)
        self._refresh_all()
        return True

    def add_current(self) -> bool:
        return self.add_variant(*self.variant_box.current())

    def queue_variants(self) -> list[RunConfig]:
        """The RunConfig each queued variant would run with now."""
        return [e.variant.config(self._base, **self._run_settings()) for e in self._entries]

    def results(self) -> list[dict[str, Any]]:
        """One dict per queued variant, in queue order (see ``Entry.as_dict``)."""
        return [e.as_dict(best=e.key == self._best) for e in self._entries]

    def best_key(self) -> int | None:
        return self._best

    def is_running(self) -> bool:
        return self._current is not None or self.controller.is_busy()

    def run_queue(self) -> bool:
        """Run, one after another, every variant without a result under the current settings."""
        if self.is_running() or self._problem is None or not self._entries:
            return False
        self._settings = settings = (self._base, *self._run_settings().values())
        pending = [e for e in self._entries if not (e.status == LabStatus.DONE and e.settings == settings)]
        self._pending = pending or list(self._entries)
        for e in self._pending:
            e.reset()
            self.plot.remove(e.key)
            self.strip.remove(e.key)
        self._best = None
        self._stopped = False
        self._start_next()
        return True

    def open_folder_run(self) -> Any:
        """The dialog that runs the queued variants (as they would run now) over a folder of photos
        (:mod:`rwgui.gui.lab_folder`); a new one unless one is still running."""
        from .lab_folder import LabFolderDialog

        d = self.folder_dialog
        if d is None or not d.is_running():
            if d is not None:
                d.shutdown()
                d.deleteLater()
            variants = [(e.variant.label(), cfg) for e, cfg in zip(self._entries, self.queue_variants())]
            d = self.folder_dialog = LabFolderDialog(variants, self)
        d.show()
        d.raise_()
        return d

    def stop(self) -> None:
        """Stop the running variant and drop the rest of this queue run (they stay queued)."""
        self._pending.clear()
        self._stopped = self._current is not None
        self.controller.stop()

    def shutdown(self) -> None:
        """Stop and wait for the run thread (panel or window closing)."""
        if self.folder_dialog is not None:
            self.folder_dialog.shutdown()
        self._pending.clear()
        if self._current is not None:
            self._current.status = LabStatus.STOPPED
            self._current = None
        self.controller.shutdown()
        self._update_buttons()

    def remove_selected(self) -> None:
        e = self._entry(self.selected_key())
        if e is None or e is self._current:
            return
        self._entries.remove(e)
        if e in self._pending:
            self._pending.remove(e)
        self.plot.remove(e.key)
        self.strip.remove(e.key)
        if self._best == e.key:
            self._best = None
        self._refresh_all()

    def clear_queue(self) -> None:
        if self.is_running():
            return
        self._entries.clear()
        self.plot.clear_all()
        self.strip.clear_all()
        self._best = None
        self._refresh_all()

    def selected_key(self) -> int | None:
        return self.table.selected_key()

    def select(self, key: int) -> None:
        self.table.select_key(key)

    def lab_results(self) -> list[LabResult]:
        """A typed result for each row that has one, in queue order."""
        out = [e.result(best=e.key == self._best) for e in self._entries]
        return [r for r in out if r is not None]

    def selected_result(self) -> LabResult | None:
        e = self._entry(self.selected_key())
        return None if e is None else e.result(best=e.key == self._best)

    def use_result(self) -> bool:
        """Emit ``result_chosen`` with the selected variant's :class:`LabResult` (its image is the running
        average at its pick); ``last_choice`` then holds it. Taking a result changes no setting: the settings
        the result was made with travel in it, and only :meth:`use_settings` asks to apply them."""
        r = self.selected_result()
        if r is None:
            return False
        self.last_choice = r
        self.result_chosen.emit(r)
        self.status_label.setText(f"Handed {r.variant_label} (iteration {r.pick_iteration}) to the main window.")
        return True

    def use_settings(self) -> bool:
        """Emit ``settings_chosen`` with the selected variant's result: the person asks for its settings."""
        r = self.selected_result()
        if r is None:
            return False
        self.settings_chosen.emit(r)
        self.status_label.setText(f"The main window's settings are now those of {r.variant_label}.")
        return True

    # ----- the queue ----------------------------------------------------------------------------------
    def _run_settings(self) -> dict[str, Any]:
        return self.run_box.settings()

    def _start_next(self) -> None:
        assert self._problem is not None and self._settings is not None
        while self._pending:
            e = self._pending.pop(0)
            try:
                e.config = e.variant.config(self._base, **self._run_settings())
            except RwguiError as exc:
                e.status, e.message = LabStatus.FAILED, str(exc)
                self.table.update_entry(e, self._best)
                continue
            e.status, e.settings = LabStatus.RUNNING, self._settings
            self._current = e
            self.table.update_entry(e, self._best)
            n_done = len(self._entries) - len(self._pending)
            self.status_label.setText(f"Running {n_done} of {len(self._entries)}: {e.label}")
            # only the final pick and average are wanted (they always arrive): no raw iterates, few frames
            self.controller.start(
                self._problem, e.config, frame_hz=4.0, keep_every_s=1e9, pick_every_s=1e9, average_every_s=1e9
            )
            self._update_buttons()
            return
        self._current = None
        self._finish_queue()

    def _finish_queue(self) -> None:
        self._redraw_current_all()
        scored = [(e.psnr(), e.key) for e in self._entries if e.status == LabStatus.DONE and e.psnr() is not None]
        self._best = max(scored)[1] if scored else None
        self._refresh_all()
        if self._best is not None:
            self.select(self._best)
            best = self._entry(self._best)
            assert best is not None  # _best is the key of one of the entries, picked just above
            self.status_label.setText(
                ("Queue stopped. " if self._stopped else "") + f"Best by PSNR: {best.label} ({best.psnr():.2f} dB). "
                "Select another row to choose it instead."
            )
        else:
            self.status_label.setText(
                ("Queue stopped." if self._stopped else "Queue finished.")
                + " Select a row (or a thumbnail) to choose its result."
            )
        self.queue_finished.emit()

    # ----- controller relays (GUI thread) -------------------------------------------------------------
    def _on_reports(self, reports: list) -> None:
        e = self._current
        if e is None:
            return
        e.data.extend(reports)
        self.table.update_entry(e, self._best, total=e.config.iterations if e.config else None)
        if not self._redraw.isActive():
            self._redraw.start()

    def _on_frame(self, iteration: int, rgba: np.ndarray) -> None:
        """The running variant's latest iterate, in the preview unless the person is looking at another row."""
        e = self._current
        if e is not None and self.selected_key() in (None, e.key):
            self.preview.set_image(rgba)
            self.preview.set_title(f"live: {e.label}, iteration {iteration}")

    def _on_kept(self, item: KeptImage) -> None:
        e = self._current
        if e is not None and item.kind in (Iterate.PICK, Iterate.AVERAGE):
            setattr(e, item.kind, item)

    def _on_failed(self, message: str) -> None:
        if self._current is not None:
            self._current.status, self._current.message = LabStatus.FAILED, message

    def _on_finished(self, summary: RunSummary) -> None:
        e = self._current
        if e is None:
            return
        e.summary = summary
        if e.status != LabStatus.FAILED:
            e.status = _STATUS_AFTER.get(summary.reason, LabStatus.FAILED)
            e.message = e.message or summary.message
        self._current = None
        if self._problem is not None:
            e.score(self._problem)  # what the person gets: an inpainting's known pixels kept
        self._draw(e)
        self.table.update_entry(e, self._best)
        if e.image is not None:
            self._show_thumb(e)
        self.results_changed.emit()
        self._start_next()

    # ----- views --------------------------------------------------------------------------------------
    def _redraw_current(self) -> None:
        if self._current is not None:
            self._draw(self._current)

    def _redraw_current_all(self) -> None:
        for e in self._entries:
            if e.data.n:
                self._draw(e)

    def _draw(self, e: Entry) -> None:
        col = e.curve_column(self.plot.psnr_mode)
        self.plot.set_curve(e.key, e.label, e.color, e.data.column("iteration"), e.data.column(col))
        it = e.image_iteration
        self.plot.set_marker(e.key, e.color, it, None if it is None else e.data.value_at(col, it))

    def _show_thumb(self, e: Entry) -> None:
        image = e.image
        if image is None:  # the callers show only entries with a result
            return
        p = e.psnr()
        text = f"{e.variant.prior}\n{e.variant.loss} · {e.variant.stop}" + (f"\n{p:.2f} dB" if p is not None else "")
        self.strip.set_result(e.key, image, text, e.color, f"{e.label}\nresult at iteration {e.image_iteration}")

    def _refresh_all(self) -> None:
        self.table.set_entries(self._entries, self._best, self.plot.psnr_mode)
        for e in self._entries:
            if e.image is not None:
                self._show_thumb(e)
        self._update_buttons()
        self.results_changed.emit()

    def _on_selection(self) -> None:
        e = self._entry(self.selected_key())
        self.strip.set_checked(e.key if e is not None and e.image is not None else None)
        if e is not None and e.image is not None:
            self.preview.set_image(rgba8_for_display(e.image))
            best = "  ★ best" if e.key == self._best else ""
            self.preview.set_title(f"{e.label} — iteration {e.image_iteration}{best}")
        elif self._problem is not None:
            self.preview.set_image(rgba8_for_display(self._problem.naive()))
            self.preview.set_title("damaged photo" + (f" ({e.label}: no result yet)" if e is not None else ""))
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.is_running()
        e = self._entry(self.selected_key())
        self.run_box.set_running(running, self._problem is not None and bool(self._entries))
        self.add_button.setEnabled(self._problem is not None)
        self.folder_button.setEnabled(self._problem is not None and bool(self._entries))
        self.clear_button.setEnabled(not running and bool(self._entries))
        self.remove_button.setEnabled(e is not None and e is not self._current)
        has_result = e is not None and e.image is not None and e.config is not None
        self.use_button.setEnabled(has_result)
        self.settings_button.setEnabled(has_result)

    def _entry(self, key: int | None) -> Entry | None:
        return next((e for e in self._entries if e.key == key), None)

    def closeEvent(self, ev) -> None:
        self.shutdown()
        super().closeEvent(ev)
