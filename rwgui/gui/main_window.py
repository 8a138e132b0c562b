"""The main window: wiring only. Views in the middle, settings / curves / timeline in docks.

The document (photo, mask, settings, working size, kept iterates, curves, Lab results) is one
:class:`~rwgui.core.session.Session`; the widgets are views that follow its events, and the window's methods
change the session, never a view directly. The parts (canvas, forms, plots, timeline, worker) know nothing of
each other; this class connects them. A run is started from an immutable snapshot (photo copy, mask copy,
validated RunConfig) and every payload arrives through :class:`~rwgui.gui.worker.RunController`, which drops
those of older runs. Errors become a message box (and ``last_error``, for tests); the photo, the mask and the
kept iterates are never lost.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QSignalBlocker, Qt, QTimer
from PySide6.QtWidgets import QDialog, QDockWidget, QMainWindow, QMessageBox, QSplitter, QStackedWidget, QWidget

from ..core import imageio
from ..core.config import RunConfig
from ..core.errors import RwguiError
from ..core.history import IterateHistory, KeepSchedule, Key
from ..core.metrics import psnr
from ..core.noise_estimate import NoiseEstimate
from ..core.photo import Photo
from ..core.pixels import rgba8_for_display
from ..core.problems import hole_fraction
from ..core.session import LabResult, Session
from ..core.vocabulary import Iterate, RunState, StopReason, Task, WorkingMode
from ..core.working_size import Working, working_problem
from .actions import build_actions
from .canvas import CompareView, ImagePane, MaskCanvas
from .discard import DiscardGuard
from .document import build_problem, display_image, open_photo, sample_photo
from .estimate_view import EstimateHookup, StartCancelled
from .files import FileState, paths_from_mime
from .impedance_view import WhyItWorksHookup
from .lab_hookup import LabHookup
from .plots import CurvesWidget
from .sessions import SessionKeeper
from .settings_dock import SettingsPanel
from .status import RunStatus
from .timeline import TimelineWidget
from .window_io import WindowIO
from .worker import KeptImage, RunController, RunSummary
from .working import WorkingSize

__all__ = ["MainWindow"]

#: How the status line names each way a run ends.
_WHY: dict[str, str] = {
    StopReason.BUDGET: "finished its iterations",
    StopReason.RULE: "stopped by the stopping rule",
    StopReason.USER: "stopped by you",
    StopReason.DIVERGED: "stopped: the loss diverged",
    StopReason.OUT_OF_MEMORY: "ran out of memory",
    StopReason.ERROR: "ended with an error",
}


class MainWindow(QMainWindow):
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
        self.session = Session(IterateHistory())
        self.last_error: str | None = None
        self.error_box: QMessageBox | None = None
        self.sample_size = sample_size
        self.last_summary: RunSummary | None = None
        self._last_frame: np.ndarray | None = None
        self._applying_settings = False  # the settings dock is being set from the session
        self.noise_note: str | None = None  # real noise: the estimated level of the last run's photo
        self._score_written = False  # the run's steps report another image's PSNR than Save result writes
        self._next_score = 0.0  # monotonic time before which the written image's PSNR is not measured again
        self.controller = RunController(self)
        self.files = FileState(settings)

        self.photo_view = MaskCanvas(self)
        self.recon_view = ImagePane(self)
        self.compare_view = CompareView(self)
        self.recon_view.link(self.photo_view)
        # the compare view is not linked: linked views share a range in pixels, and the hidden photo view's
        # half width would squeeze the compare view's image into its left half (it is fitted when it opens)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.photo_view)
        split.addWidget(self.recon_view)
        split.setChildrenCollapsible(False)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(split)
        self.stack.addWidget(self.compare_view)
        self.setCentralWidget(self.stack)

        self.settings_panel = SettingsPanel(self)
        self.curves = CurvesWidget(self, self.session.curves)
        self.timeline = TimelineWidget(self.session.history, self)
        self.settings_dock = self._dock("Restoration", self.settings_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.curves_dock = self._dock("Curves", self.curves, Qt.DockWidgetArea.RightDockWidgetArea)
        self.timeline_dock = self._dock("Timeline", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.settings_dock.setMinimumWidth(330)
        self.curves_dock.setMinimumWidth(340)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.working_size = WorkingSize(self.session, self, self.recon_view, self.statusBar())
        self.io = WindowIO(self.session, self, self, self.files, self.working_size, self.statusBar())
        self.sessions = SessionKeeper(self)  # save/open sessions, autosave, recovery (started below)
        self.discard = DiscardGuard(self.session, self, self.io.ask_save_result)
        self._task_settings: RunConfig | None = None  # the last settings of the task the photo is shown for
        self.acts = build_actions(self)
        for dock in (self.settings_dock, self.curves_dock, self.timeline_dock):
            self.acts.view_menu.addAction(dock.toggleViewAction())
        self.status = RunStatus(self.statusBar())
        # the estimate under Start, the time budget and Preview (rwgui.gui.estimate_view)
        self.estimates = EstimateHookup(self)
        self._help_dialog: QDialog | None = None  # the Help menu's open dialog (rwgui.gui.help)
        self.working_size.helper = self.estimates.estimator  # the offer's option times are timed there
        self.working_size.wait_for = self.estimates.on_helper  # and its memory plan probed, when not yet known
        self.lab = LabHookup(
            self.session,
            self,
            self.acts.view_menu,
            self.settings_panel,
            self.working_size,
            run_busy=self.controller.is_busy,
            show_error=self.show_error,
            made_off_gui=self.estimates.made_off_gui,  # the pre-image's classifier runs on the helper thread
        )
        # View > Why it works: the paper's Figure 2 on this photo, in a window of its own
        self.why_it_works = WhyItWorksHookup(
            self.session, self, self.acts.view_menu, self.current_settings, self.show_error
        )
        # the timeline redraws thumbnails in Python: twice a second is enough and leaves the GIL to the run
        self._sync_timer = QTimer(self, singleShot=True, interval=1000)
        self._sync_timer.timeout.connect(self.timeline.sync)

        s = self.session  # the views follow the session
        s.photo_changed.connect(self._on_photo_changed)
        s.ground_truth_changed.connect(self._on_ground_truth_changed)
        s.mask_changed.connect(self._on_mask_changed)
        s.settings_changed.connect(self._on_settings_changed)
        s.working_changed.connect(self._update_title)
        s.run_cleared.connect(self._on_run_cleared)
        s.history_changed.connect(self._on_history_changed)
        s.curves_changed.connect(self.curves.data_grew)
        s.result_taken.connect(self._on_result_taken)
        s.result_chosen.connect(self._on_chosen)
        s.pin_changed.connect(self._on_pin_changed)
        s.dirty_changed.connect(self._on_dirty_changed)
        c = self.controller
        c.run_started.connect(self._on_run_started)
        c.reports_ready.connect(self._on_reports)
        c.frame_ready.connect(self._on_frame)
        c.iterate_kept.connect(self._on_kept)
        c.tile_started.connect(self.working_size.on_tile)
        c.status.connect(self._on_run_status)
        c.run_finished.connect(self._on_finished)
        c.run_failed.connect(self._on_failed)
        c.state_changed.connect(self.update_actions)
        c.paused_changed.connect(self.status.set_paused)
        self.settings_panel.task_changed.connect(self._on_task_changed)
        self.settings_panel.changed.connect(self._on_settings_edited)
        self.timeline.viewed.connect(self._on_viewed)
        self.timeline.choose_requested.connect(self.session.choose)
        self.timeline.pin_requested.connect(self.session.pin)
        self.timeline.compare_requested.connect(self._on_compare_requested)
        self.curves.iteration_clicked.connect(self.timeline.view_nearest)
        self.photo_view.mask_changed.connect(self._on_mask_edited)
        self.photo_view.brush_size_changed.connect(self.acts.size_slider.setValue)
        self.acts.size_slider.valueChanged.connect(self._on_brush_size)
        self.photo_view.hardness_changed.connect(lambda h: self.acts.hardness_slider.setValue(round(h * 100)))
        self.acts.hardness_slider.valueChanged.connect(lambda v: setattr(self.photo_view, "hardness", v / 100))
        self.acts.opacity_slider.valueChanged.connect(self._on_opacity)
        self.files.recent_changed.connect(self._fill_recent)
        self.compare_view.set_title("◀ damaged photo  |  restored ▶")

        self.resize(1500, 920)
        self.files.restore_window(self, self.settings_panel)
        if task is not None:
            self.settings_panel.set_task(task)
        self._on_settings_edited()
        self._fill_recent()
        if photo:
            self.open_file(photo)
        if self.photo is None:
            self.open_sample()
        if mask:
            self.load_mask(mask)
        self.update_actions()
        self.sessions.start()  # after the first photo: autosave follows the person's changes from here on

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

    # ----- the session's state, read-only here (the session is the one place it lives) -----------------
    @property
    def photo(self) -> Photo | None:
        return self.session.photo

    @property
    def history(self) -> IterateHistory:
        return self.session.history

    @property
    def run_config(self) -> RunConfig | None:
        """The settings that made the result (the last run started, or the Lab variant whose result was taken)."""
        return self.session.run_config

    @property
    def working(self) -> Working | None:
        return self.session.working

    # ----- errors -----------------------------------------------------------------------------------
    def show_error(self, text: str, title: str = "rwgui") -> None:
        """A window-modal message (it does not block the event loop); the text stays in ``last_error``."""
        self.last_error = text
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        self.error_box.setWindowModality(Qt.WindowModality.WindowModal)
        self.error_box.open()

    # ----- settings -----------------------------------------------------------------------------------
    def current_settings(self) -> RunConfig:
        """The settings dock's settings, validated (a ConfigError names a bad field)."""
        return self.settings_panel.config()

    def _on_settings_edited(self) -> None:
        """The person (or a preset) changed a setting: the session takes it once it is valid."""
        if self._applying_settings:
            return
        try:
            cfg = self.settings_panel.config()
        except RwguiError:
            return  # half-typed: the session keeps the last valid settings
        self.session.set_settings(cfg)

    def _on_settings_changed(self, cfg: RunConfig) -> None:
        """The session's settings changed: the dock shows them unless it already does."""
        t = self._task_settings
        if t is None or (t.task, t.factor) == (cfg.task, cfg.factor):
            self._task_settings = cfg  # what a cancelled task change goes back to
        try:
            shown = self.settings_panel.config()
        except RwguiError:
            shown = None
        if shown == cfg:
            return
        self._applying_settings = True
        try:
            self.settings_panel.set_config(cfg)
        finally:
            self._applying_settings = False
        self._on_settings_edited()

    # ----- photo --------------------------------------------------------------------------------------
    def task(self) -> str:
        return self.settings_panel.task()

    def confirm_discard(self, action: str) -> bool:
        """Before ``action`` ("Quitting", "Opening another photo", ...) throws the session's unsaved work away:
        True when it may go ahead (nothing unsaved, or the person chose Discard, or Save and the save worked)."""
        return self.discard.confirm(action)

    def open_file(self, path: str | Path) -> bool:
        """Open a photo; an unreadable file shows a message and keeps the current photo. Unsaved work is asked
        about first (Cancel keeps everything and returns False)."""
        try:
            photo = open_photo(path)
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot open the photo")
            return False
        if not self.confirm_discard("Opening another photo"):
            return False
        self.files.add_recent(str(path))
        self._set_photo(photo)
        return True

    def open_sample(self, name: str = "astronaut") -> bool:
        """The bundled photo, damaged for the current task, with ground truth (PSNR is plotted). Unsaved work is
        asked about first (Cancel keeps everything and returns False)."""
        if not self.confirm_discard("Opening the sample"):
            return False
        self._open_sample(name)
        return True

    def _open_sample(self, name: str) -> None:
        sp = self.settings_panel
        self._set_photo(sample_photo(sp.task(), name, sp.factor(), self.sample_size))

    def open_ground_truth(self, path: str | Path) -> bool:
        if self.photo is None:
            return False
        try:
            pixels = imageio.read(path).pixels  # checked against the result size at Start
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot open the ground truth")
            return False
        self.session.set_ground_truth(pixels)
        return True

    def open_no_flash(self, path: str | Path) -> bool:
        """Flash / no-flash: the no-flash photo, the run's target (the photo open is the flash one)."""
        try:
            pixels = imageio.read(path).pixels  # its size is checked against the flash photo's at Start
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot open the no-flash photo")
            return False
        self.session.set_second_photo(pixels)
        self.statusBar().showMessage(f"No-flash photo: {Path(path).name}", 5000)
        return True

    def set_classifier_weights(self, path: str | Path) -> None:
        """The pre-image task's classifier weights (enables the task)."""
        self.settings_panel.set_classifier_weights(str(path))

    def _set_photo(self, photo: Photo) -> None:
        """A new photo: a run on the old one is abandoned and its curves and iterates are let go."""
        if self.controller.is_busy():
            self.controller.abandon()
        self.session.set_photo(photo)

    def _on_photo_changed(self, photo: Photo | None) -> None:
        self._show_photo(new=True)
        self._update_title()
        self.update_actions()

    def _on_ground_truth_changed(self, photo: Photo) -> None:
        self.statusBar().showMessage("Ground truth loaded: PSNR will be plotted on the next run", 5000)

    def _update_title(self, *_: object) -> None:
        p, w = self.session.photo, self.session.working
        if p is None:
            return
        working = f" — working at {w.describe()}" if w is not None and w.mode != WorkingMode.FULL else ""
        self.setWindowTitle(f"rwgui — {p.name}{working}[*]")  # [*]: a star while the session has unsaved work

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
            if p.mask is not None and sp.task() == Task.INPAINT:
                self.photo_view.set_mask(p.mask)
        else:
            self.photo_view.set_image(img)
        label = "Damaged photo" + (f" (bicubic ×{sp.factor()})" if sp.task() == Task.SR else "")
        label = "Flash photo (the input code)" if sp.task() == Task.FLASH else label
        self.acts.open_no_flash.setVisible(sp.task() == Task.FLASH)
        self.photo_view.set_title(label)
        shown = self.photo_view.image()
        assert shown is not None  # set just above
        if self.controller.state == RunState.IDLE and not len(self.history):
            self.recon_view.set_image(np.zeros_like(shown))
            self.recon_view.set_title("Restored — press Start")
        self.compare_view.set_before(shown)
        self._update_mask_tools()

    def _on_task_changed(self, task: str) -> None:
        """A new task (or SR factor). The sample's damage is made for each task, so the sample is made again and
        its run let go: with unsaved work that is asked first, and Cancel puts the task and settings back. Any
        other photo keeps its run (the next Start makes a new one)."""
        if self.photo is not None and self.photo.sample is not None:
            if not self.confirm_discard("Changing the task"):
                self._undo_task_change()
                return
            self._open_sample(self.photo.sample)
        else:
            self._show_photo()
        self._task_settings = self.session.settings
        self.update_actions()

    def _undo_task_change(self) -> None:
        """The dock back to the settings of the task the photo is shown for (no task change is announced)."""
        if self._task_settings is not None:
            self.settings_panel.set_config(self._task_settings)

    # ----- mask ---------------------------------------------------------------------------------------
    def _on_mask_edited(self) -> None:
        """The canvas is the mask's editor: each edit hands the session a copy."""
        self.session.set_mask(self.photo_view.mask())

    def _update_mask_tools(self) -> None:
        on = self.task() == Task.INPAINT
        self.acts.mask_toolbar.setVisible(on)
        for act in (
            self.acts.undo,
            self.acts.redo,
            self.acts.clear_mask,
            self.acts.invert_mask,
            self.acts.load_mask,
            self.acts.save_mask,
            self.acts.subtract,
            self.acts.grow,
            self.acts.shrink,
            self.acts.feather,
            *self.acts.mask_tools.values(),
        ):
            act.setEnabled(on)
        checked = [t for t, act in self.acts.mask_tools.items() if act.isChecked()]
        self.photo_view.set_tool(checked[0] if on and checked else "none")
        self._on_mask_changed(self.session.mask)

    def set_mask_tool(self, tool: str) -> None:
        self.photo_view.set_tool(tool if self.task() == Task.INPAINT else "none")

    def _on_brush_size(self, size: int) -> None:
        self.photo_view.brush_size = size

    def _on_opacity(self, value: int) -> None:
        self.photo_view.overlay_opacity = value / 100

    def _on_mask_changed(self, mask: np.ndarray | None) -> None:
        on = self.task() == Task.INPAINT
        for act in (self.acts.undo, self.acts.undo_tb):
            act.setEnabled(on and self.photo_view.can_undo())
        for act in (self.acts.redo, self.acts.redo_tb):
            act.setEnabled(on and self.photo_view.can_redo())
        self.settings_panel.set_hole_fraction(None if mask is None else hole_fraction(mask))
        self._update_mask_note()

    def _update_mask_note(self) -> None:
        """A run keeps the mask it started with: say so when the mask painted now differs from it, so that
        painting while a run goes (to prepare the next one) is never mistaken for changing this one."""
        s, busy = self.session, self.controller.state in (RunState.RUNNING, RunState.PAUSED)
        differs = (
            busy
            and self.task() == Task.INPAINT
            and s.working_mask is not None
            and s.mask is not None
            and not np.array_equal(s.mask, s.working_mask)
        )
        self.acts.mask_note.setText("Mask changed — applies to the next run" if differs else "")
        self.acts.mask_note_action.setVisible(differs)

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
        mask = self.photo_view.mask()
        if mask is None:
            self.show_error("No mask to save: open a photo and paint the damage first.", "Cannot save the mask")
            return False
        try:
            imageio.write_mask(path, mask)
        except (RwguiError, ValueError) as exc:
            self.show_error(str(exc), "Cannot save the mask")
            return False
        return True

    # ----- export (the window's file side is :class:`WindowIO`) ------------------------------------------
    def save_result(self, path: str | Path, key: Key | None = None) -> bool:
        return self.io.save_result(path, key)

    def export_curves(self, path: str | Path) -> bool:
        return self.io.export_curves(path)

    def export_settings(self, path: str | Path) -> bool:
        return self.io.export_settings(path)

    def import_settings(self, path: str | Path) -> bool:
        return self.io.import_settings(path)

    def apply_settings(self, cfg: RunConfig) -> bool:
        """Valid settings (an imported file) into the dock and the session. Another task or SR factor goes the
        way one chosen in the dock goes (the sample is made again, unsaved work asked about first); Cancel puts
        the settings back and returns False."""
        before: RunConfig | None
        try:
            before = self.settings_panel.config()
        except RwguiError:
            before = self.session.settings
        self.session.set_settings(cfg)
        if before is not None and (before.task, before.factor) != (cfg.task, cfg.factor):
            self._on_task_changed(cfg.task)
            return self.settings_panel.task() == cfg.task
        return True

    def _fill_recent(self) -> None:
        self.io.fill_recent(self.acts.recent_menu)

    def dragEnterEvent(self, ev) -> None:
        if paths_from_mime(ev.mimeData()):
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        paths = paths_from_mime(ev.mimeData())
        if paths:
            ev.acceptProposedAction()
            self.open_file(paths[0])

    # ----- run ----------------------------------------------------------------------------------------
    def start(self, preview: bool = False) -> int | None:
        """Snapshot photo, mask and settings, and start a run (the previous one, if any, is stopped).

        A new run clears the kept iterates: unsaved ones are asked about first (Save / Discard / Cancel). A run
        that does not fit in memory asks for a working size (downscale, crop around the damage, or tiles at
        full resolution). With a time budget (beside Start) or ``preview``, a smaller working size and fewer
        iterations are chosen to fit it (timed on the estimate's helper thread while Start waits, when not
        cached), the status bar says what was reduced, and the run is also stopped by the clock. Cancel at
        any of these returns None and changes nothing."""
        if self.photo is None or self.estimates.waiting:  # waiting: a Start already waits for a timing
            return None
        timed = None
        try:
            cfg = self.settings_panel.config()
            mask = self.session.mask if cfg.task == Task.INPAINT else None
            photo, second = self.photo, self.session.second()
            problem = self.estimates.made_off_gui(
                lambda: build_problem(photo, cfg.task, cfg.factor, mask, cfg.task_params, second), cfg.task
            )
            if not self.confirm_discard("Starting a new run"):
                return None
            self.noise_note = None if problem.noise_sigma is None else NoiseEstimate(problem.noise_sigma).describe()
            keep = self.estimates.keeps_size(problem.task, preview)  # the pre-image with a time budget
            working = self.working_size.fit_to_memory(problem, cfg, keep_size=keep)
            if working is None:
                return None
            timed = self.estimates.time_plan(problem, cfg, working, preview)
            if timed is not None:
                working = timed.working
            if working.mode not in (WorkingMode.FULL, WorkingMode.TILES):  # a smaller copy, the target remade
                whole, size = problem, working
                problem = self.estimates.made_off_gui(lambda: working_problem(whole, size), cfg.task)
            self.estimates.before_run()  # a timing still going would take the run's cores (and mis-measure)
        except StartCancelled:
            return None
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot start")
            return None
        self.session.set_settings(cfg)  # the dock keeps the person's settings; the run gets the plan's budget
        cfg = cfg if timed is None else timed.config(cfg)
        self.session.begin_run(cfg, working, mask)
        h, w = problem.size
        entry = h * w * problem.channels * 2
        tiles = working.tiles if working is not None and working.mode == WorkingMode.TILES else None
        total = cfg.iterations * (tiles.count if tiles is not None else 1)  # on tiles: counted over the photo
        expected = timed.step_seconds if timed is not None else self.estimates.expected_step_s(problem.size)
        # the steps' PSNR is the network output's: where Save result writes another image, say so, and measure
        # the written image's at the rule's pick and at the end (_score_result)
        has_gt = problem.ground_truth is not None
        self._score_written = has_gt and self._saves_other_pixels()
        whose = "network output" if self._score_written else ""
        self._next_score = 0.0
        self.status.begin(total, has_gt, expected, whose)
        self.curves.set_budget(total)
        self.curves.set_psnr_source(whose)
        self.recon_view.set_title("Restored — starting…" + self.working_size.note())
        run_id = self.controller.start(
            problem,
            cfg,
            keep=KeepSchedule.for_size(entry, self.history.cap_bytes),
            thumb_side=self.history.thumb_side,
            tiles=tiles,
        )
        if timed is not None:
            self.controller.set_time_limit(timed.seconds)
            what = "Preview" if preview else "Time budget"
            self.statusBar().showMessage(f"{what}: {timed.message}.", 20000)
        return run_id

    def _on_run_cleared(self) -> None:
        self._sync_timer.stop()
        self.status.clear()  # the let-go run's iteration and PSNR must not stay beside a new photo or task
        self.statusBar().clearMessage()  # nor its "Run finished..." message
        self.curves.clear()
        self.timeline.clear()
        self._last_frame = None
        self.last_summary = None
        self._score_written = False
        self.update_actions()

    def _on_history_changed(self) -> None:
        if not self._sync_timer.isActive():
            self._sync_timer.start()

    def toggle_pause(self) -> None:
        if self.controller.state == RunState.RUNNING:
            self.controller.pause()
        elif self.controller.state == RunState.PAUSED:
            self.controller.resume()

    def stop(self) -> None:
        self.controller.stop()

    def set_live_average(self, on: bool) -> None:
        self.controller.set_live_view(Iterate.AVERAGE if on else Iterate.RAW)

    def update_actions(self, *_: object) -> None:
        state = self.controller.state
        a = self.acts
        a.start.setEnabled(state == RunState.IDLE and self.photo is not None)
        a.pause.setEnabled(state in (RunState.RUNNING, RunState.PAUSED))
        a.pause.setText("Resume" if state == RunState.PAUSED else "Pause")
        a.stop.setEnabled(state in (RunState.RUNNING, RunState.PAUSED))
        a.save.setEnabled(self.history.result_key() is not None)
        a.export_csv.setEnabled(self.session.curves.n > 0)
        self.status.set_state(state)
        self._update_mask_note()

    def _on_run_status(self, message: str) -> None:
        """What the run does before its first step: measuring the speed settings (the first run at a size)."""
        self.statusBar().showMessage(message.capitalize() + " (the first run at this size; remembered after)")

    def _on_run_started(self, device: str) -> None:
        if self.statusBar().currentMessage().startswith("Measuring speed"):
            self.statusBar().clearMessage()
        self.status.set_device(device)
        self.recon_view.set_title("Restored — live" + self.working_size.note())

    def _on_reports(self, reports: list) -> None:
        self.session.add_reports(reports)
        self.status.update(reports[-1])

    def _on_frame(self, iteration: int, rgba: np.ndarray) -> None:
        self._last_frame = rgba
        if self.timeline.is_live():
            # the title names the frame's own iteration (frames come at most ~10 a second, and the view under
            # the title repaints for the new frame anyway)
            self._show_result(rgba, f"Restored — live, iteration {iteration}")

    def _on_kept(self, item: KeptImage) -> None:
        self.session.keep(item.kind, item.iteration, item.pixels, item.average, item.thumb)
        if item.kind == Iterate.PICK:
            self._score_result()

    def _saves_other_pixels(self) -> bool:
        """Whether Save result writes other pixels than the run's network output, whose PSNR the steps report:
        an inpainting run keeps the photo's known pixels, or works on a crop or a downscale of the photo."""
        s = self.session
        if s.working_mask is None or s.working is None:
            return False
        return s.result_seam() is not None or s.working.mode != WorkingMode.FULL

    def _score_result(self, force: bool = False) -> None:
        """Measure the PSNR of what Save result writes (:meth:`~rwgui.core.session.Session.result_pixels`, the
        function Save result uses) and show it in the status bar and on the PSNR plot, where the steps report
        another image's. At the rule's pick while the run goes, at most a tenth of the time (the composite is
        computed on this thread, tenths of a second for a large photo), and always at the end (``force``)."""
        photo = self.photo
        key = self.history.result_key()
        if not self._score_written or key is None or photo is None or photo.ground_truth is None:
            return
        now = time.monotonic()
        if not force and now < self._next_score:
            return
        pixels = self.session.result_pixels(key)
        if pixels is None or pixels.shape != photo.ground_truth.shape:
            return
        value = psnr(pixels, photo.ground_truth)
        self._next_score = now + 10.0 * (time.monotonic() - now)
        iteration = self.history.entry(key).iteration
        self.status.show_written(iteration, value)
        self.curves.set_written((iteration, value))

    def _on_finished(self, s: RunSummary) -> None:
        self.last_summary = s
        self._sync_timer.stop()
        self.curves.redraw()
        self.timeline.sync()
        why = _WHY.get(s.reason, f"ended ({s.reason})")
        pick = f"; the rule's pick is iteration {s.pick_iteration}" if s.pick_iteration else ""
        self.status.finish(s)
        self._score_result(force=True)  # the result Save result writes, at the end: its PSNR beside the output's
        self.statusBar().showMessage(f"Run {why} after {s.iterations} iterations{pick}.", 15000)
        key = self.history.result_key()
        if key is not None and self.timeline.is_live():
            self.timeline.view(key)  # offer the rule's pick (the average there) as the result
        self.update_actions()

    def _on_failed(self, message: str) -> None:
        self.show_error(
            message + "\n\nThe photo, the mask and the iterates kept so far are still here.", "The run failed"
        )

    def _on_result_taken(self, result: LabResult) -> None:
        """A Lab result became the session's: show it as the result (the settings dock is left alone)."""
        self.timeline.sync()
        key = self.history.result_key()
        if key is not None:
            self.timeline.view(key)  # the timeline names what the restored pane shows: the Lab's result
        rgba = rgba8_for_display(result.image)
        self._show_result(
            rgba if key is None else self._result_rgba(key, rgba),
            f"Restored — from the Lab: {result.variant_label}, iteration {result.pick_iteration}",
        )
        self.status.show_result("Lab result", result.pick_iteration, result.psnr)
        self.update_actions()

    # ----- timeline -----------------------------------------------------------------------------------
    def _show_result(self, rgba: np.ndarray, title: str) -> None:
        self.recon_view.set_image(rgba)
        self.recon_view.set_title(title + self.working_size.note())
        if self.stack.currentIndex() == 1 and self._compare_pair is None:
            self.compare_view.set_image(rgba)

    _compare_pair: tuple | None = None

    def _on_viewed(self, key) -> None:
        if key is None:
            self.curves.set_cursor(None)
            if self._last_frame is not None:
                self._show_result(self._last_frame, "Restored — live")
            return
        e = self.history.entry(key)
        self.curves.set_cursor(e.iteration)
        label = self.history.label(key)
        rgba = self.history.rgba(key)
        if key == self.history.result_key():
            label = "result: " + label[:1].lower() + label[1:]
            rgba = self._result_rgba(key, rgba)
        self._show_result(rgba, f"Restored — {label}")

    def _result_rgba(self, key, rgba: np.ndarray) -> np.ndarray:
        """The result as Save result writes it where the view holds the whole photo: an inpainting run at full
        size shows the known pixels kept (a crop or a downscale shows the working size as it is)."""
        s = self.session
        working, mask = s.working_for(key)
        if working is None or working.mode != WorkingMode.FULL or mask is None:
            return rgba
        pixels = s.result_pixels(key)
        return rgba if pixels is None else rgba8_for_display(pixels)

    def _on_chosen(self, key) -> None:
        """The session's result was chosen (the timeline's "Keep this one" / "Use rule's pick")."""
        self.timeline.sync()
        rk = self.history.result_key()
        if rk is not None:
            self.statusBar().showMessage(f"Result: {self.history.label(rk)}. Save result writes it.", 8000)
            if self.timeline.current() == rk:
                self._on_viewed(rk)
            self._score_result(force=True)  # the PSNR beside the image is the chosen result's
        self.update_actions()

    def _on_dirty_changed(self, dirty: bool) -> None:
        self.setWindowModified(dirty)

    def _on_pin_changed(self, iteration: int, on: bool) -> None:
        self.timeline.sync()

    def _on_compare_requested(self, a, b) -> None:
        self._compare_pair = (a, b)
        self.compare_view.set_images(self.history.rgba(a), self.history.rgba(b))
        self.compare_view.set_title(f"◀ {self.history.label(a)}  |  {self.history.label(b)} ▶")
        with QSignalBlocker(self.acts.compare):
            self.acts.compare.setChecked(True)
        self.stack.setCurrentIndex(1)
        self.compare_view.fit()

    def set_compare(self, on: bool) -> None:
        """Before/after split: the damaged photo against what the right view shows."""
        self._compare_pair = None
        after = self.recon_view.image() if on else None
        before = self.working_size.compare_before(self.photo_view.image()) if after is not None else None
        if after is not None and before is not None:
            self.compare_view.set_images(before, after)
            self.compare_view.set_title("◀ damaged photo  |  restored ▶")
        self.stack.setCurrentIndex(1 if on else 0)
        if on:
            self.compare_view.fit()

    def _shown_view(self) -> ImagePane:
        """The view Fit and 1:1 act on: the compare view while it is shown, else the photo view (the restored
        view follows it)."""
        return self.compare_view if self.stack.currentIndex() == 1 else self.photo_view

    def view_fit(self) -> None:
        self._shown_view().fit()

    def view_one_to_one(self) -> None:
        self._shown_view().one_to_one()

    # ----- closing ---------------------------------------------------------------------------------------
    def closeEvent(self, ev) -> None:
        """Ask about unsaved work (Cancel keeps the window open), then stop the run cleanly (request stop, quit,
        wait) and remember the layout and settings."""
        if not self.confirm_discard("Quitting"):
            ev.ignore()
            return
        t0 = time.perf_counter()
        self.files.save_window(self, self.settings_panel)
        self.controller.shutdown()
        self.lab.shutdown()
        self.why_it_works.shutdown()
        self.estimates.shutdown()
        self._sync_timer.stop()
        self.sessions.close()  # a clean exit: the autosave is not offered next time
        if self.error_box is not None:
            self.error_box.close()
        self.statusBar().showMessage(f"closed in {time.perf_counter() - t0:.2f} s")
        super().closeEvent(ev)
