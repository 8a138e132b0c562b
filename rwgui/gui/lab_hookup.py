"""Puts the Lab (compare prior variants on this photo) into the main window: a floating dock, a menu
action, and taking a Lab result as the window's result. Kept apart so the window stays wiring only."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget

from ..core.errors import RwguiError
from ..core.history import rgba8
from ..core.working_size import Working, working_problem
from .document import build_problem
from .lab import LabPanel


class LabHookup(QObject):
    """Owns the Lab panel of one main window; its slots run in the GUI thread."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.panel = LabPanel()
        self.dock = QDockWidget("Lab — compare variants on this photo", window)
        self.dock.setObjectName("lab_dock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.setFloating(True)  # it wants ~1200x750: its own window until the person docks it
        self.dock.resize(1300, 800)
        self.dock.hide()
        self.action = QAction("&Lab…", window)
        self.action.setShortcut(QKeySequence("Ctrl+L"))
        self.action.setStatusTip("Compare priors, loss priors and stopping rules on this photo")
        self.action.triggered.connect(self.open)
        window.acts.view_menu.addAction(self.action)
        self.panel.result_chosen.connect(self._on_result)
        self._working: tuple[Working | None, object] = (None, None)  # the Lab's working size, and its mask

    def open(self) -> None:
        w = self.window
        if w.photo is None:
            return
        try:
            cfg = w.settings_panel.config()
            mask = w.photo_view.mask() if cfg.task == "inpaint" else None
            problem = build_problem(w.photo, cfg.task, cfg.factor, mask)
            if self.panel.is_running():  # it keeps its photo; set_problem says so in the Lab
                self.panel.set_problem(problem, cfg)
                self.dock.show()
                return
            # the same offer as Start: a photo too big for memory is compared at a working size that fits
            working = w.fit_to_memory(problem, cfg)
            if working is None:
                return
            problem = working_problem(problem, working)
        except RwguiError as exc:
            w.show_error(str(exc), "Cannot open the Lab")
            return
        if self.panel.set_problem(problem, cfg):  # refused (with a note in the Lab) while its queue runs
            self._working = (working, mask)
        self.dock.show()
        self.dock.raise_()

    def _on_result(self, payload: object) -> None:
        w = self.window
        cfg, image = payload  # type: ignore[misc]
        if w.controller.is_busy():
            w.show_error("Stop the current run before taking a result from the Lab.", "Lab")
            return
        info = self.panel.last_choice
        w.settings_panel.set_config(cfg)
        w.run_config = cfg
        w.history.clear()
        w.curves.clear()
        w.timeline.clear()
        w.set_working(*self._working)  # Save result pastes a crop back, as after a run at that size
        w.history.set_average(info["pick_iteration"], image)  # the result key: Save result writes it
        w.timeline.sync()
        w._show_result(rgba8(image), f"Restored — from the Lab: {info['variant']}, iteration {info['pick_iteration']}")
        w.update_actions()

    def shutdown(self) -> None:
        self.panel.shutdown()
