"""Sessions on disk and autosave: a saved session reopens as it was (pixel-exact), a killed write leaves the
previous file readable, a bad file is a typed error that changes nothing, and the studio offers to recover
the autosave of a window that did not close cleanly."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rwgui.core import session_file
from rwgui.core.autosave import EDIT_DELAY_S, RUN_INTERVAL_S, Autosave, find_recoverable
from rwgui.core.config import preset
from rwgui.core.engine import StepReport
from rwgui.core.errors import SessionFileError
from rwgui.core.imageio import ImageMeta
from rwgui.core.photo import Photo
from rwgui.core.session import LabResult, Session
from rwgui.core.session_file import SessionData, apply_session, read_session, write_session
from rwgui.core.working_size import Working


def _photo(bits: int, h: int = 12, w: int = 10) -> Photo:
    rng = np.random.default_rng(bits)
    top = 255 if bits == 8 else 65535
    pixels = (rng.integers(0, top + 1, (h, w, 3)) / np.float32(top)).astype(np.float32)
    alpha = (rng.integers(0, top + 1, (h, w)) / np.float32(top)).astype(np.float32)
    meta = ImageMeta(f"/photos/p{bits}.png", bits, 4, True, 1, "png")
    return Photo(f"p{bits}.png", pixels, alpha, meta, f"/photos/p{bits}.png", ground_truth=pixels[::-1].copy())


def _report(it: int) -> StepReport:
    return StepReport(it, 1.0 / it, {"mse": 1.0 / it}, 20.0 + it, None, 0.1 * it, None, 0.01)


def _session(bits: int = 16) -> Session:
    """A session with everything a person can make: mask, settings, kept iterates, a pin, a choice, curves, and
    Lab results (one of them taken into the history)."""
    rng = np.random.default_rng(1)
    s = Session()
    s.set_settings(preset("inpaint", iterations=77))
    s.set_photo(_photo(bits))
    h, w = s.photo.pixels.shape[:2]
    mask = np.ones((h, w), np.float32)
    mask[2:5, 3:7] = 0
    s.set_mask(mask)
    s.begin_run(preset("inpaint", iterations=50), Working("full", "inpaint", (h, w), (h, w)), mask.copy())
    for it in (1, 2, 4, 8, 16):
        s.keep("raw", it, rng.random((h, w, 3), dtype=np.float32))
    s.keep("pick", 8, s.history.image(8), rng.random((h, w, 3), dtype=np.float32))
    s.keep("average", 16, rng.random((h, w, 3), dtype=np.float32))
    s.add_reports([_report(i) for i in range(1, 17)])
    s.pin(4)
    s.choose(2)
    lab = [
        LabResult(0, "skip · none", preset("inpaint", lr=0.02), 9, rng.random((h, w, 3), dtype=np.float32), 21.5),
        LabResult(1, "skip · cdc", preset("inpaint", lr=0.03), 12, rng.random((h, w, 3), dtype=np.float32), None, True),
    ]
    s.set_lab_results(lab)
    s.take_lab_result(lab[1], s.working, mask.copy())
    s.choose(2)  # the person's choice again; the Lab result stays next to the run's iterates
    return s


def _same(a: Session, b: Session) -> None:
    assert np.array_equal(a.photo.pixels, b.photo.pixels) and b.photo.pixels.dtype == np.float32
    assert np.array_equal(a.photo.alpha, b.photo.alpha)
    assert np.array_equal(a.photo.ground_truth, b.photo.ground_truth)
    assert a.photo.meta == b.photo.meta and a.photo.name == b.photo.name and a.photo.path == b.photo.path
    assert np.array_equal(a.mask, b.mask)
    assert a.settings == b.settings and a.run_config == b.run_config
    assert a.working == b.working and np.array_equal(a.working_mask, b.working_mask)
    ha, hb = a.history, b.history
    assert ha.keys() == hb.keys()
    for k in ha.keys():
        ea, eb = ha.entry(k), hb.entry(k)
        assert np.array_equal(ea.pixels, eb.pixels) and ea.iteration == eb.iteration and ea.pinned == eb.pinned
        assert ha.label(k) == hb.label(k)
    assert hb.is_pinned(4) and hb.chosen == ha.chosen and hb.pick_iteration == ha.pick_iteration
    assert ha.result_key() == hb.result_key()
    assert np.array_equal(a.result_pixels(), b.result_pixels())
    ca, cb = a.curves.columns(), b.curves.columns()
    assert ca.keys() == cb.keys() and all(np.array_equal(ca[n], cb[n], equal_nan=True) for n in ca)
    assert [(r.key, r.variant_label, r.config, r.pick_iteration, r.psnr, r.best) for r in a.lab_results] == [
        (r.key, r.variant_label, r.config, r.pick_iteration, r.psnr, r.best) for r in b.lab_results
    ]
    assert all(np.array_equal(r.image, q.image) for r, q in zip(a.lab_results, b.lab_results))
    key = Session.lab_key(a.lab_results[1])
    assert b.taken_result(key) is not None and b.taken_result(key).variant_label == "skip · cdc"
    assert b.lab_result is not None and b.lab_result.key == 1


@pytest.mark.parametrize("bits", [8, 16])
def test_save_and_open_restores_everything_pixel_exact(tmp_path, bits):
    s = _session(bits)
    path = write_session(tmp_path / "s.rwgui", SessionData.snapshot(s))
    with zipfile.ZipFile(path) as zf:  # the documented members: JSON, PNG and .npy, nothing else
        names = zf.namelist()
        assert "session.json" in names and "mask.png" in names
        assert all(n.endswith((".json", ".png", ".npy")) for n in names)
    opened = Session()
    events: list[str] = []
    for name in ("photo_changed", "mask_changed", "history_changed", "curves_changed", "lab_results_changed"):
        getattr(opened, name).connect(lambda *_, n=name: events.append(n))
    apply_session(opened, read_session(path))
    _same(s, opened)
    assert {"photo_changed", "mask_changed", "history_changed", "curves_changed"} <= set(events)
    assert not opened.dirty  # what was just opened is saved work


def test_an_unzipped_session_folder_opens_too(tmp_path):
    s = _session()
    path = write_session(tmp_path / "s.rwgui", SessionData.snapshot(s))
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(path) as zf:
        zf.extractall(folder)
    assert session_file.is_session_path(folder)
    opened = Session()
    apply_session(opened, read_session(folder))
    _same(s, opened)


def test_a_killed_replace_leaves_the_previous_session_readable(tmp_path, monkeypatch):
    path = tmp_path / "s.rwgui"
    first = _session()
    write_session(path, SessionData.snapshot(first))
    second = _session()
    second.set_mask(np.zeros_like(second.mask))

    def killed(src, dst):
        raise OSError(5, "killed between writing and renaming")

    monkeypatch.setattr(session_file.os, "replace", killed)
    with pytest.raises(SessionFileError):
        write_session(path, SessionData.snapshot(second))
    monkeypatch.undo()
    opened = Session()
    apply_session(opened, read_session(path))
    assert np.array_equal(opened.mask, first.mask)
    assert [p.name for p in tmp_path.iterdir()] == ["s.rwgui"]  # no temporary file left behind


def test_a_write_killed_half_way_leaves_the_previous_session_readable(tmp_path, monkeypatch):
    path = tmp_path / "s.rwgui"
    write_session(path, SessionData.snapshot(_session()))
    before = path.read_bytes()
    calls = {"n": 0}
    real = np.lib.format.write_array

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", dies)
    with pytest.raises(SessionFileError, match="No space left"):
        write_session(path, SessionData.snapshot(_session()))
    assert path.read_bytes() == before
    read_session(path)


def _rewrite(path: Path, change) -> None:
    """Copy the archive with ``change(name, bytes) -> bytes | None`` applied (None drops the member)."""
    with zipfile.ZipFile(path) as zf:
        items = [(n, zf.read(n)) for n in zf.namelist()]
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in items:
            out = change(n, b)
            if out is not None:
                zf.writestr(n, out)


def _manifest_edit(edit):
    def change(name, data):
        if name != "session.json":
            return data
        m = json.loads(data)
        edit(m)
        return json.dumps(m).encode()

    return change


def _object_array(name, data):
    if name != "photo/pixels.npy":
        return data
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return buf.getvalue()


BROKEN = {
    "newer version": (_manifest_edit(lambda m: m.update(version=99)), "newer rwgui"),
    "not json": (lambda n, b: b"{not json" if n == "session.json" else b, "not valid JSON"),
    "not utf-8": (lambda n, b: b"\xff\xfe\x00" if n == "session.json" else b, "UTF-8"),
    "not an object": (lambda n, b: b"[1, 2]" if n == "session.json" else b, "not a JSON object"),
    "no manifest": (lambda n, b: None if n == "session.json" else b, "lacks 'session.json'"),
    "missing member": (lambda n, b: None if n == "mask.png" else b, "lacks 'mask.png'"),
    "object array": (_object_array, "Python objects"),
    "wrong dtype": (
        lambda n, b: _npy(np.zeros((12, 10, 3), np.float64)) if n == "photo/pixels.npy" else b,
        "float64",
    ),
    "truncated array": (lambda n, b: b[:-40] if n == "iterates/4.npy" else b, "not a valid array"),
    "bad png": (lambda n, b: b"nope" if n == "mask.png" else b, "not a readable PNG"),
    "string for a number": (
        _manifest_edit(lambda m: m["history"]["entries"][0].update(iteration="one")),
        "history.entries[0].iteration",
    ),
    "unknown setting": (
        _manifest_edit(lambda m: m["settings"].update(colour="red")),
        "at .settings.: unknown settings: colour",
    ),
    "chosen not kept": (_manifest_edit(lambda m: m["history"].update(chosen=999)), "history.chosen"),
    "deep nesting": (lambda n, b: b"[" * 100000 + b"]" * 100000 if n == "session.json" else b, "manifest"),
}


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_session_is_a_typed_error_and_changes_nothing(tmp_path, case):
    change, message = BROKEN[case]
    path = write_session(tmp_path / "s.rwgui", SessionData.snapshot(_session()))
    _rewrite(path, change)
    current = _session(8)
    before = SessionData.snapshot(current)
    with pytest.raises(SessionFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        apply_session(current, read_session(path))
    after = SessionData.snapshot(current)
    assert after.photo is before.photo and np.array_equal(after.mask, before.mask)
    assert [e.pixels for e in after.entries] == [e.pixels for e in before.entries]


def test_not_a_session_at_all(tmp_path):
    (tmp_path / "x.rwgui").write_bytes(b"hello")
    with pytest.raises(SessionFileError, match="not an rwgui session"):
        read_session(tmp_path / "x.rwgui")
    with pytest.raises(SessionFileError, match="no session"):
        read_session(tmp_path / "missing.rwgui")


# ----- autosave (Qt-free) ------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_autosave_rate_is_bounded_and_a_clean_close_leaves_nothing(tmp_path):
    clock = Clock()
    a = Autosave(tmp_path, clock)
    a.start()
    assert a.seconds_due() is None
    a.changed()
    assert a.seconds_due() == EDIT_DELAY_S
    a.save(SessionData.snapshot(_session()))
    assert a.wait(30) and a.writes == 1 and a.path.is_file()
    clock.t += 1
    a.changed(during_run=True)  # a run's progress waits for the run interval after the last write
    assert RUN_INTERVAL_S - 2 < a.seconds_due() <= RUN_INTERVAL_S
    a.changed()  # a person's edit comes sooner
    assert a.seconds_due() <= max(EDIT_DELAY_S, 4 * a.last_write_s)
    assert find_recoverable(tmp_path) == []  # an open studio's autosave is never offered
    a.close()
    assert not a.slot.exists() and find_recoverable(tmp_path) == []


def test_a_crashed_autosave_is_offered_and_a_killed_write_keeps_the_previous(tmp_path, monkeypatch):
    first = _session()
    a = Autosave(tmp_path)
    a.start()
    a.save(SessionData.snapshot(first))
    assert a.wait(30)
    monkeypatch.setattr(session_file.os, "replace", lambda *_: (_ for _ in ()).throw(OSError(5, "killed")))
    changed = _session()
    changed.set_mask(np.zeros_like(changed.mask))
    a.save(SessionData.snapshot(changed))
    assert a.wait(30) and a.last_error and "killed" in a.last_error
    monkeypatch.undo()
    a.abandon()  # the process dies: the lock stays
    found = find_recoverable(tmp_path)
    assert [r.path for r in found] == [a.path] and "p16.png, 5 kept iterates" in found[0].description
    opened = Session()
    apply_session(opened, read_session(found[0].path))
    assert np.array_equal(opened.mask, first.mask)


# ----- the studio ----------------------------------------------------------------------------------------
def _run_a_little(window, qtbot, make_config, iterations=12):
    window.settings_panel.set_config(make_config("inpaint", iterations))
    h, w = window.photo_view.image().shape[:2]
    mask = np.ones((h, w), np.float32)
    mask[10:20, 12:30] = 0
    window.photo_view.set_mask(mask)
    window.start()
    qtbot.waitUntil(lambda: window.controller.state == "idle" and window.last_summary is not None, timeout=60000)
    window.discard.ask = lambda action: "discard"  # no modal question when the test's windows close
    keys = window.history.iterations()
    window.session.pin(keys[0])
    window.session.choose(keys[len(keys) // 2])
    return mask


def test_save_session_then_a_new_window_opens_it_as_it_was(qtbot, window, make_config, tmp_path):
    from rwgui.gui.main_window import MainWindow

    mask = _run_a_little(window, qtbot, make_config)
    path = tmp_path / "work.rwgui"
    assert window.sessions.save_session(path)
    assert not window.session.dirty  # saved: quitting does not ask
    result = window.session.result_pixels()
    window.timeline.view(window.history.result_key())  # the result view shows the chosen result
    shown = window.recon_view.image().copy()
    pinned = [k for k in window.history.iterations() if window.history.is_pinned(k)]
    chosen = window.history.chosen
    window.close()

    win = MainWindow(sample_size=32)  # another photo first: the session replaces it
    qtbot.addWidget(win)
    win.show()
    assert win.sessions.open_session(path)
    assert np.array_equal(win.session.mask, mask) and np.array_equal(win.photo_view.mask(), mask)
    assert [k for k in win.history.iterations() if win.history.is_pinned(k)] == pinned
    assert win.history.chosen == chosen and win.timeline.current() == chosen
    assert np.array_equal(win.session.result_pixels(), result)
    assert np.array_equal(win.recon_view.image(), shown)
    assert win.task() == "inpaint" and win.session.curves.n > 0
    assert win.acts.save.isEnabled()


def test_opening_a_bad_session_in_the_window_keeps_everything(window, tmp_path):
    (tmp_path / "bad.rwgui").write_bytes(b"not a zip")
    photo = window.photo
    assert not window.sessions.open_session(tmp_path / "bad.rwgui")
    assert window.photo is photo and "not an rwgui session" in window.last_error


def test_after_an_unclean_exit_the_studio_offers_recovery(qtbot, window, make_config):
    from rwgui.gui.main_window import MainWindow

    mask = _run_a_little(window, qtbot, make_config)
    kept = window.history.keys()
    assert window.sessions.autosave_now(wait=30)
    window.sessions.autosave.abandon()  # a crash: the lock stays, nothing is cleaned up
    window.sessions.close = lambda: None  # the crashed window never gets to close cleanly

    win = MainWindow(sample_size=32)
    qtbot.addWidget(win)
    win.discard.ask = lambda action: "discard"
    win.show()
    box = win.sessions.recovery_box
    assert box is not None and box.isVisible() and "kept iterate" in box.informativeText()
    assert win.sessions.answer_recovery(True)
    assert not box.isVisible()
    assert np.array_equal(win.session.mask, mask) and np.array_equal(win.photo_view.mask(), mask)
    assert win.history.keys() == kept
    assert win.session.dirty  # recovered work is in no file of the person's yet
    assert win.sessions.recovery_box is None
    assert win.sessions.autosave.wait(30) and win.sessions.autosave.path.is_file()  # now autosaved here


def test_discarding_the_recovery_removes_it(qtbot, window, make_config):
    from rwgui.gui.main_window import MainWindow

    _run_a_little(window, qtbot, make_config)
    assert window.sessions.autosave_now(wait=30)
    window.sessions.autosave.abandon()
    window.sessions.close = lambda: None
    slot = window.sessions.autosave.slot

    win = MainWindow(sample_size=32)
    qtbot.addWidget(win)
    assert win.sessions.recovery_box is not None
    assert not win.sessions.answer_recovery(False)
    assert not slot.exists() and find_recoverable(win.sessions.folder) == []
    assert os.environ["RWGUI_DATA_DIR"] in str(win.sessions.folder)


def test_rwgui_SESSION_on_the_command_line_opens_it(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QApplication

    from rwgui.gui import app
    from rwgui.gui.main_window import MainWindow

    path = write_session(tmp_path / "cli.rwgui", SessionData.snapshot(_session()))
    shown: list[MainWindow] = []
    monkeypatch.setattr(MainWindow, "show", lambda self: shown.append(self))
    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    assert app.main([str(path)]) == 0
    (win,) = shown
    qtbot.addWidget(win)
    win.discard.ask = lambda action: "discard"
    assert win.photo.name == "p16.png" and win.history.is_pinned(4) and win.history.chosen == 2
