"""The window's sessions: File > Save session / Open session, autosave while working, recovery after a crash.

:class:`SessionKeeper` is a collaborator of :class:`~rwgui.gui.main_window.MainWindow` (like the Lab hookup):
the file format and the autosave's timing live in the Qt-free core (:mod:`rwgui.core.session_file`,
:mod:`rwgui.core.autosave`); this module connects them to the window.

* Saving writes a snapshot of the session; opening reads and checks the whole file first, so a file that cannot
  be opened shows what is wrong and leaves the open session as it was. Unsaved work is asked about (the
  window's :meth:`confirm_discard`) before an opened session replaces it.
* Autosave follows the session's events: a person's change (mask, pin, chosen result, settings, Lab result)
  makes a write due a few seconds later, a run's progress at most every 30 s
  (:data:`~rwgui.core.autosave.RUN_INTERVAL_S`). A single-shot QTimer fires when the write is due; the GUI
  thread only takes the snapshot (cheap) and the autosave's own thread writes it.
* Recovery: at start, an autosave left by a studio that did not close cleanly is offered in a window-modal
  question (Recover / Discard) that does not block the event loop; tests answer it with :meth:`answer_recovery`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QStandardPaths, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from ..core.autosave import LOCK, Autosave, Recoverable, data_dir, discard, find_recoverable
from ..core.errors import RwguiError
from ..core.session_file import SUFFIX, SessionData, apply_session, read_session, write_session

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["SessionKeeper"]

SESSION_FILTER = f"rwgui session (*{SUFFIX})"


class SessionKeeper(QObject):
    """Save and open sessions, autosave, and offer recovery, for one window."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.session = win.session
        self.folder = data_dir(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
        self.autosave = Autosave(self.folder)
        self.recovery_box: QMessageBox | None = None
        self.recovering: Recoverable | None = None
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._write_due)
        self._started = False

    # ----- save and open -------------------------------------------------------------------------------
    def save_session(self, path: str | Path) -> bool:
        """Write the whole session to ``path`` (``.rwgui`` is added when it has no suffix)."""
        p = Path(path)
        if not p.suffix:
            p = p.with_suffix(SUFFIX)
        if self.session.photo is None:
            self.win.show_error("Nothing to save: open a photo first.", "Cannot save the session")
            return False
        try:
            write_session(p, SessionData.snapshot(self.session))
        except RwguiError as exc:
            self.win.show_error(str(exc), "Cannot save the session")
            return False
        self.session.mark_saved()
        self.win.statusBar().showMessage(f"Session saved to {p}", 8000)
        return True

    def open_session(self, path: str | Path, ask: bool = True) -> bool:
        """Open a saved session: read and check it, ask about unsaved work, then put it in place."""
        try:
            data = read_session(path)
        except RwguiError as exc:
            self.win.show_error(str(exc), "Cannot open the session")
            return False
        if ask and not self.win.confirm_discard("Opening a session"):
            return False
        self.adopt(data)
        self.win.statusBar().showMessage(f"Opened the session {path}", 8000)
        return True

    def adopt(self, data: SessionData, unsaved: bool = False) -> None:
        """Make the window show ``data``: the session takes it (its views follow) and the canvas its mask.
        ``unsaved``: the work is in no file of the person's (a recovered autosave), so quitting asks."""
        w = self.win
        if w.controller.is_busy():
            w.controller.abandon()
        apply_session(self.session, data, unsaved=unsaved)
        if data.mask is not None:
            try:
                w.photo_view.set_mask(data.mask)  # the canvas edits the mask; it hands the session a copy
            except RwguiError:
                pass  # a mask the current view cannot show (another task's size): the session keeps it
        if data.run_config is not None:
            w.curves.set_budget(data.run_config.iterations)
        w.curves.redraw()
        w.timeline.sync()
        key = w.history.result_key()
        if key is not None:
            w.timeline.view(key)
        w.update_actions()

    def ask_save_session(self) -> None:
        photo = self.session.photo
        stem = Path(photo.path).stem if photo is not None and photo.path else "session"
        folder = Path(self.win.files.last_folder())
        path, _ = QFileDialog.getSaveFileName(
            self.win, "Save the session", str(folder / (stem + SUFFIX)), SESSION_FILTER
        )
        if path:
            self.win.files.set_last_folder(str(Path(path).parent))
            self.save_session(path)

    def ask_open_session(self) -> None:
        folder = self.win.files.last_folder()
        path, _ = QFileDialog.getOpenFileName(self.win, "Open a session", folder, f"{SESSION_FILTER};;All files (*)")
        if path:
            self.win.files.set_last_folder(str(Path(path).parent))
            self.open_session(path)

    # ----- autosave ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Claim an autosave slot, follow the session, and offer what a crashed studio left."""
        if self._started:
            return
        self._started = True
        try:
            self.autosave.start()
        except OSError as exc:
            self.win.statusBar().showMessage(f"Autosave is off: cannot write to {self.folder} ({exc})", 15000)
            return
        s = self.session
        for sig in (
            s.photo_changed,
            s.ground_truth_changed,
            s.mask_changed,
            s.settings_changed,
            s.lab_results_changed,
            s.result_taken,
            s.result_chosen,
            s.pin_changed,
        ):
            sig.connect(self._edited)
        s.history_changed.connect(self._history_changed)
        s.curves_changed.connect(self._ran)
        self.offer_recovery()

    def close(self) -> None:
        """A clean exit: the autosave goes (nothing will be offered next time)."""
        self._timer.stop()
        if self._started:
            self.autosave.close()

    def _worth_saving(self) -> bool:
        """Only what a person made is autosaved: kept images or a painted hole (a photo alone is its file)."""
        s = self.session
        if s.photo is None:
            return False
        return len(s.history) > 0 or (s.mask is not None and bool((s.mask < 0.5).any()))

    def _edited(self, *_: object) -> None:
        self._changed(False)

    def _ran(self, *_: object) -> None:
        self._changed(True)

    def _history_changed(self) -> None:
        self._changed(self.win.controller.is_busy())

    def _changed(self, during_run: bool) -> None:
        self.autosave.changed(during_run)
        self._schedule()

    def _schedule(self) -> None:
        secs = self.autosave.seconds_due()
        if secs is None:
            return
        ms = int(secs * 1000) + 1
        if not self._timer.isActive() or self._timer.remainingTime() > ms:
            self._timer.start(ms)

    def _write_due(self) -> None:
        if self.autosave.last_error:
            self.win.statusBar().showMessage(f"Autosave failed: {self.autosave.last_error}", 10000)
        if not self._worth_saving():
            self.autosave.clear()
            return
        self.autosave.save(SessionData.snapshot(self.session))

    def autosave_now(self, wait: float | None = None) -> bool:
        """Write the autosave now (tests; a window about to be left); with ``wait``, until it is on disk."""
        self._timer.stop()
        self._write_due()
        return self.autosave.wait(wait) if wait is not None else True

    # ----- recovery ------------------------------------------------------------------------------------
    def offer_recovery(self) -> Recoverable | None:
        """Ask about the newest autosave a crashed studio left (window-modal, answered later), if any."""
        found = find_recoverable(self.folder)
        if not found:
            return None
        rec = self.recovering = found[0]
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Recover your work?",
            "rwgui did not close cleanly last time. Its autosaved session can be recovered:",
            parent=self.win,
        )
        box.setInformativeText(f"{rec.description}\n\n{rec.path}")
        recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(recover)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.buttonClicked.connect(lambda b: self.answer_recovery(b is recover))
        self.recovery_box = box
        box.open()
        return rec

    def answer_recovery(self, recover: bool) -> bool:
        """Recover (True) or discard (False) the autosave offered; then offer the next one, if any.

        A recovered session is autosaved in this window's slot at once, and the old slot removed; one that
        cannot be read shows why and stays on disk (its lock removed, so it is not offered again)."""
        rec, box = self.recovering, self.recovery_box
        self.recovering, self.recovery_box = None, None
        if box is not None:  # hide, not close: a message box without an escape button ignores close()
            box.hide()
            box.deleteLater()
        if rec is None:
            return False
        ok = False
        if recover:
            try:
                data = read_session(rec.path)
            except RwguiError as exc:
                self.win.show_error(f"{exc}\n\nThe file stays at {rec.path}.", "Cannot recover the session")
                try:
                    os.remove(rec.slot / LOCK)
                except OSError:
                    pass
                return False
            self.adopt(data, unsaved=True)
            self.autosave_now()
            ok = True
            self.win.statusBar().showMessage(f"Recovered: {rec.description}", 10000)
        discard(rec.slot)
        self.offer_recovery()
        return ok
