"""Shared test setup. Qt must see QT_QPA_PLATFORM before any Qt import: the platform plugin is chosen once,
when the first QGuiApplication starts, and offscreen needs no display and no X11 libraries."""

import os
import sys

import pytest

#: The platform the person asked for (``.ci/run`` asks for xcb under Xvfb for the ``xserver`` group).
_ASKED_PLATFORM = os.environ.get("QT_QPA_PLATFORM")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The suite runs on the CPU wherever it runs: a test that leaves the device at 'auto' must not move to a GPU
# (overlap is on there, so reports arrive a step later, and memory is counted elsewhere). Set here, before
# anything resolves a device, so that subprocesses (the CLI tests, the memory probe) inherit it. GPU checks
# name the device and carry the ``cuda`` marker.
os.environ["RWGUI_AUTO_DEVICE"] = "cpu"
# "auto" speed settings follow the fixed rule (rwgui.core.autotune.fixed_rule) instead of timing candidates: a
# choice measured under the machine's current load would make a test's numbers depend on it, and each test would
# pay the measurement. tests/test_autotune.py turns the measurement on where it tests it.
os.environ["RWGUI_SPEED_TUNING"] = "off"


# ----- GUI fixtures (rwgui.gui tests) ------------------------------------------------------------------
#: A prior small enough that a 64x64 run does ~20 iterations per second on two CPU cores.
TINY_PRIOR = {"num_scales": 3, "channels_down": (16,), "channels_up": (16,), "channels_skip": (4,)}


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path, monkeypatch):
    """Every test gets its own QSettings store and autosave folder (never the person's real ones)."""
    monkeypatch.setenv("RWGUI_SETTINGS_ORG", "rwgui-test")
    monkeypatch.setenv("RWGUI_DATA_DIR", str(tmp_path / "rwgui-data"))
    monkeypatch.setenv("RWGUI_CONFIG_DIR", str(tmp_path / "rwgui-config"))  # the measured speed choices
    if "PySide6.QtCore" in sys.modules:  # core tests never import Qt
        from PySide6.QtCore import QSettings

        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    yield


@pytest.fixture(autouse=True)
def _discard_without_asking(request, monkeypatch):
    """A window closed (or given a new photo) with unsaved work asks Save / Discard / Cancel in a modal box, which
    would wait forever offscreen: GUI tests answer Discard, unless they answer themselves on their window's
    ``discard`` (tests/test_discard_prompts.py does)."""
    if "qtbot" in request.fixturenames:
        from rwgui.gui.discard import DiscardGuard

        monkeypatch.setattr(DiscardGuard, "ask", lambda self, action: "discard")
    yield


@pytest.fixture(autouse=True)
def _device_queries_allowed_again():
    """A window marks the test's thread as one that never asks CUDA; the next test starts unmarked."""
    yield
    device = sys.modules.get("rwgui.core.device")
    if device is not None:
        device._quiet_threads.clear()


@pytest.fixture(autouse=True)
def _no_running_qthread():
    """At teardown (after pytest-qt closed the test's widgets) no run thread may still be running."""
    yield
    worker = sys.modules.get("rwgui.gui.worker")
    if worker is not None:
        running = [t.objectName() for t in worker.live_threads() if t.isRunning()]
        assert not running, f"QThreads still running at teardown: {running}"


def pytest_configure(config):
    """``pytest -m xserver`` with a display (``xvfb-run``) uses the X server: Qt's xcb platform, chosen here,
    before any test imports Qt. Every other run stays offscreen unless QT_QPA_PLATFORM says otherwise."""
    if config.getoption("markexpr", "") == "xserver" and os.environ.get("DISPLAY") and _ASKED_PLATFORM is None:
        os.environ["QT_QPA_PLATFORM"] = "xcb"


def _on_x_server() -> bool:
    return os.environ.get("QT_QPA_PLATFORM") == "xcb" and bool(os.environ.get("DISPLAY"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run only where torch sees a CUDA device (``pytest -m cuda`` runs them alone);
    tests marked ``xserver`` only against a real X server (``xvfb-run -a python3 -m pytest -m xserver``)."""
    if not _on_x_server():
        skip_x = pytest.mark.skip(reason="needs an X server: xvfb-run -a python3 -m pytest -m xserver")
        for item in items:
            if "xserver" in item.keywords:
                item.add_marker(skip_x)
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


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
