"""The session model: Qt-free, emits an event for each change, and the window's views follow it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing

import numpy as np
import pytest

from rwgui.core.config import preset
from rwgui.core.engine import StepReport
from rwgui.core.imageio import ImageMeta
from rwgui.core.photo import Photo
from rwgui.core.session import LabResult, Session
from rwgui.core.vocabulary import Iterate
from rwgui.core.working_size import Working


def _photo(h: int = 16, w: int = 16) -> Photo:
    pixels = np.linspace(0, 1, h * w * 3, dtype=np.float32).reshape(h, w, 3)
    return Photo("test", pixels, None, ImageMeta("test.png", 8, 3, False, 1, "png"))


class Events:
    """Records every event a session emits, in order, as (name, args)."""

    NAMES = (
        "photo_changed",
        "ground_truth_changed",
        "mask_changed",
        "settings_changed",
        "working_changed",
        "run_cleared",
        "history_changed",
        "curves_changed",
        "lab_results_changed",
        "result_taken",
    )

    def __init__(self, session: Session) -> None:
        self.seen: list[tuple[str, tuple]] = []
        for name in self.NAMES:
            getattr(session, name).connect(lambda *args, n=name: self.seen.append((n, args)))

    def names(self) -> list[str]:
        out = [n for n, _ in self.seen]
        self.seen.clear()
        return out


def test_importing_the_session_loads_no_qt():
    code = (
        "import sys, rwgui.core.session\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'qtpy')"
        " or m.startswith('rwgui.gui')]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_photo_mask_and_settings_changes_are_events():
    s = Session()
    ev = Events(s)
    p = _photo()
    s.set_photo(p)
    assert s.photo is p and s.mask is None
    assert ev.names() == ["run_cleared", "working_changed", "photo_changed"]
    mask = np.ones((16, 16), np.float32)
    mask[4:8, 4:8] = 0
    s.set_mask(mask)
    assert ev.seen[0][0] == "mask_changed" and ev.seen[0][1][0] is mask
    ev.names()
    gt = np.zeros_like(p.pixels)
    s.set_ground_truth(gt)
    assert ev.names() == ["ground_truth_changed"] and s.photo.ground_truth is gt and s.mask is mask
    cfg = preset("denoise", iterations=12)
    s.set_settings(cfg)
    assert ev.seen == [("settings_changed", (cfg,))] and s.settings == cfg
    ev.names()
    s.set_settings(preset("denoise", iterations=12))  # equal settings: nothing changed, no event
    assert ev.names() == []


def test_a_run_fills_history_and_curves_with_events():
    s = Session()
    s.set_photo(_photo())
    ev = Events(s)
    cfg = preset("denoise", iterations=3)
    s.begin_run(cfg, None, None)
    assert s.run_config == cfg and ev.names() == ["run_cleared", "working_changed"]
    img = np.full((16, 16, 3), 0.5, np.float32)
    s.keep(Iterate.RAW, 1, img)
    s.keep(Iterate.AVERAGE, 1, img)
    s.keep(Iterate.PICK, 1, img, img)
    assert ev.names() == ["history_changed"] * 3
    assert s.history.iterations() == [1] and s.history.result_key() == Iterate.PICK_AVERAGE
    report = StepReport(1, 0.1, {}, None, None, None, None, 0.01)
    s.add_reports([report])
    assert ev.names() == ["curves_changed"] and s.curves.n == 1
    assert np.array_equal(s.result_pixels(), s.history.image(Iterate.PICK_AVERAGE))
    s.set_photo(_photo(8, 8))  # a new photo lets the run go
    assert len(s.history) == 0 and s.curves.n == 0


def test_taking_a_lab_result_makes_it_the_result_but_changes_no_setting():
    s = Session()
    s.set_photo(_photo(32, 32))
    settings = preset("denoise", iterations=300)
    s.set_settings(settings)
    lab_cfg = preset("denoise", iterations=4, loss_prior="cdc")
    image = np.full((8, 8, 3), 0.25, np.float32)
    r = LabResult(key=0, variant_label="skip · cdc", config=lab_cfg, pick_iteration=3, image=image, psnr=20.0)
    s.set_lab_results([r])
    working = Working(mode="crop", task="inpaint", full_size=(32, 32), size=(8, 8), box=(0, 8, 0, 8))
    mask = np.ones((32, 32), np.float32)
    mask[2:4, 2:4] = 0
    ev = Events(s)
    s.take_lab_result(r, working, mask)
    assert ev.names() == ["working_changed", "history_changed", "result_taken"]  # no run to clear: none is
    assert s.settings == settings and s.run_config == lab_cfg and s.lab_result is r and s.lab_results == (r,)
    assert s.history.entry(s.history.result_key()).iteration == 3
    full = s.result_pixels()
    assert full.shape == (32, 32, 3)  # pasted back into the photo, as after a run on that crop


def test_lab_result_is_a_typed_frozen_record():
    assert dataclasses.is_dataclass(LabResult)
    hints = typing.get_type_hints(LabResult)
    assert {"key", "variant_label", "config", "pick_iteration", "image", "psnr", "best"} <= set(hints)
    assert hints["pick_iteration"] is int and hints["variant_label"] is str
    r = LabResult(1, "v", preset("denoise"), 5, np.zeros((2, 2, 3), np.float32))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.pick_iteration = 6  # type: ignore[misc]


# ----- the window follows the session ------------------------------------------------------------------
def test_the_window_follows_the_session(window, make_config):
    s = window.session
    assert window.photo is s.photo and window.history is s.history
    # settings: the dock shows what the session holds, and the person's edits reach the session
    cfg = make_config(iterations=41, seed=8)
    s.set_settings(cfg)
    assert window.settings_panel.config() == cfg
    window.settings_panel.run_form.set_values({"iterations": 42})
    assert s.settings.iterations == 42
    # photo: the canvas shows a new one
    s.set_photo(_photo(24, 20))
    assert window.photo_view.image().shape[:2] == (24, 20) and "test" in window.windowTitle()
    # mask: painting hands the session a copy
    window.settings_panel.set_task("inpaint")
    window.photo_view.clear()
    window.photo_view.brush_size = 4
    window.photo_view.paint_stroke([(5, 5), (8, 8)])
    assert s.mask is not None and s.mask.min() == 0 and np.array_equal(s.mask, window.photo_view.mask())
    # history: the Save action follows the kept iterates
    assert not window.acts.save.isEnabled()
    s.begin_run(cfg, None, None)
    s.keep(Iterate.RAW, 1, np.full((24, 20, 3), 0.5, np.float32))
    window.update_actions()
    assert window.acts.save.isEnabled()
    window.timeline.sync()
    assert window.timeline.strip.count() == 1


def test_a_selected_thumbnail_keeps_its_colours(window):
    """Qt draws a selected icon tinted with the highlight colour: the chosen iterate's thumbnail would show
    false colours exactly where a photographer looks to judge it."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    s = window.session
    s.begin_run(window.settings_panel.config(), None, None)
    s.keep(Iterate.RAW, 1, np.full((24, 20, 3), (0.9, 0.4, 0.1), np.float32))
    window.timeline.sync()
    item = window.timeline.strip.item(0)
    item.setSelected(True)
    side = window.timeline.strip.iconSize()
    normal = item.icon().pixmap(side, QIcon.Mode.Normal).toImage()
    selected = item.icon().pixmap(side, QIcon.Mode.Selected).toImage()
    assert normal.size() != QSize(0, 0) and selected == normal
