"""Mask painting in the window: strokes, undo/redo, clear/invert, load/save, wrong-size masks."""

from __future__ import annotations

import numpy as np
import pytest

from rwgui.core import imageio

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def inpaint(window):
    window.settings_panel.set_task("inpaint")
    return window


def test_mask_tools_only_for_inpainting(window):
    assert not window.acts.mask_toolbar.isVisibleTo(window)
    assert window.photo_view.tool() == "none"
    window.settings_panel.set_task("inpaint")
    assert window.acts.mask_toolbar.isVisibleTo(window)
    assert window.photo_view.tool() == "brush"
    assert window.settings_panel.preset_combo.currentText().startswith("inpaint")
    m = window.photo_view.mask()
    assert m.shape == (64, 64) and (m == 0).any()  # the sample comes with its scratches marked


def test_strokes_change_the_mask_and_undo_redo(inpaint):
    w = inpaint
    w.mask_clear()
    assert (w.photo_view.mask() == 1).all()
    w.photo_view.paint_stroke([(10, 10), (50, 12)])
    painted = w.photo_view.mask()
    assert (painted == 0).sum() > 50
    assert w.acts.undo.isEnabled()
    w.photo_view.paint_stroke([(10, 40)], erase=False)
    two = w.photo_view.mask()
    w.acts.undo.trigger()
    assert np.array_equal(w.photo_view.mask(), painted)
    w.acts.undo.trigger()
    assert (w.photo_view.mask() == 1).all()
    assert w.acts.redo.isEnabled()
    w.acts.redo.trigger()
    w.acts.redo.trigger()
    assert np.array_equal(w.photo_view.mask(), two)
    w.acts.invert_mask.trigger()
    assert np.array_equal(w.photo_view.mask(), 1 - two)


def test_brush_size_and_opacity_sliders(inpaint):
    inpaint.acts.size_slider.setValue(9)
    assert inpaint.photo_view.brush_size == 9
    inpaint.photo_view.brush_size = 30
    assert inpaint.acts.size_slider.value() == 30
    inpaint.acts.opacity_slider.setValue(80)
    assert inpaint.photo_view.overlay_opacity == pytest.approx(0.8)


def test_wrong_size_mask_shows_both_sizes_and_keeps_the_mask(inpaint, tmp_path):
    before = inpaint.photo_view.mask()
    bad = tmp_path / "small.png"
    imageio.write_mask(bad, np.ones((32, 48), np.float32))
    assert inpaint.load_mask(bad) is False
    assert "48x32" in inpaint.last_error and "64x64" in inpaint.last_error
    assert inpaint.error_box.isVisible()
    inpaint.error_box.close()
    assert np.array_equal(inpaint.photo_view.mask(), before)


def test_mask_save_and_load_round_trip(inpaint, tmp_path):
    inpaint.mask_clear()
    inpaint.photo_view.paint_stroke([(20, 20), (40, 40)])
    want = inpaint.photo_view.mask()
    path = tmp_path / "mask.png"
    assert inpaint.save_mask(path)
    inpaint.mask_clear()
    assert inpaint.load_mask(path)
    assert np.array_equal(inpaint.photo_view.mask(), want)
    assert inpaint.save_mask(tmp_path / "mask.jpg") is False  # masks are PNG only
    assert "PNG" in inpaint.last_error


def test_inpainting_without_holes_explains_what_to_do(inpaint):
    inpaint.mask_clear()
    assert inpaint.start() is None
    assert "paint" in inpaint.last_error.lower()
    assert inpaint.controller.state == "idle"


def test_painted_mask_is_snapshotted_at_start(qtbot, inpaint, make_config):
    inpaint.settings_panel.set_config(make_config("inpaint", iterations=100_000))
    inpaint.start()
    qtbot.waitUntil(lambda: inpaint.curves.data.n >= 2, timeout=20000)
    inpaint.photo_view.paint_stroke([(1, 60), (60, 60)])  # painting during a run touches only the live mask
    worker = inpaint.controller._worker
    snap = worker.request.problem.mask[0, 0].numpy()
    assert snap[60, 30] == 1 and inpaint.photo_view.mask()[60, 30] == 0
    with qtbot.waitSignal(inpaint.controller.run_finished, timeout=5000):
        inpaint.stop()
