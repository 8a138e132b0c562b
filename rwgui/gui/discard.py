"""Ask before an action throws away unsaved work: Save / Discard / Cancel, in one place.

A run can take hours and a person picks and pins iterates by hand, so quitting, opening another photo,
changing the task (which re-makes the sample and clears the timeline) or starting a new run (which clears the
timeline for its own iterates) must not drop kept iterates or a chosen result silently. What counts as unsaved
is the session's (:attr:`~rwgui.core.session.Session.dirty`); this module only asks.
:meth:`DiscardGuard.confirm` is the one entry point every discarding action calls, and :meth:`DiscardGuard.ask`
the one place a modal box is shown (tests replace that method, as they replace
:meth:`~rwgui.gui.working.WorkingSize.choose_working_size`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget

from ..core.session import Session

__all__ = ["DiscardGuard", "discard_box"]

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


def discard_box(parent: QWidget | None, action: str) -> tuple[QMessageBox, dict[QAbstractButton, str]]:
    """The question, not yet shown, and which choice each button means ('save', 'discard', 'cancel').

    ``action`` names what is about to happen, as the start of a sentence ("Quitting", "Opening another photo").
    """
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "Unsaved result",
        "The result and the kept iterates of this run have not been saved.",
        parent=parent,
    )
    box.setInformativeText(f"{action} throws them away. Save the result first?")
    B = QMessageBox.StandardButton
    buttons = {SAVE: box.addButton(B.Save), DISCARD: box.addButton(B.Discard), CANCEL: box.addButton(B.Cancel)}
    box.setDefaultButton(buttons[SAVE])
    box.setEscapeButton(buttons[CANCEL])
    return box, {b: c for c, b in buttons.items()}


class DiscardGuard:
    """Asks before the window's discarding actions when the session holds unsaved work.

    ``save`` runs Save result (a file dialog, then the write); the save counts only when it marks the session
    saved, so a cancelled dialog or a failed write cancels the action too."""

    def __init__(self, session: Session, parent: QWidget, save: Callable[[], object]) -> None:
        self.session = session
        self.parent = parent
        self.save = save
        self.asked: list[str] = []  # every question asked, in order (what the status line and tests can read)

    def ask(self, action: str) -> str:
        """The person's answer to the modal question: 'save', 'discard' or 'cancel' (tests replace this)."""
        box, choices = discard_box(self.parent, action)
        box.exec()
        return choices.get(box.clickedButton(), CANCEL)

    def confirm(self, action: str) -> bool:
        """True when ``action`` may go ahead: nothing unsaved, Discard, or Save and the save succeeded."""
        if not self.session.dirty:
            return True
        self.asked.append(action)
        choice = self.ask(action)
        if choice == SAVE:
            self.save()
            return not self.session.dirty
        return choice == DISCARD
