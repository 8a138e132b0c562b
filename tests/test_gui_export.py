"""Timeline scrubbing, choosing the result, compare, and every export (result, curves CSV, settings JSON)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel

from rwgui.core import imageio
from rwgui.core.config import RunConfig, SpeedConfig
from rwgui.core.history import AVERAGE, PICK_AVERAGE
from rwgui.core.vocabulary import StopReason

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _run(qtbot, win, cfg):
    win.settings_panel.set_config(cfg)
    with qtbot.waitSignal(win.controller.run_finished, timeout=30000) as fin:
        assert win.start() is not None
    return fin.args[0]


def test_scrub_keep_and_export_the_chosen_iterate(qtbot, window, make_config, tmp_path):
    _run(qtbot, window, make_config(iterations=40))
    tl, h = window.timeline, window.history
    its = h.iterations()
    target = its[len(its) // 2]
    tl.slider.setValue(its.index(target))
    assert tl.current() == target and not tl.is_live()
    assert np.array_equal(window.recon_view.image(), h.rgba(target))
    assert window.curves.cursor_iteration() == target and window.curves.loss.cursor.isVisible()
    assert str(target) in window.recon_view.title()
    tl.keep_button.click()
    assert h.result_key() == target and "your choice" in tl.result_label.text()
    out = tmp_path / "chosen.png"
    assert window.save_result(out)
    back = imageio.read(out)
    assert back.pixels.shape == (64, 64, 3) and back.meta.bit_depth == 8
    assert np.abs(back.pixels - h.image(target)).max() <= 1 / 255 + 1e-6
    tl.pick_button.click()
    assert h.result_key() == PICK_AVERAGE


def test_timeline_pseudo_entries_and_live(qtbot, window, make_config):
    _run(qtbot, window, make_config(iterations=30))
    tl, h = window.timeline, window.history
    assert h.keys()[-2:] == [PICK_AVERAGE, AVERAGE]
    last = tl.strip.count() - 1
    assert tl.strip.item(last).data(256) == AVERAGE
    tl.strip.setCurrentRow(last)
    assert tl.current() == AVERAGE
    assert np.array_equal(window.recon_view.image(), h.rgba(AVERAGE))
    tl.set_live(True)
    assert tl.current() is None and window.curves.cursor_iteration() is None
    window.curves.iteration_clicked.emit(17)  # a click on the curves scrubs to the nearest kept iterate
    assert tl.current() == min(h.iterations(), key=lambda it: abs(it - 17))


def test_pin_and_compare_two(qtbot, window, make_config):
    _run(qtbot, window, make_config(iterations=30))
    tl, h = window.timeline, window.history
    a, b = h.iterations()[0], h.iterations()[-1]  # two kept iterates (the first and the last always are)
    assert a < b
    tl.view(a)
    tl.pin_button.click()
    assert h.is_pinned(a) and "★" in tl._items[a].text()
    tl.strip.clearSelection()
    sel = tl.strip.selectionModel()
    for key in (a, b):
        sel.select(tl.strip.indexFromItem(tl._items[key]), QItemSelectionModel.SelectionFlag.Select)
    assert tl.compare_button.isEnabled()
    tl.compare_button.click()
    assert window.stack.currentIndex() == 1 and window.acts.compare.isChecked()
    assert np.array_equal(window.compare_view.image(), h.rgba(b))
    window.acts.compare.trigger()  # off
    assert window.stack.currentIndex() == 0
    window.acts.compare.trigger()  # on: damaged photo against the restoration
    assert window.stack.currentIndex() == 1
    assert np.array_equal(window.compare_view.image(), window.recon_view.image())


def test_sixteen_bit_photo_with_alpha_exports_sixteen_bit(qtbot, window, make_config, tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "deep.png"
    pixels = np.clip(rng.random((64, 64, 3)) * 0.2 + np.linspace(0, 0.8, 64)[None, :, None], 0, 1)
    alpha = np.ones((64, 64), np.float32)
    alpha[:8] = 0.5
    imageio.write(src, pixels.astype(np.float32), bit_depth=16, alpha=alpha)
    assert window.open_file(src)
    assert window.photo.meta.bit_depth == 16 and window.photo.ground_truth is None
    s = _run(qtbot, window, make_config(iterations=20))
    assert s.reason == StopReason.BUDGET
    assert not window.curves.data.has("psnr")  # a photo the person opens has no ground truth
    for ext, depth in (("png", 16), ("tif", 16), ("jpg", 8)):
        out = tmp_path / f"restored.{ext}"
        assert window.save_result(out), window.last_error
        back = imageio.read(out)
        assert back.pixels.shape == (64, 64, 3) and back.meta.bit_depth == depth
        if ext != "jpg":
            assert back.alpha is not None and back.alpha[0, 0] == pytest.approx(0.5, abs=1e-3)
    assert str(src.resolve()) in window.files.recent()


def test_super_resolution_result_is_larger(qtbot, window, make_config, tmp_path):
    window.settings_panel.set_task("sr", 2)
    assert window.photo.pixels.shape[:2] == (32, 32)  # the sample, made low-res for the task
    assert window.photo_view.image().shape[:2] == (64, 64)  # shown enlarged, so the views zoom together
    _run(qtbot, window, make_config("sr", iterations=10, factor=2, preset="sr-x2"))
    out = tmp_path / "sr.png"
    assert window.save_result(out)
    assert imageio.read(out).pixels.shape == (64, 64, 3)


def test_export_curves_csv_and_settings_json(qtbot, window, make_config, tmp_path):
    cfg = make_config(iterations=25, seed=7, speed=SpeedConfig(threads=1, channels_last=False))
    _run(qtbot, window, cfg)
    path = tmp_path / "curves.csv"
    assert window.export_curves(path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 25 and rows[0]["iteration"] == "1" and rows[-1]["iteration"] == "25"
    assert {"loss", "loss_data", "psnr", "psnr_average", "signal", "pick_iteration"} <= set(rows[0])
    assert float(rows[-1]["psnr"]) > 0
    jpath = tmp_path / "settings.json"
    assert window.export_settings(jpath)
    loaded = RunConfig.load(jpath)
    assert loaded == window.run_config
    assert loaded.seed == 7 and loaded.iterations == 25 and loaded.stop == "es-wmv"
    assert loaded.speed == SpeedConfig(threads=1, channels_last=False)  # settings without a form survive


def test_save_before_any_run_explains(window, tmp_path):
    assert window.save_result(tmp_path / "x.png") is False
    assert "Start" in window.last_error
