"""The Help menu: keyboard shortcuts, what the tasks and priors are for, where files live, and About.

Why everything here is generated: a hand-written list of shortcuts or priors goes stale the day an action or a
registry entry is added. The shortcuts come from the window's actions (and the canvas's own keys,
:attr:`~rwgui.gui.canvas.MaskCanvas.KEYS`); the priors, loss priors and stopping rules from their registries'
help texts; the tasks from :class:`~rwgui.core.vocabulary.Task` with :data:`TASK_HELP`.
"""

from __future__ import annotations

import html
import platform
import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..core.tasks import TASK_SPECS
from ..core.vocabulary import Task

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["TASK_HELP", "build_help_menu", "shortcut_rows", "topics_html", "files_html", "about_html"]

#: What each task is for (the registries carry their own help; the tasks are an enum).
TASK_HELP: dict[Task, str] = {
    Task.DENOISE: "Remove noise and grain: the network is fitted to the noisy photo and, stopped in time, "
    "reproduces the picture before it reproduces the noise.",
    Task.SR: "Enlarge a photo by an integer factor: the network's output, shrunk by the factor, must match the "
    "photo, and its structure fills in the detail between the pixels.",
    Task.INPAINT: "Fill holes, scratches and unwanted objects: paint them red with the mask tools; the network "
    "is fitted to the known pixels only and invents the holes from what surrounds them.",
}

#: Every other task's help text comes from the task registry (adding a task touches no code here).
TASK_HELP.update({t: spec.help for t, spec in TASK_SPECS.items() if t not in TASK_HELP})


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def shortcut_rows(win: QWidget) -> list[tuple[str, str, str]]:
    """(action, keys, what it does) for every action of ``win`` that has a shortcut, then the canvas's own keys.

    Read from the actions themselves, so that a new action with a shortcut is listed without editing a list."""
    from .canvas import MaskCanvas

    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for act in win.findChildren(QAction):
        keys = [k for k in act.shortcuts() if not k.isEmpty()]
        if not keys:
            continue
        text = _plain(act.text()).rstrip("…").strip()
        shown = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
        if (text, shown) in seen:
            continue
        seen.add((text, shown))
        tip = act.toolTip()
        rows.append((text, shown, "" if _plain(tip).rstrip("…").strip() == text else tip))
    rows.sort(key=lambda r: r[0].lower())
    rows += [(what, keys, "On the photo, while painting the mask") for keys, what in MaskCanvas.KEYS]
    return rows


class ShortcutsDialog(QDialog):
    """A table of every shortcut (see :func:`shortcut_rows`)."""

    def __init__(self, win: QWidget) -> None:
        super().__init__(win)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(win)
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["Action", "Keys", "What it does"])
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(text)
                self.table.setItem(i, j, item)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        _dialog_layout(self, self.table)
        self.resize(900, 620)


def _section(title: str, entries: list[tuple[str, str]]) -> str:
    items = "".join(f"<dt><b>{html.escape(n)}</b></dt><dd>{html.escape(h)}</dd>" for n, h in entries)
    return f"<h3>{html.escape(title)}</h3><dl>{items}</dl>"


def topics_html() -> str:
    """What the tasks, priors, loss priors and stopping rules are for, from their own help texts."""
    from ..core.lossprior import LOSS_PRIORS
    from ..core.priors import PRIORS
    from ..core.stopping import STOPPING_RULES
    from ..core.tasks import TASK_SPECS
    from .settings_dock import TASK_LABELS

    tasks = [(TASK_LABELS.get(t, str(t)), TASK_HELP.get(t, TASK_SPECS[t].help)) for t in Task]
    return (
        "<p>rwgui restores one photo with <i>Deep Image Prior</i>: an untrained network is fitted to that photo "
        "alone, and its structure prefers natural images to noise and damage. Choose the task and the prior in "
        "the Settings panel; the Lab compares several settings side by side.</p>"
        + _section("Tasks", tasks)
        + _section("Priors (the network)", [(v.name, v.help) for v in PRIORS])
        + _section("Loss priors (an extra term in the loss)", [(v.name, v.help) for v in LOSS_PRIORS])
        + _section("Stopping rules (when the fit is best)", [(v.name, v.help) for v in STOPPING_RULES])
    )


def files_html(win: MainWindow | None = None) -> str:
    """Where autosaves, settings and run reports live."""
    from PySide6.QtCore import QStandardPaths

    from ..core.autosave import DATA_DIR_ENV, SLOTS, data_dir

    folder = getattr(getattr(win, "sessions", None), "folder", None) or data_dir(
        QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    )
    store = getattr(getattr(win, "files", None), "qs", None)
    settings = store.fileName() if isinstance(store, QSettings) else QSettings().fileName()
    e = html.escape
    return (
        f"<h3>Autosaves</h3><p><code>{e(str(folder / SLOTS))}</code><br>The open session is written there "
        "a few seconds after each change and during a run, and offered back after a crash. Set the environment "
        f"variable <code>{DATA_DIR_ENV}</code> to use another folder.</p>"
        f"<h3>Settings</h3><p><code>{e(settings)}</code><br>Window layout, recent files and the last settings.</p>"
        "<h3>Logs and reports</h3><p>The studio keeps no log file: messages appear in the status bar and in "
        "message boxes, and errors also on the terminal that started it. A run's numbers are in "
        "File › Export curves CSV; the command line writes a JSON report with <code>--report FILE</code>.</p>"
    )


def about_html(win: MainWindow | None = None) -> str:
    """Version, Python, torch and Qt versions, and the device runs use."""
    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    from .. import __version__
    from ..core.device import available_devices

    status = getattr(win, "status", None)
    shown = status.device.text() if status is not None and hasattr(status, "device") else ""
    device = shown if shown.strip() else f"{available_devices()[0]} (auto)"
    e = html.escape
    return (
        f"<h2>rwgui {e(__version__)}</h2>"
        "<p>Photo restoration with Deep Image Prior: denoise, enlarge and fill holes in one photo.</p>"
        f"<table><tr><td>Device</td><td>{e(device)}</td></tr>"
        f"<tr><td>Devices here</td><td>{e(', '.join(available_devices()))}</td></tr>"
        f"<tr><td>torch</td><td>{e(torch.__version__)}</td></tr>"
        f"<tr><td>Qt</td><td>{e(qVersion())} (PySide6 {e(PySide6.__version__)})</td></tr>"
        f"<tr><td>Python</td><td>{e(sys.version.split()[0])} on {e(platform.platform(terse=True))}</td></tr>"
        "</table>"
    )


def _dialog_layout(dialog: QDialog, body: QWidget) -> None:
    lay = QVBoxLayout(dialog)
    lay.addWidget(body)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    buttons.rejected.connect(dialog.reject)
    lay.addWidget(buttons)


def text_dialog(parent: QWidget, title: str, body_html: str, size: tuple[int, int] = (760, 600)) -> QDialog:
    """A closable dialog showing ``body_html`` (links open in the browser)."""
    d = QDialog(parent)
    d.setWindowTitle(title)
    view = QTextBrowser(d)
    view.setOpenExternalLinks(True)
    view.setHtml(body_html)
    _dialog_layout(d, view)
    d.resize(*size)
    d.browser = view  # type: ignore[attr-defined]
    return d


def build_help_menu(win: MainWindow) -> QMenu:
    """Add Help › Keyboard shortcuts, Tasks and priors, Files and folders, About to ``win``'s menu bar."""
    menu = win.menuBar().addMenu("&Help")
    menu.setObjectName("help_menu")

    def show(make) -> None:
        dialog = make()
        # kept for tests and so it is not collected while open
        win._help_dialog = dialog
        dialog.show()

    shortcuts = menu.addAction("&Keyboard shortcuts", lambda: show(lambda: ShortcutsDialog(win)))
    shortcuts.setShortcut(QKeySequence("Ctrl+/"))
    shortcuts.setObjectName("help_shortcuts")
    menu.addAction(
        "&Tasks and priors", lambda: show(lambda: text_dialog(win, "What the tasks and priors are for", topics_html()))
    ).setObjectName("help_topics")
    menu.addAction(
        "&Files and folders", lambda: show(lambda: text_dialog(win, "Where files live", files_html(win), (720, 380)))
    ).setObjectName("help_files")
    menu.addSeparator()
    menu.addAction(
        "&About rwgui", lambda: show(lambda: text_dialog(win, "About rwgui", about_html(win), (520, 340)))
    ).setObjectName("help_about")
    return menu
