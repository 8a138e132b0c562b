"""Puts the Lab (compare prior variants on this photo) into the main window: a floating dock, a menu
action, and the Lab's results into the session. Kept apart so the window stays wiring only.

The Lab reads the session's photo and mask and the settings dock's settings when it opens (a problem whose
making runs a network, the pre-image's, is built on the estimate's helper thread while the window waits, as
Start builds it: ``made_off_gui``); what it hands back goes into the session
(:meth:`~rwgui.core.session.Session.take_lab_result`), which the window follows. Taking a result adds it to the
timeline next to the main run's iterates (nothing is thrown away, so nothing needs asking) and changes no setting;
the Lab's "Use its settings" button is the one way its settings reach the window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu

from ..core.errors import RwguiError
from ..core.problems import Problem
from ..core.session import LabResult, Session
from ..core.vocabulary import Task, WorkingMode
from ..core.working_size import Working, working_problem
from .document import build_problem
from .estimate_view import StartCancelled
from .lab import LabPanel
from .settings_dock import SettingsPanel
from .working import WorkingSize


class LabHookup(QObject):
    """Owns the Lab panel of one main window; its slots run in the GUI thread."""

    def __init__(
        self,
        session: Session,
        window: QMainWindow,
        menu: QMenu,
        settings: SettingsPanel,
        working_size: WorkingSize,
        *,
        run_busy: Callable[[], bool],
        show_error: Callable[[str, str], None],
        made_off_gui: Callable[[Callable[[], Problem], str], Problem],
    ) -> None:
        super().__init__(window)
        self.session = session
        self.settings = settings
        self.working_size = working_size
        self.run_busy = run_busy
        self.show_error = show_error
        # builds a problem, on the estimate's helper thread when that runs a network (EstimateHookup.made_off_gui)
        self.made_off_gui = made_off_gui
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
        menu.addAction(self.action)
        self.panel.result_chosen.connect(self.take_result)
        self.panel.settings_chosen.connect(self.take_settings)
        self.panel.results_changed.connect(self._on_results_changed)
        # the working size the Lab's problem was made at, and the mask it started with
        self._working: tuple[Working | None, np.ndarray | None] = (None, None)

    def open(self) -> None:
        s = self.session
        if s.photo is None:
            return
        try:
            cfg = self.settings.config()
            mask = s.mask if cfg.task == Task.INPAINT else None
            photo, second = s.photo, s.second()
            problem = self.made_off_gui(
                lambda: build_problem(photo, cfg.task, cfg.factor, mask, cfg.task_params, second), cfg.task
            )
            if self.panel.is_running():  # it keeps its photo; set_problem says so in the Lab
                self.panel.set_problem(problem, cfg)
                self.dock.show()
                return
            # the same offer as Start: a photo too big for memory is compared at a working size that fits
            working = self.working_size.fit_to_memory(problem, cfg, tiles=False)
            if working is None:
                return
            if working.mode != WorkingMode.FULL:  # a smaller copy: the pre-image's target is computed again
                whole = problem
                problem = self.made_off_gui(lambda: working_problem(whole, working), cfg.task)
        except StartCancelled:  # the person cancelled the wait for the classifier: the Lab is left as it was
            return
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot open the Lab")
            return
        if self.panel.set_problem(problem, cfg):  # refused (with a note in the Lab) while its queue runs
            self._working = (working, mask)
        self.dock.show()
        self.dock.raise_()

    def take_result(self, result: LabResult) -> bool:
        """Add ``result`` to the session's timeline as its result (Save result writes it, pasted back into the
        full photo when the Lab ran on a crop); the main run's iterates stay. The window's settings stay too."""
        if self.run_busy():
            self.show_error("Stop the current run before taking a result from the Lab.", "Lab")
            return False
        self.session.take_lab_result(result, *self._working)
        return True

    def take_settings(self, result: LabResult) -> None:
        """The person asked for this variant's settings: the session takes them and the dock follows."""
        self.session.set_settings(result.config)

    def _on_results_changed(self) -> None:
        self.session.set_lab_results(self.panel.lab_results())

    def shutdown(self) -> None:
        self.panel.shutdown()
