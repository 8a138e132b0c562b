"""The studio's GUI thread stays free while Start needs a timing, the curves start afresh after a clear, and the
screenshot script offers every task it can make a photo for."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PySide6.QtCore import QCoreApplication, QThread, QTimer
from PySide6.QtWidgets import QApplication, QPushButton

from rwgui.core import estimate
from rwgui.core.device import precision_dtype
from rwgui.core.engine import StepReport
from rwgui.core.memory import MemoryModel
from rwgui.core.tasks import TASK_SPECS

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


class SlowTimer:
    """Stands in for the real step timing: sleeps (a timing takes seconds on a CPU) and records whether it was
    called on the GUI thread."""

    def __init__(self, seconds: float = 0.4, step_s: float = 1e-3) -> None:
        self.seconds, self.step_s = seconds, step_s
        self.on_gui_thread: list[bool] = []

    def __call__(self, config, task, channels, factor, size) -> float:
        self.on_gui_thread.append(QThread.currentThread() is QCoreApplication.instance().thread())
        time.sleep(self.seconds)
        return self.step_s


@pytest.fixture
def slow_timer(monkeypatch):
    """A cold timing cache and the sleeping timer; the cache is emptied again after (its fake timings must not
    reach another test)."""
    estimate.clear_cache()
    timer = SlowTimer()
    monkeypatch.setattr(estimate, "time_steps", timer)
    yield timer
    estimate.clear_cache()


class Ticks:
    """A 20 ms timer on the GUI thread: it ticks only while the GUI thread's event loop runs."""

    def __init__(self) -> None:
        self.count = 0
        self.timer = QTimer(interval=20, timeout=self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.count += 1


def _budget_between(cfg, small, big) -> int:
    """A memory budget (bytes) that ``small`` fits and ``big`` does not: Start offers a working size."""
    m = MemoryModel(cfg, 3, precision_dtype(cfg.speed.precision, torch.device("cpu")))
    lo, hi = m.estimate(small).total_bytes, m.estimate(big).total_bytes
    return (lo + hi) // 2


# ----- timing off the GUI thread -------------------------------------------------------------------------------
def test_start_with_a_time_budget_times_on_the_helper_and_the_window_stays_responsive(
    qtbot, window, make_config, slow_timer
):
    window.settings_panel.set_config(make_config(iterations=30))
    window.settings_panel.start_area.budget.setValue(0.5)  # about 30 s: Start plans the run from a timing
    ticks = Ticks()
    before = ticks.count
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
        assert window.start() is not None, window.last_error
        during = ticks.count - before
        said = window.statusBar().currentMessage()
    assert slow_timer.on_gui_thread, "Start timed nothing"
    assert not any(slow_timer.on_gui_thread), "a step was timed on the GUI thread"
    # Start waited at least one sleeping timing (0.4 s) with the event loop running: the timer kept ticking
    assert during >= 5
    assert said.startswith("Time budget:")  # the run was planned from the timing


def test_a_cancelled_wait_for_the_timing_starts_nothing(qtbot, window, make_config, slow_timer):
    window.settings_panel.set_config(make_config(iterations=30))
    window.settings_panel.start_area.budget.setValue(0.5)
    seen = []

    def cancel_when_shown() -> None:
        dialog = window.estimates.wait_dialog
        if dialog is None:
            QTimer.singleShot(20, cancel_when_shown)
            return
        seen.append(dialog.labelText())
        dialog.findChild(QPushButton).click()  # the person presses Cancel

    QTimer.singleShot(20, cancel_when_shown)
    assert window.start() is None
    assert seen and "timing" in seen[0]
    assert window.controller.state == "idle" and len(window.history) == 0 and window.last_error is None
    assert not window.estimates.waiting
    qtbot.waitUntil(lambda: not window.estimates.estimator.is_busy(), timeout=20000)  # the timing ends anyway


def test_the_working_size_offer_opens_at_once_and_fills_in_its_times(qtbot, window, make_config, slow_timer):
    cfg = make_config("denoise", iterations=4)
    window.settings_panel.set_config(cfg)
    ws = window.working_size
    ws.memory_budget = _budget_between(cfg, (40, 40), (64, 64))
    texts: list[str] = []
    ticks = Ticks()

    def answer() -> None:
        box = ws.box
        if box is None:
            QTimer.singleShot(20, answer)
            return
        texts.append(box.informativeText())
        if "timing…" in texts[-1]:
            QTimer.singleShot(20, answer)  # look again when the times have had time to arrive
            return
        downscale = next(b for b in box.buttons() if b.text().startswith("Downscale"))
        downscale.click()

    QTimer.singleShot(20, answer)
    before = ticks.count
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
        assert window.start() is not None, window.last_error
    assert "timing…" in texts[0]  # the offer was shown before the timing ended
    assert "Estimated beforehand: about" in texts[-1] and "timing…" not in texts[-1]
    assert slow_timer.on_gui_thread and not any(slow_timer.on_gui_thread)
    assert ticks.count - before >= 5
    assert window.working.mode == "downscale"


def test_the_offer_uses_cached_times_without_waiting(qtbot, window, make_config, slow_timer, monkeypatch):
    cfg = make_config("denoise", iterations=4)
    window.settings_panel.set_config(cfg)
    ws = window.working_size
    ws.memory_budget = _budget_between(cfg, (40, 40), (64, 64))
    offered = []

    def choose(plan):
        offered.append((dict(ws.times), ws.timing))
        return None  # Cancel

    monkeypatch.setattr(ws, "choose_working_size", choose)
    assert window.start() is None  # cold: the offer is asked at once, its times still being measured
    assert offered[0] == ({}, True) and not any(slow_timer.on_gui_thread)
    qtbot.waitUntil(lambda: not window.estimates.estimator.is_busy(), timeout=20000)
    assert ws.times == {}  # the answer came first: times arriving later fill in nothing
    calls = len(slow_timer.on_gui_thread)
    assert window.start() is None  # warm: the cache answers on the GUI thread, nothing is timed again
    times, timing = offered[1]
    assert not timing and times["downscale"].startswith("about") and len(slow_timer.on_gui_thread) == calls


# ----- the memory plan off the GUI thread -------------------------------------------------------------------
@pytest.fixture
def cold_probe(monkeypatch):
    """No network's memory measured yet, and the probe records whether it ran on the GUI thread (it sleeps: a
    probe takes about half a second on a CPU core)."""
    from collections import OrderedDict

    from rwgui.core import memory

    on_gui_thread: list[bool] = []
    real = memory._probe

    def probe(*args):
        on_gui_thread.append(QThread.currentThread() is QCoreApplication.instance().thread())
        time.sleep(0.3)
        return real(*args)

    monkeypatch.setattr(memory, "_rates_cache", OrderedDict())
    monkeypatch.setattr(memory, "_probe", probe)
    return on_gui_thread


def test_the_memory_plan_probes_the_network_on_the_helper_never_on_the_gui_thread(
    qtbot, window, make_config, cold_probe
):
    """A memory budget (or a photo above 512x512) makes Start plan the working size from a probe pass of the
    network: the window keeps painting while the helper runs it."""
    window.settings_panel.set_config(make_config(iterations=3))
    window.working_size.memory_budget = 2**40  # set: planned whatever the photo's size; everything fits
    ticks = Ticks()
    before = ticks.count
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
        assert window.start() is not None, window.last_error
        during = ticks.count - before
    assert cold_probe, "Start planned nothing"
    assert not any(cold_probe), "the network ran on the GUI thread"
    assert during >= 5  # Start waited for the probe (0.3 s) with the event loop running
    n = len(cold_probe)
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
        assert window.start() is not None  # measured: the plan is made at once, nothing probed again
    assert len(cold_probe) == n


def _classifier(path) -> str:
    """A small AlexNet-shaped classifier saved as a person's weights file would be."""
    from rwgui.core.classifiers import alexnet

    torch.manual_seed(0)
    torch.save(alexnet((8, 8, 8, 8, 8), hidden=16, classes=10).state_dict(), path)
    return str(path)


def test_a_time_budget_for_the_preimage_that_memory_would_shrink_is_refused(
    qtbot, window, make_config, monkeypatch, tmp_path
):
    """The pre-image keeps the photo's size under a time budget (the photo is the classifier's input): where
    memory allows only a smaller size, Start says so, as the CLI does, instead of planning a run that does not
    fit; without a time budget the smaller size is offered."""
    from rwgui.core.memory import run_dtype
    from rwgui.gui.document import build_problem

    weights = _classifier(tmp_path / "w.pth")
    window.set_classifier_weights(weights)
    window.settings_panel.set_task("preimage")
    cfg = make_config("preimage", iterations=3, task_params={"weights": weights, "layer": "relu2"})
    window.settings_panel.set_config(cfg)
    problem = build_problem(window.photo, "preimage", cfg.factor, None, cfg.task_params)
    dtype = run_dtype(cfg, problem.size, torch.device("cpu"), 3)
    with_classifier = MemoryModel(cfg, 3, dtype, "cpu", problem.operator)
    need = with_classifier.estimate(problem.size).total_bytes
    window.working_size.memory_budget = need - (need - with_classifier.estimate((40, 40)).total_bytes) // 4
    asked = []
    monkeypatch.setattr(window.working_size, "choose_working_size", lambda plan: asked.append(plan) or None)
    window.settings_panel.start_area.budget.setValue(0.5)
    assert window.start() is None
    assert asked == []  # no smaller size offered: the time budget's plan would not use it
    assert "keeps the preimage task at the photo's size" in (window.last_error or "")
    assert "classifier's input" in window.last_error and "no time limit" in window.last_error
    assert window.controller.state == "idle" and len(window.history) == 0
    window.settings_panel.start_area.budget.setValue(0.0)
    assert window.start() is None  # cancelled at the offer
    assert asked and asked[0].downscale_size is not None


def test_cancel_in_the_working_size_offer_is_none_and_starts_nothing(qtbot, window, make_config, monkeypatch):
    """Cancel is no working size: None beside the offer's WorkingMode members, and Start then starts nothing."""
    from rwgui.gui import working

    cfg = make_config("denoise", iterations=4)
    window.settings_panel.set_config(cfg)
    ws = window.working_size
    ws.memory_budget = _budget_between(cfg, (40, 40), (64, 64))
    answers = []
    real = working.ask_working_size
    monkeypatch.setattr(working, "ask_working_size", lambda *a, **k: answers.append(real(*a, **k)) or answers[-1])

    def cancel() -> None:
        if ws.box is None:
            QTimer.singleShot(20, cancel)
            return
        ws.box.escapeButton().click()  # the person presses Cancel (or Esc)

    QTimer.singleShot(20, cancel)
    assert window.start() is None
    assert answers == [None]
    assert window.last_error is None and window.controller.state == "idle" and len(window.history) == 0


# ----- curves after a clear ---------------------------------------------------------------------------------
def _reports(iterations, psnr, loss):
    return [
        StepReport(int(i), float(lo), {}, float(p), float(p), None, None, 0.01)
        for i, p, lo in zip(iterations, psnr, loss)
    ]


def test_curves_fit_the_new_run_after_a_clear_not_the_old_ranges(qtbot):
    from rwgui.gui.plots import CurvesWidget

    w = CurvesWidget()
    qtbot.addWidget(w)
    w.resize(340, 600)
    w.show()
    n = 2000
    its = np.arange(1, n + 1)
    w.set_budget(n)
    w.append(_reports(its, np.linspace(12.0, 34.0, n), np.geomspace(1.0, 1e-3, n)))
    w.redraw()
    old_x = w.loss.item.vb.viewRange()[0]
    old_psnr_y = w.psnr.item.vb.viewRange()[1]
    assert old_x[1] > 1000 and old_psnr_y[1] - old_psnr_y[0] > 15

    w.clear()  # a new run
    assert w.psnr.item.vb.viewRange()[0][1] < 100  # the empty plots no longer show the old run's ranges
    w.set_budget(n)
    # the new run's first points span much of the old ranges: drawn inside those, they looked like a flat line
    psnr, loss = [14.0, 19.0, 22.0, 25.0, 26.0], [0.9, 0.3, 0.1, 0.05, 0.02]
    w.append(_reports([1, 2, 3, 4, 5], psnr, loss))
    w.redraw()
    x_lo, x_hi = w.loss.item.vb.viewRange()[0]
    assert x_hi <= 15  # x follows the five new iterations
    y_lo, y_hi = w.psnr.item.vb.viewRange()[1]
    assert 13.0 < y_lo <= 14.0 and 26.0 <= y_hi < 27.0  # y fits the new PSNR, not the old 12..34
    l_lo, l_hi = w.loss.item.vb.viewRange()[1]  # log10 of the loss
    lo, hi = np.log10(min(loss)), np.log10(max(loss))
    assert lo - 0.1 < l_lo <= lo and hi <= l_hi < hi + 0.1  # not the old 1e-3..1


# ----- the screenshot script's tasks ------------------------------------------------------------------------
def test_the_screenshot_offers_every_task_it_can_make_a_photo_for():
    from rwgui.gui.screenshot import _parse, screenshot_tasks

    tasks = screenshot_tasks()
    assert set(tasks) == {str(t) for t, spec in TASK_SPECS.items() if not spec.requires_weights}
    assert {"denoise", "sr", "inpaint", "deblur", "flash", "jpeg", "real-noise"} <= set(tasks)
    for task in tasks:
        assert _parse(["out.png", "--task", task]).task == task
    with pytest.raises(SystemExit):
        _parse(["out.png", "--task", "preimage"])  # needs classifier weights the script does not have


@pytest.mark.parametrize("task", ["deblur", "flash"])
def test_the_screenshot_of_a_task_beyond_the_first_three_is_written(qtbot, tmp_path, task):
    """The tasks the registry added (here deblurring and flash / no-flash, which needs a second photo: the
    sample makes one) run and grab like the first three."""
    from PySide6.QtCore import QSettings

    from rwgui.gui.screenshot import _parse, _Shots

    out = tmp_path / f"{task}.png"
    args = _parse([str(out), "--task", task, "--iterations", "3", "--size", "48", "--threads", "1"])
    shots = _Shots(args, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), QApplication.instance())
    try:
        assert shots.win.task() == task
        assert shots.run() and shots.win.last_summary is not None and shots.win.last_summary.iterations == 3
        assert shots.grab(out) and out.stat().st_size > 1000
    finally:
        shots.close()


# ----- the pre-image's classifier and the estimate's memory budget -------------------------------------------------
def _preimage_in_tight_memory(window, make_config, monkeypatch, tmp_path):
    """A pre-image config for the window's photo and a memory budget that forces a downscale (taken without
    asking); returns ``apply``, which chooses the task and its settings in the window."""
    from rwgui.core.memory import run_dtype
    from rwgui.core.vocabulary import WorkingMode
    from rwgui.gui.document import build_problem

    weights = _classifier(tmp_path / "w.pth")
    cfg = make_config("preimage", iterations=3, task_params={"weights": weights, "layer": "relu2"})
    problem = build_problem(window.photo, "preimage", cfg.factor, None, cfg.task_params)  # the test's own
    model = MemoryModel(cfg, 3, run_dtype(cfg, problem.size, torch.device("cpu"), 3), "cpu", problem.operator)
    need = model.estimate(problem.size).total_bytes
    window.working_size.memory_budget = need - (need - model.estimate((40, 40)).total_bytes) // 4
    monkeypatch.setattr(window.working_size, "choose_working_size", lambda plan: WorkingMode.DOWNSCALE)

    def apply() -> None:
        window.set_classifier_weights(weights)
        window.settings_panel.set_task("preimage")
        window.settings_panel.set_config(cfg)

    return apply


def _classifier_threads(monkeypatch) -> list:
    """The threads the classifier's forward runs on, from now on."""
    import threading

    from rwgui.core.operators import Features

    threads: list[threading.Thread] = []
    real = Features.forward

    def forward(self, x):
        threads.append(threading.current_thread())
        return real(self, x)

    monkeypatch.setattr(Features, "forward", forward)
    return threads


def test_the_preimage_classifier_never_runs_on_the_gui_thread(qtbot, window, make_config, monkeypatch, tmp_path):
    """Building the pre-image's problem runs its classifier (the photo's features are the target): the estimate
    under Start and Start itself build it, and rebuild it downscaled to fit memory, on the helper thread."""
    import threading

    apply = _preimage_in_tight_memory(window, make_config, monkeypatch, tmp_path)
    threads = _classifier_threads(monkeypatch)
    apply()
    label = window.settings_panel.start_area.estimate_label
    window.estimates.refresh()
    qtbot.waitUntil(lambda: "s/step" in label.text(), timeout=60000)
    assert threads, "the estimate ran no classifier"
    assert threading.main_thread() not in threads, "the estimate ran the classifier on the GUI thread"
    n = len(threads)
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
        assert window.start() is not None, window.last_error
    assert len(threads) > n, "Start ran no classifier"
    assert threading.main_thread() not in threads, "Start ran the classifier on the GUI thread"
    assert window.working.mode == "downscale"  # the problem was rebuilt at the working size


def test_the_lab_never_runs_the_preimage_classifier_on_the_gui_thread(
    qtbot, window, make_config, monkeypatch, tmp_path
):
    """Opening the Lab on the pre-image builds its problem (the classifier computes the target) and rebuilds it
    downscaled to fit memory: both on the estimate's helper thread, as Start does, while the window waits."""
    import threading

    _preimage_in_tight_memory(window, make_config, monkeypatch, tmp_path)()
    window.estimates.estimator.cancel()  # the label's estimate may not run the classifier meanwhile
    qtbot.waitUntil(lambda: not window.estimates.estimator.is_busy(), timeout=60000)
    threads = _classifier_threads(monkeypatch)
    window.lab.open()
    assert window.lab.dock.isVisible(), window.last_error
    assert threads, "the Lab ran no classifier"
    assert threading.main_thread() not in threads, "the Lab ran the classifier on the GUI thread"
    working, _ = window.lab._working
    assert working is not None and working.mode == "downscale"  # the problem was rebuilt at the working size
    assert window.lab.panel._problem.size == working.size


def test_the_estimates_time_budget_plan_uses_the_memory_budget_start_plans_with(
    qtbot, window, make_config, monkeypatch
):
    """A memory budget smaller than the photo needs: the plan under Start (its working size and iterations)
    is the plan Start makes when the person takes the offer's default (the 'auto' working size)."""
    from rwgui.core.working_size import auto_mode

    estimate.clear_cache()
    monkeypatch.setattr(estimate, "time_steps", SlowTimer(seconds=0.0, step_s=1e-3))  # fast: time never shrinks it
    cfg = make_config("denoise", iterations=30)
    ws = window.working_size
    ws.memory_budget = _budget_between(cfg, (40, 40), (64, 64))
    monkeypatch.setattr(ws, "choose_working_size", auto_mode)
    window.settings_panel.set_config(cfg)
    window.settings_panel.start_area.budget.setValue(0.5)
    window.estimates.refresh()
    label = window.settings_panel.start_area.estimate_label
    qtbot.waitUntil(lambda: "Time budget:" in label.text(), timeout=60000)
    shown = window.estimates.last.plan
    real = window.estimates.time_plan
    made = []
    monkeypatch.setattr(window.estimates, "time_plan", lambda *a: made.append(real(*a)) or made[-1])
    try:
        with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
            assert window.start() is not None, window.last_error
    finally:
        estimate.clear_cache()
    started = made[0]
    assert started.working.mode != "full"  # memory, not time, made it smaller
    assert (shown.working, shown.iterations, shown.message, shown.preset) == (
        started.working,
        started.iterations,
        started.message,
        started.preset,
    )


def test_closing_the_window_makes_a_timing_in_progress_give_up(qtbot, window, make_config, monkeypatch):
    """A timing on the estimate's helper thread steps a real network for seconds, more on a busy machine; a
    window closing must not leave it running (a helper still stepping when Python exits aborts the process):
    the helper gives up at its next step and has ended when the window's shutdown returns."""
    from rwgui.core import cancel

    estimate.clear_cache()
    started = []

    def thirty_seconds(config, task, channels, factor, size) -> float:
        started.append(True)
        for _ in range(600):
            cancel.check()
            time.sleep(0.05)
        return 1e-3

    monkeypatch.setattr(estimate, "time_steps", thirty_seconds)
    window.settings_panel.set_config(make_config("denoise", iterations=7))
    window.estimates.refresh()
    qtbot.waitUntil(lambda: bool(started), timeout=10000)
    helper = window.estimates.estimator._thread
    assert helper is not None and helper.is_alive()
    window.estimates.shutdown(timeout=5.0)
    assert not helper.is_alive()
    estimate.clear_cache()
