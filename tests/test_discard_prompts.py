"""Nothing the person made is thrown away without a question: every action that would drop unsaved kept iterates
or a chosen result asks Save / Discard / Cancel first, and the Lab's result is added to the timeline instead of
replacing the run. The window is the real one; the question is answered by replacing ``win.discard.ask`` (the one
place the modal box is shown), so no test blocks on a dialog."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog, QMessageBox

from rwgui.core import imageio
from rwgui.core.imageio import ImageMeta
from rwgui.core.session import LabResult
from rwgui.core.vocabulary import Iterate, Task
from rwgui.gui.discard import discard_box

SIDE = 48


@pytest.fixture
def win(qtbot, make_config):
    """The studio on a small crop of the sample, with a tiny prior and few iterations."""
    from rwgui.gui.main_window import MainWindow

    w = MainWindow(sample_size=SIDE)
    qtbot.addWidget(w)
    w.settings_panel.set_config(make_config(iterations=8))
    w.show()
    return w


def answer(win, choice: str) -> list[str]:
    """Answer every question with ``choice``; the returned list records the actions asked about."""
    asked: list[str] = []

    def ask(action: str) -> str:
        asked.append(action)
        return choice

    win.discard.ask = ask
    return asked


def save_dialog_gives(monkeypatch, path) -> None:
    """The Save result file dialog returns ``path`` ('' = the person cancelled it)."""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))


def keep_iterates(win) -> None:
    """A run's kept iterates, pinned one and the rule's pick, handed to the session as the worker hands them."""
    s = win.session
    s.begin_run(win.current_settings(), None, None)
    rng = np.random.default_rng(0)
    for it in (1, 2, 4, 8):
        s.keep(Iterate.RAW, it, rng.random((SIDE, SIDE, 3)).astype(np.float32))
    img = rng.random((SIDE, SIDE, 3)).astype(np.float32)
    s.keep(Iterate.PICK, 4, img, img)
    s.pin(2)
    assert s.dirty


def state(win) -> tuple:
    """What a cancelled action must leave exactly as it was."""
    h = win.history
    return (
        id(win.photo),
        tuple(h.keys()),
        h.result_key(),
        tuple(i for i in h.iterations() if h.is_pinned(i)),
        win.task(),
        win.session.settings,
        win.session.dirty,
    )


def write_photo(tmp_path) -> str:
    path = tmp_path / "other.png"
    pixels = np.random.default_rng(1).random((40, 36, 3)).astype(np.float32)
    imageio.write_result(path, pixels, ImageMeta(str(path), 8, 3, False, 1, "png"), None)
    return str(path)


def drop(win, path: str) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    ev = QDropEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    win.dropEvent(ev)


#: action name -> (do it, did it happen). Each one throws the run away when it goes ahead.
ACTIONS = {
    "quit": (lambda win, tmp: win.close(), lambda win, before: not win.isVisible()),
    "open": (lambda win, tmp: win.open_file(write_photo(tmp)), lambda win, before: id(win.photo) != before[0]),
    "drop": (lambda win, tmp: drop(win, write_photo(tmp)), lambda win, before: id(win.photo) != before[0]),
    "sample": (lambda win, tmp: win.open_sample("astronaut"), lambda win, before: id(win.photo) != before[0]),
    "task": (lambda win, tmp: win.settings_panel.set_task(Task.SR, 2), lambda win, before: win.task() == Task.SR),
}


@pytest.mark.parametrize("action", ACTIONS)
def test_cancel_keeps_everything(win, tmp_path, action):
    keep_iterates(win)
    before = state(win)
    asked = answer(win, "cancel")
    ACTIONS[action][0](win, tmp_path)
    assert len(asked) == 1
    assert state(win) == before and win.isVisible()
    assert not ACTIONS[action][1](win, before)
    assert win.settings_panel.config() == before[5]  # a cancelled task change puts the dock back too


@pytest.mark.parametrize("action", ACTIONS)
def test_discard_goes_ahead(win, tmp_path, action):
    keep_iterates(win)
    before = state(win)
    asked = answer(win, "discard")
    ACTIONS[action][0](win, tmp_path)
    assert len(asked) == 1 and ACTIONS[action][1](win, before)
    if action != "quit":
        assert len(win.history) == 0 and not win.session.dirty


@pytest.mark.parametrize("action", ACTIONS)
def test_save_writes_the_result_then_goes_ahead(win, tmp_path, monkeypatch, action):
    keep_iterates(win)
    expected = win.session.result_pixels()
    before = state(win)
    out = tmp_path / "saved.png"
    save_dialog_gives(monkeypatch, out)
    asked = answer(win, "save")
    ACTIONS[action][0](win, tmp_path)
    assert len(asked) == 1 and ACTIONS[action][1](win, before)
    assert out.exists()
    np.testing.assert_allclose(imageio.read(out).pixels, expected, atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize("action", ["quit", "open", "task"])
def test_a_cancelled_or_failed_save_cancels_the_action(win, tmp_path, monkeypatch, action):
    keep_iterates(win)
    before = state(win)
    answer(win, "save")
    save_dialog_gives(monkeypatch, "")  # the person closes the file dialog
    ACTIONS[action][0](win, tmp_path)
    assert state(win) == before and win.isVisible()
    save_dialog_gives(monkeypatch, tmp_path / "no-such-folder" / "out.png")  # the write fails
    ACTIONS[action][0](win, tmp_path)
    assert state(win) == before and win.isVisible() and win.last_error is not None
    win.error_box.close()


@pytest.mark.parametrize("action", ACTIONS)
def test_nothing_unsaved_asks_nothing(win, tmp_path, action):
    asked = answer(win, "cancel")
    before = state(win)
    ACTIONS[action][0](win, tmp_path)
    assert asked == [] and ACTIONS[action][1](win, before)


@pytest.mark.parametrize("action", ACTIONS)
def test_after_save_result_nothing_is_asked(win, tmp_path, action):
    keep_iterates(win)
    asked = answer(win, "cancel")
    assert win.save_result(tmp_path / "r.png")
    assert not win.session.dirty and not win.isWindowModified()
    before = state(win)
    ACTIONS[action][0](win, tmp_path)
    assert asked == [] and ACTIONS[action][1](win, before)


def test_a_real_run_is_unsaved_work_until_saved(qtbot, win, tmp_path):
    """The iterates a run keeps make the session dirty (the title gets its star); Cancel keeps the window."""
    asked = answer(win, "cancel")
    with qtbot.waitSignal(win.controller.run_finished, timeout=60000):
        assert win.start() is not None
    assert len(win.history) and win.session.dirty and win.isWindowModified()
    before = state(win)
    win.close()
    assert asked == ["Quitting"] and win.isVisible() and state(win) == before
    assert win.save_result(tmp_path / "r.png")
    win.close()
    assert asked == ["Quitting"] and not win.isVisible()


# ----- Start clears the timeline for its own run: it asks first ---------------------------------------------
START = "Starting a new run"


def test_start_with_unsaved_iterates_asks_and_cancel_keeps_everything(win):
    keep_iterates(win)
    before = state(win)
    asked = answer(win, "cancel")
    assert win.start() is None
    assert asked == [START]
    assert state(win) == before and win.history.is_pinned(2)
    assert win.controller.state == "idle" and win.last_error is None
    win.acts.start.trigger()  # the toolbar's Start asks the same
    assert asked == [START, START] and state(win) == before


def test_start_after_discard_runs_on_an_empty_timeline(qtbot, win):
    keep_iterates(win)
    asked = answer(win, "discard")
    with qtbot.waitSignal(win.controller.run_finished, timeout=60000):
        assert win.start() is not None
    assert asked == [START]
    assert not win.history.is_pinned(2)  # the old run's pin went with its iterates
    assert win.history.iterations()[-1] == 8 and win.last_summary.iterations == 8  # the new run's own


def test_start_after_save_writes_the_result_then_runs(qtbot, win, tmp_path, monkeypatch):
    keep_iterates(win)
    expected = win.session.result_pixels()
    out = tmp_path / "saved.png"
    save_dialog_gives(monkeypatch, out)
    asked = answer(win, "save")
    with qtbot.waitSignal(win.controller.run_finished, timeout=60000):
        assert win.start() is not None
    assert asked == [START] and out.exists()
    np.testing.assert_allclose(imageio.read(out).pixels, expected, atol=0.5 / 255 + 1e-6)


def test_a_cancelled_save_at_start_starts_nothing(win, monkeypatch):
    keep_iterates(win)
    before = state(win)
    answer(win, "save")
    save_dialog_gives(monkeypatch, "")  # the person closes the file dialog
    assert win.start() is None
    assert state(win) == before and win.controller.state == "idle"


def test_a_second_run_asks_about_the_first_runs_iterates(qtbot, win, tmp_path):
    asked = answer(win, "cancel")
    with qtbot.waitSignal(win.controller.run_finished, timeout=60000):
        assert win.start() is not None  # nothing unsaved yet: no question
    assert asked == [] and win.session.dirty
    keys = win.history.keys()
    assert win.start() is None and asked == [START] and win.history.keys() == keys
    assert win.save_result(tmp_path / "r.png")  # saved: the next Start has nothing to ask about
    with qtbot.waitSignal(win.controller.run_finished, timeout=60000):
        assert win.start() is not None
    assert asked == [START]
    win.session.mark_saved()  # the window closes at teardown without a question


def test_reset_to_preset_keeps_the_run_and_asks_nothing(win):
    """ "Reset to preset" only puts the settings back; the kept iterates stay, so there is nothing to ask."""
    keep_iterates(win)
    asked = answer(win, "cancel")
    keys = win.history.keys()
    win.settings_panel.run_form.set_values({"iterations": 77})
    win.settings_panel.reset_button.click()
    assert asked == [] and win.history.keys() == keys and win.session.dirty
    assert win.session.settings.iterations != 77


def test_a_task_change_on_a_photo_of_ones_own_keeps_its_run_and_asks_nothing(win, tmp_path):
    """Only the sample is re-made per task; another photo keeps its run until the next Start."""
    assert win.open_file(write_photo(tmp_path))
    keep_iterates(win)
    asked = answer(win, "cancel")
    keys = win.history.keys()
    win.settings_panel.set_task(Task.SR, 2)
    assert asked == [] and win.history.keys() == keys and win.task() == Task.SR


def test_the_lab_result_is_added_to_the_timeline_next_to_the_run(win, tmp_path):
    """Use this result: the Lab's image joins the history as the chosen result; the run's iterates, pins and
    curves stay, Save result writes the Lab's image, and "Use rule's pick" goes back to the run's result."""
    keep_iterates(win)
    win.session.mark_saved()
    asked = answer(win, "cancel")
    run_keys = win.history.keys()
    pick = win.history.result_key()
    image = np.full((SIDE, SIDE, 3), 0.25, np.float32)
    cfg = win.current_settings().replace(iterations=3)
    r = LabResult(7, "skip · cdc", cfg, 3, image, 21.0)
    win.lab.take_result(r)
    assert asked == []
    key = win.session.lab_key(r)
    assert win.history.keys() == run_keys + [key] and win.history.result_key() == key
    assert win.history.is_pinned(2) and win.session.dirty and win.run_config == cfg
    assert win.timeline.strip.count() == len(run_keys) + 1 and "from the Lab" in win.recon_view.title()
    assert win.save_result(tmp_path / "lab.png")
    np.testing.assert_allclose(imageio.read(tmp_path / "lab.png").pixels, image, atol=0.5 / 255 + 1e-6)
    win.timeline.pick_button.click()
    assert win.history.result_key() == pick and win.run_config == win.session._run_config
    assert win.session.dirty  # choosing again is unsaved work


def test_timeline_pin_and_keep_go_through_the_session(win):
    """The timeline's buttons ask the session, so its events (unsaved work, autosave) follow each change."""
    keep_iterates(win)
    win.session.mark_saved()
    seen: list[tuple] = []
    win.session.pin_changed.connect(lambda it, on: seen.append(("pin", it, on)))
    win.session.result_chosen.connect(lambda key: seen.append(("chosen", key)))
    tl = win.timeline
    tl.view(4)
    tl.pin_button.click()
    assert seen == [("pin", 4, True)] and win.history.is_pinned(4) and win.session.dirty
    assert tl.pin_button.text().endswith("Unpin")
    win.session.mark_saved()
    tl.keep_button.click()
    assert seen[-1] == ("chosen", 4) and win.history.result_key() == 4 and win.session.dirty
    tl.pick_button.click()
    assert seen[-1] == ("chosen", None) and win.history.chosen is None


def test_the_question_offers_save_discard_and_cancel(qtbot):
    box, choices = discard_box(None, "Quitting")
    assert sorted(choices.values()) == ["cancel", "discard", "save"]
    assert choices[box.defaultButton()] == "save" and choices[box.escapeButton()] == "cancel"
    assert "Quitting" in box.informativeText()
    assert box.icon() == QMessageBox.Icon.Warning
    box.deleteLater()
