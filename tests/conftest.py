"""Shared test setup. Qt must see QT_QPA_PLATFORM before any Qt import (QT_TORCH_NOTES pitfall 10)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


# ----- GUI fixtures (rwgui.gui tests) ------------------------------------------------------------------
import sys

import pytest

#: A prior small enough that a 64x64 run does ~20 iterations per second on two CPU cores.
TINY_PRIOR = {"num_scales": 3, "channels_down": (16,), "channels_up": (16,), "channels_skip": (4,)}


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path, monkeypatch):
    """Every test gets its own QSettings store (never the person's real one)."""
    monkeypatch.setenv("RWGUI_SETTINGS_ORG", "rwgui-test")
    if "PySide6.QtCore" in sys.modules:  # core tests never import Qt
        from PySide6.QtCore import QSettings

        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    yield


@pytest.fixture(autouse=True)
def _no_running_qthread():
    """At teardown (after pytest-qt closed the test's widgets) no run thread may still be running."""
    yield
    worker = sys.modules.get("rwgui.gui.worker")
    if worker is not None:
        running = [t.objectName() for t in worker.live_threads() if t.isRunning()]
        assert not running, f"QThreads still running at teardown: {running}"


def tiny_config(task: str = "denoise", iterations: int = 60, **overrides):
    from rwgui.core.config import preset, preset_name

    values = dict(
        prior_params=TINY_PRIOR,
        stop="es-wmv",
        stop_params={"window": 10, "patience": 1000},
        auto_stop=False,
        iterations=iterations,
        device="cpu",
    )
    values.update(overrides)
    return preset(preset_name(task), **values)


@pytest.fixture
def window(qtbot):
    """The studio on a 64x64 crop of the bundled sample, with a tiny prior so runs take a second or two."""
    from rwgui.gui.main_window import MainWindow

    win = MainWindow(sample_size=64)
    qtbot.addWidget(win)
    win.settings_panel.set_config(tiny_config())
    win.show()
    return win


@pytest.fixture
def make_config():
    """``make_config(task, iterations, **overrides)``: a tiny-prior RunConfig for fast GUI runs."""
    return tiny_config
