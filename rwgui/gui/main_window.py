"""The main window: wiring only. Views in the middle, settings / curves / timeline in docks.

The parts (canvas, forms, plots, timeline, worker) know nothing of each other; this class connects them.
A run is started from an immutable snapshot (photo copy, mask copy, validated RunConfig) and every payload
arrives through :class:`~rwgui.gui.worker.RunController`, which drops those of older runs. Errors become a
message box (and ``last_error``, for tests); the photo, the mask and the kept iterates are never lost.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QSplitter, QStackedWidget, QWidget

from ..core import imageio
from ..core.errors import RwguiError
from ..core.history import IterateHistory, KeepSchedule
from ..core.problems import hole_fraction
from ..core.working_size import working_problem
from .actions import build_actions
from .canvas import CompareView, ImageView, MaskCanvas
from .document import Photo, build_problem, display_image, open_photo, sample_photo, with_ground_truth
from .files import FileState
from .lab_hookup import LabHookup
from .plots import CurvesWidget
from .settings_dock import SettingsPanel
from .status import RunStatus
from .timeline import TimelineWidget
from .window_io import WindowIO
from .worker import KeptImage, RunController, RunSummary
from .working import WorkingSize

__all__ = ["MainWindow"]


class MainWindow(WindowIO, WorkingSize, QMainWindow):
    """rwgui's studio window. ``sample_size`` crops the bundled sample (tests use small crops)."""

    def __init__(
        self,
        photo: str | None = None,
        *,
        mask: str | None = None,
        task: str | None = None,
        settings: QSettings | None = None,
        sample_size: int | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("rwgui — restore a photo with an untrained network")
        self.setAcceptDrops(True)
        self.last_error: str | None = None
        self.error_box: QMessageBox | None = None
        self.photo: Photo | None = None
        self.sample_size = sample_size
        self.last_summary: RunSummary | None = None
        self.run_config = None  # the RunConfig of the last run started
        self._last_frame: np.ndarray | None = None
        self.history = IterateHistory()
        self.controller = RunController(self)
        self.files = FileState(settings)

        self.photo_view = MaskCanvas(self)
        self.recon_view = ImageView(self)
        self.compare_view = CompareView(self)
        self.recon_view.link(self.photo_view)
        self.compare_view.link(self.photo_view)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.photo_view)
        split.addWidget(self.recon_view)
        split.setChildrenCollapsible(False)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(split)
        self.stack.addWidget(self.compare_view)
        self.setCentralWidget(self.stack)

        self.settings_panel = SettingsPanel(self)
        self.curves = CurvesWidget(self)
        self.timeline = TimelineWidget(self.history, self)
        self.settings_dock = self._dock("Restoration", self.settings_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.curves_dock = self._dock("Curves", self.curves, Qt.DockWidgetArea.RightDockWidgetArea)
        self.timeline_dock = self._dock("Timeline", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.settings_dock.setMinimumWidth(330)
        self.curves_dock.setMinimumWidth(340)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.acts = build_actions(self)
        for dock in (self.settings_dock, self.curves_dock, self.timeline_dock):
            self.acts.view_menu.addAction(dock.toggleViewAction())
        self.status = RunStatus(self.statusBar())
        self.lab = LabHookup(self)
        # the timeline redraws thumbnails in Python: twice a second is enough and leaves the GIL to the run
        self._sync_timer = QTimer(self, singleShot=True, interval=1000, timeout=self.timeline.sync)

        c = self.controller
        c.run_started.connect(self._on_run_started)
        c.reports_ready.connect(self._on_reports)
        c.frame_ready.connect(self._on_frame)
        c.iterate_kept.connect(self._on_kept)
        c.run_finished.connect(self._on_finished)
        c.run_failed.connect(self._on_failed)
        c.state_changed.connect(self.update_actions)
        self.settings_panel.task_changed.connect(self._on_task_changed)
        self.timeline.viewed.connect(self._on_viewed)
        self.timeline.chosen.connect(self._on_chosen)
        self.timeline.compare_requested.connect(self._on_compare_requested)
        self.curves.iteration_clicked.connect(self.timeline.view_nearest)
        self.photo_view.mask_changed.connect(self._on_mask_changed)
        self.photo_view.brush_size_changed.connect(self.acts.size_slider.setValue)
        self.acts.size_slider.valueChanged.connect(self._on_brush_size)
        self.acts.opacity_slider.valueChanged.connect(self._on_opacity)
        self.files.recent_changed.connect(self._fill_recent)
        self.compare_view.set_title("◀ damaged photo  |  restored ▶")

        self.resize(1500, 920)
        self.files.restore_window(self, self.settings_panel)
        if task is not None:
            self.settings_panel.set_task(task)
        self._fill_recent()
        if photo:
            self.open_file(photo)
        if self.photo is None:
            self.open_sample()
        if mask:
            self.load_mask(mask)
        self.update_actions()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower() + "_dock")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    # ----- errors -----------------------------------------------------------------------------------
    def show_error(self, text: str, title: str = "rwgui") -> None:
        """A window-modal message (it does not block the event loop); the text stays in ``last_error``."""
        self.last_error = text
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        self.error_box.setWindowModality(Qt.WindowModality.WindowModal)
        self.error_box.open()

    # ----- photo --------------------------------------------------------------------------------------
    def task(self) -> str:
        return self.settings_panel.task()

    def open_file(self, path: str | Path) -> bool:
        """Open a photo; an unreadable file shows a message and keeps the current photo."""
        try:
            photo = open_photo(path)
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot open the photo")
            return False
        self.files.add_recent(str(path))
        self._set_photo(photo)
        return True

    def open_sample(self, name: str = "astronaut") -> None:
        """The bundled photo, damaged for the current task, with ground truth (PSNR is plotted)."""
        sp = self.settings_panel
        self._set_photo(sample_photo(sp.task(), name, sp.factor(), self.sample_size))

    def open_ground_truth(self, path: str | Path) -> bool:
        if self.photo is None:
            return False
        try:
            self.photo = with_ground_truth(self.photo, path)
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot open the ground truth")
            return False
        self.statusBar().showMessage("Ground truth loaded: PSNR will be plotted on the next run", 5000)
        return True

    def _set_photo(self, photo: Photo) -> None:
        """A new photo: a run on the old one is abandoned and its curves and iterates are let go."""
        if self.controller.is_busy():
            self.controller.abandon()
        self._forget_run()
        self.photo = photo
        self._show_photo(new=True)
        self.setWindowTitle(f"rwgui — {photo.name}")

    def _show_photo(self, new: bool = False) -> None:
        """Show the photo for the task (bicubic-enlarged for super-resolution); keep the mask when possible."""
        p = self.photo
        if p is None:
            return
        sp = self.settings_panel
        img = display_image(p, sp.task(), sp.factor())
        shown = self.photo_view.image()
        if new or shown is None or shown.shape[:2] != img.shape[:2]:
            self.photo_view.set_photo(img)
            if p.mask is not None and sp.task() == "inpaint":
                self.photo_view.set_mask(p.mask)
        else:
            self.photo_view.set_image(img)
        label = "Damaged photo" + (f" (bicubic ×{sp.factor()})" if sp.task() == "sr" else "")
        self.photo_view.set_title(label)
        if self.controller.state == "idle" and not len(self.history):
            self.recon_view.set_image(np.zeros_like(self.photo_view.image()))
            self.recon_view.set_title("Restored — press Start")
        self.compare_view.set_before(self.photo_view.image())
        self._update_mask_tools()

    def _on_task_changed(self, task: str) -> None:
        if self.photo is not None and self.photo.sample is not None:
            self.open_sample(self.photo.sample)  # the sample's damage is made for each task
        else:
            self._show_photo()
        self.update_actions()

    # ----- mask ---------------------------------------------------------------------------------------
    def _update_mask_tools(self) -> None:
        on = self.task() == "inpaint"
        self.acts.mask_toolbar.setVisible(on)
        for act in (
            self.acts.undo,
            self.acts.redo,
            self.acts.clear_mask,
            self.acts.invert_mask,
            self.acts.load_mask,
            self.acts.save_mask,
        ):
            act.setEnabled(on)
        tool = (
            "none"
            if not on
            else "brush"
            if self.acts.brush.isChecked()
            else "eraser"
            if self.acts.eraser.isChecked()
            else "none"
        )
        self.photo_view.set_tool(tool)
        self._on_mask_changed()

    def set_mask_tool(self, tool: str) -> None:
        self.photo_view.set_tool(tool if self.task() == "inpaint" else "none")

    def _on_brush_size(self, size: int) -> None:
        self.photo_view.brush_size = size

    def _on_opacity(self, value: int) -> None:
        self.photo_view.overlay_opacity = value / 100

    def _on_mask_changed(self) -> None:
        on = self.task() == "inpaint"
        for act in (self.acts.undo, self.acts.undo_tb):
            act.setEnabled(on and self.photo_view.can_undo())
        for act in (self.acts.redo, self.acts.redo_tb):
            act.setEnabled(on and self.photo_view.can_redo())
        m = self.photo_view.mask()
        self.settings_panel.set_hole_fraction(None if m is None else hole_fraction(m))

    def mask_undo(self) -> None:
        self.photo_view.undo()

    def mask_redo(self) -> None:
        self.photo_view.redo()

    def mask_clear(self) -> None:
        self.photo_view.clear()

    def mask_invert(self) -> None:
        self.photo_view.invert()

    def load_mask(self, path: str | Path) -> bool:
        """Load a mask PNG; a wrong size shows both sizes and leaves the mask as it was."""
        shown = self.photo_view.image()
        if shown is None:
            return False
        try:
            mask = imageio.read_mask(path, shown.shape[:2])
            self.photo_view.set_mask(mask)
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot use this mask")
            return False
        return True

    def save_mask(self, path: str | Path) -> bool:
        try:
            imageio.write_mask(path, self.photo_view.mask())
        except (RwguiError, ValueError) as exc:
            self.show_error(str(exc), "Cannot save the mask")
            return False
        return True

    # ----- run ----------------------------------------------------------------------------------------
    def start(self) -> int | None:
        """Snapshot photo, mask and settings, and start a run (the previous one, if any, is stopped).

        A run that does not fit in memory asks first for a working size (downscale, or crop around the
        damage); Cancel returns None and changes nothing."""
        if self.photo is None:
            return None
        try:
            cfg = self.settings_panel.config()
            mask = self.photo_view.mask() if cfg.task == "inpaint" else None  # a copy, converted once here
            problem = build_problem(self.photo, cfg.task, cfg.factor, mask)
            working = self.fit_to_memory(problem, cfg)
            if working is None:
                return None
            problem = working_problem(problem, working)
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot start")
            return None
        self._forget_run()
        self.set_working(working, mask)
        self.run_config = cfg
        h, w = problem.size
        entry = h * w * problem.channels * 2
        self.status.begin(cfg.iterations, problem.ground_truth is not None)
        self.curves.set_budget(cfg.iterations)
        self.recon_view.set_title("Restored — starting…" + self.working_note())
        return self.controller.start(
            problem, cfg, keep=KeepSchedule.for_size(entry, self.history.cap_bytes), thumb_side=self.history.thumb_side
        )

    def _forget_run(self) -> None:
        self._sync_timer.stop()
        self.history.clear()
        self.curves.clear()
        self.timeline.clear()
        self._last_frame = None
        self.last_summary = None
        self.set_working(None, None)
        self.update_actions()

    def toggle_pause(self) -> None:
        if self.controller.state == "running":
            self.controller.pause()
        elif self.controller.state == "paused":
            self.controller.resume()

    def stop(self) -> None:
        self.controller.stop()

    def set_live_average(self, on: bool) -> None:
        self.controller.set_live_view("average" if on else "raw")

    def update_actions(self, *_: object) -> None:
        state = self.controller.state
        a = self.acts
        a.start.setEnabled(state == "idle" and self.photo is not None)
        a.pause.setEnabled(state in ("running", "paused"))
        a.pause.setText("Resume" if state == "paused" else "Pause")
        a.stop.setEnabled(state in ("running", "paused"))
        a.save.setEnabled(self.history.result_key() is not None)
        a.export_csv.setEnabled(self.curves.data.n > 0)
        self.status.set_state(state)

    def _on_run_started(self, device: str) -> None:
        self.status.set_device(device)
        self.recon_view.set_title("Restored — live" + self.working_note())

    def _on_reports(self, reports: list) -> None:
        self.curves.append(reports)
        self.status.update(reports[-1])

    def _on_frame(self, iteration: int, rgba: np.ndarray) -> None:
        self._last_frame = rgba
        if self.timeline.is_live():
            # the iteration in the title moves twice a second, not with every frame: each change repaints
            now = time.monotonic()
            if now - self._title_time >= 0.5:
                self._title_time, self._live_title = now, f"Restored — live, iteration {iteration}"
            self._show_result(rgba, self._live_title)

    def _on_kept(self, item: KeptImage) -> None:
        h = self.history
        if item.kind == "raw":
            h.add(item.iteration, item.pixels, item.thumb)
        elif item.kind == "average":
            h.set_average(item.iteration, item.pixels, item.thumb)
        elif item.kind == "pick":
            h.set_pick(item.iteration, item.pixels, item.average, item.thumb)  # the curves' star: at redraw
        if not self._sync_timer.isActive():
            self._sync_timer.start()

    def _on_finished(self, s: RunSummary) -> None:
        self.last_summary = s
        self._sync_timer.stop()
        self.curves.redraw()
        self.timeline.sync()
        why = {
            "completed": "finished its iterations",
            "rule": "stopped by the stopping rule",
            "stopped": "stopped by you",
            "error": "ended with an error",
        }[s.reason]
        pick = f"; the rule's pick is iteration {s.pick_iteration}" if s.pick_iteration else ""
        self.status.finish(s)
        self.statusBar().showMessage(f"Run {why} after {s.iterations} iterations{pick}.", 15000)
        key = self.history.result_key()
        if key is not None and self.timeline.is_live():
            self.timeline.view(key)  # offer the rule's pick (the average there) as the result
        self.update_actions()

    def _on_failed(self, message: str) -> None:
        self.show_error(
            message + "\n\nThe photo, the mask and the iterates kept so far are still here.", "The run failed"
        )

    # ----- timeline -----------------------------------------------------------------------------------
    def _show_result(self, rgba: np.ndarray, title: str) -> None:
        self.recon_view.set_image(rgba)
        self.recon_view.set_title(title + self.working_note())
        if self.stack.currentIndex() == 1 and self._compare_pair is None:
            self.compare_view.set_image(rgba)

    _compare_pair: tuple | None = None
    _title_time = 0.0
    _live_title = "Restored — live"

    def _on_viewed(self, key) -> None:
        if key is None:
            self.curves.set_cursor(None)
            if self._last_frame is not None:
                self._show_result(self._last_frame, "Restored — live")
            return
        e = self.history.entry(key)
        self.curves.set_cursor(e.iteration)
        label = self.history.label(key)
        if key == self.history.result_key():
            label = "result: " + label[:1].lower() + label[1:]
        self._show_result(self.history.rgba(key), f"Restored — {label}")

    def _on_chosen(self, key) -> None:
        rk = self.history.result_key()
        if rk is not None:
            self.statusBar().showMessage(f"Result: {self.history.label(rk)}. Save result writes it.", 8000)
            if self.timeline.current() == rk:
                self._on_viewed(rk)
        self.update_actions()

    def _on_compare_requested(self, a, b) -> None:
        self._compare_pair = (a, b)
        self.compare_view.set_images(self.history.rgba(a), self.history.rgba(b))
        self.compare_view.set_title(f"◀ {self.history.label(a)}  |  {self.history.label(b)} ▶")
        self.acts.compare.blockSignals(True)
        self.acts.compare.setChecked(True)
        self.acts.compare.blockSignals(False)
        self.stack.setCurrentIndex(1)

    def set_compare(self, on: bool) -> None:
        """Before/after split: the damaged photo against what the right view shows."""
        self._compare_pair = None
        if on and self.recon_view.image() is not None:
            self.compare_view.set_images(self.compare_before(), self.recon_view.image())
            self.compare_view.set_title("◀ damaged photo  |  restored ▶")
        self.stack.setCurrentIndex(1 if on else 0)

    def view_fit(self) -> None:
        self.photo_view.fit()

    def view_one_to_one(self) -> None:
        self.photo_view.one_to_one()

    # ----- closing ---------------------------------------------------------------------------------------
    def closeEvent(self, ev) -> None:
        """Stop the run cleanly (request stop, quit, wait) and remember the layout and settings."""
        t0 = time.perf_counter()
        self.files.save_window(self, self.settings_panel)
        self.controller.shutdown()
        self.lab.shutdown()
        self._sync_timer.stop()
        if self.error_box is not None:
            self.error_box.close()
        self.statusBar().showMessage(f"closed in {time.perf_counter() - t0:.2f} s")
        super().closeEvent(ev)
