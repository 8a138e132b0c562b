"""Start-up (platform check, arguments), settings that persist, presets per task, opening files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from rwgui.core import imageio
from rwgui.core.config import PRESETS
from rwgui.gui import app
from rwgui.gui.files import paths_from_mime

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_platform_check_without_display_suggests_offscreen():
    msg = app.platform_problem(env={}, platform="linux")
    assert msg and "QT_QPA_PLATFORM=offscreen" in msg and "xvfb-run" in msg


def test_platform_check_names_missing_debian_packages():
    missing = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"}
    msg = app.platform_problem(env={"DISPLAY": ":0"}, platform="linux", loadable=lambda lib: lib not in missing)
    assert "apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in msg
    assert app.platform_problem(env={"DISPLAY": ":0"}, platform="linux", loadable=lambda lib: True) is None


@pytest.mark.parametrize("env", [{"QT_QPA_PLATFORM": "offscreen"}, {"WAYLAND_DISPLAY": "wayland-0"}])
def test_platform_check_passes_headless_and_wayland(env):
    assert app.platform_problem(env=env, platform="linux", loadable=lambda lib: False) is None
    assert app.platform_problem(env={}, platform="win32") is None


def test_main_exits_2_with_a_message_instead_of_aborting(monkeypatch, capsys):
    threads = torch.get_num_threads()
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    try:
        assert app.main([]) == 2
    finally:
        torch.set_num_threads(threads)
    assert "no display" in capsys.readouterr().err


def test_python_m_rwgui_help():
    out = subprocess.run([sys.executable, "-m", "rwgui", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--mask" in out.stdout and "--task" in out.stdout


def test_task_change_reapplies_the_preset_and_reset(window):
    sp = window.settings_panel
    sp.run_form.set_values({"iterations": 77})
    sp.set_task("sr", 8)
    cfg = sp.config()
    assert cfg.task == "sr" and cfg.factor == 8 and cfg.preset == "sr-x8"
    assert cfg.iterations == PRESETS["sr-x8"]["iterations"]
    assert cfg.stop == PRESETS["sr-x8"]["stop"]  # a new task applies its preset entirely, stopping rule too
    sp.run_form.set_values({"iterations": 5})
    sp.reset_button.click()
    assert sp.config().iterations == PRESETS["sr-x8"]["iterations"]
    sp.set_task("denoise")
    assert sp.config().preset == "denoise" and not sp.factor_combo.isEnabled()


def test_settings_persist_between_windows(qtbot, window, make_config, tmp_path):
    from rwgui.gui.main_window import MainWindow

    photo = tmp_path / "p.png"
    imageio.write(photo, np.full((40, 40, 3), 0.5, np.float32))
    assert window.open_file(photo)
    window.settings_panel.set_config(
        make_config("inpaint", iterations=123, seed=9, stop="es-emv", stop_params={"alpha": 0.2})
    )
    window.close()
    again = MainWindow(sample_size=64)
    qtbot.addWidget(again)
    cfg = again.settings_panel.config()
    assert (cfg.task, cfg.iterations, cfg.seed, cfg.stop) == ("inpaint", 123, 9, "es-emv")
    assert str(photo.resolve()) in again.files.recent()
    assert again.acts.recent_menu.actions()[0].text() == str(photo.resolve())
    assert again.files.last_folder() == str(tmp_path.resolve())


def test_unreadable_file_keeps_the_photo(window, tmp_path):
    before = window.photo
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert window.open_file(bad) is False
    assert "broken.png" in window.last_error
    assert window.photo is before


def test_drop_an_image_file_opens_it(window, tmp_path):
    photo = tmp_path / "dropped.png"
    imageio.write(photo, np.full((48, 40, 3), 0.25, np.float32))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo)), QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    assert paths_from_mime(mime) == [str(photo)]
    ev = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(ev)
    assert window.photo.path == str(photo)
    assert window.photo_view.image().shape[:2] == (48, 40)


def test_open_other_samples_and_ground_truth(window, tmp_path):
    window.open_sample("chelsea")
    assert window.photo.sample == "chelsea" and window.photo.ground_truth is not None
    photo = tmp_path / "p.png"
    imageio.write(photo, np.full((32, 32, 3), 0.5, np.float32))
    window.open_file(photo)
    assert window.photo.ground_truth is None
    assert window.open_ground_truth(photo)
    assert window.photo.ground_truth is not None


def test_speed_box_says_what_auto_turns_on_here(window, monkeypatch):
    """'auto' means bfloat16 on one CPU and float32 on another: the Speed box says which, and follows edits."""
    from rwgui.core import device

    sp = window.settings_panel
    sp.speed_form.set_values({"precision": "float32", "channels_last": "off"})
    assert "float32" in sp.speed_note.text() and "channels-last" not in sp.speed_note.text()
    device.cpu_has_native_bf16.cache_clear()
    monkeypatch.setenv("RWGUI_NO_BF16", "1")
    try:
        sp.speed_form.set_values({"precision": "auto", "channels_last": "on"})
        assert "no native bfloat16" in sp.speed_note.text() and "channels-last" in sp.speed_note.text()
    finally:
        device.cpu_has_native_bf16.cache_clear()
