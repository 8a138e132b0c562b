"""The Help menu: shortcuts listed from the actions themselves, tasks and priors from the registries, files, About."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAction, QKeySequence

from rwgui.core.lossprior import LOSS_PRIORS
from rwgui.core.priors import PRIORS
from rwgui.core.stopping import STOPPING_RULES
from rwgui.core.vocabulary import Task
from rwgui.gui import help as helpmod

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _menu_titles(win) -> list[str]:
    return [a.text().replace("&", "") for a in win.menuBar().actions()]


def test_help_menu_exists_with_its_entries(window):
    assert "Help" in _menu_titles(window)
    texts = [a.text().replace("&", "") for a in window.acts.help_menu.actions() if a.text()]
    assert texts == ["Keyboard shortcuts", "Tasks and priors", "Files and folders", "About rwgui"]


def test_shortcuts_dialog_lists_every_action_with_a_shortcut(qtbot, window):
    window.acts.help_menu.actions()[0].trigger()
    dialog = window._help_dialog
    qtbot.addWidget(dialog)
    table = dialog.table
    listed = {(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())}
    expected = set()
    for act in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts() if not k.isEmpty()]
        if keys:
            expected.add((act.text().replace("&", "").rstrip("…").strip(), ", ".join(keys)))
    assert expected and expected <= listed
    names = {name for name, _ in listed}
    assert {"Rectangle", "Lasso", "Grow", "Shrink", "Feather", "Start", "Keyboard shortcuts"} <= names
    assert any("[" in keys for _, keys in listed)  # the canvas's own keys too


def test_a_new_action_appears_without_editing_a_list(window):
    act = QAction("Brand new thing", window)
    act.setShortcut(QKeySequence("Ctrl+Alt+N"))
    assert any(row[0] == "Brand new thing" for row in helpmod.shortcut_rows(window))


def test_topics_name_every_task_prior_loss_prior_and_stopping_rule():
    text = helpmod.topics_html()
    for registry in (PRIORS, LOSS_PRIORS, STOPPING_RULES):
        for variant in registry:
            assert f"<b>{variant.name}</b>" in text
    assert set(helpmod.TASK_HELP) == set(Task)


def test_files_and_about(window, monkeypatch, tmp_path):
    import torch

    import rwgui

    files = helpmod.files_html(window)
    assert str(window.sessions.folder) in files and "RWGUI_DATA_DIR" in files
    about = helpmod.about_html(window)
    assert rwgui.__version__ in about and torch.__version__ in about and "Qt" in about and "Device" in about
    for act in window.acts.help_menu.actions()[1:]:
        if act.text():
            act.trigger()
            assert window._help_dialog.isVisible()
            window._help_dialog.close()


def test_no_two_actions_share_a_shortcut(window):
    """Qt runs neither of two actions bound to the same keys ("ambiguous shortcut"), so each keys once."""
    owners: dict[str, list[str]] = {}
    for act in window.findChildren(QAction):
        for k in act.shortcuts():
            if not k.isEmpty():
                owners.setdefault(k.toString(), []).append(act.text())
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}
