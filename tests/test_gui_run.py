"""A live run in the real window (offscreen): frames, reports, pause, resume, stop, close, errors, stale ids."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from PySide6.QtCore import QObject, QThread, Signal, Slot

from rwgui.core.engine import Engine
from rwgui.core.errors import OutOfMemoryError
from rwgui.gui import worker as worker_mod

# The offscreen platform cannot resize windows to their size hints and says so on every show(); harmless.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _wait_idle(qtbot, win, timeout=30000):
    qtbot.waitUntil(lambda: win.controller.state == "idle", timeout=timeout)


def test_start_receives_frames_reports_and_keeps_iterates(qtbot, window, make_config):
    window.settings_panel.set_config(make_config(iterations=40))
    frames = []
    window.controller.frame_ready.connect(lambda it, rgba: frames.append((it, rgba.shape, rgba.dtype)))
    with qtbot.waitSignal(window.controller.run_finished, timeout=30000) as fin:
        assert window.start() == 1
    s = fin.args[0]
    assert s.reason == "budget" and s.iterations == 40
    assert frames and frames[-1][0] == 40
    assert frames[-1][1:] == ((64, 64, 4), np.dtype(np.uint8))
    assert len(frames) <= 40  # time-based: never one per step at ~20 it/s... and always one at the end
    assert window.curves.data.n == 40
    assert np.array_equal(window.curves.data.column("iteration"), np.arange(1, 41))
    assert window.curves.data.has("psnr")  # the sample's ground truth is known
    assert "PSNR" in window.status.psnr.text()
    assert "40 / 40" in window.status.iteration.text()
    h = window.history
    assert 40 in h.iterations() and len(h.iterations()) >= 2
    assert h.result_key() is not None
    assert window.last_error is None


def test_the_finished_message_is_whole_in_the_status_bar_tooltip_where_the_bar_cuts_it(qtbot, window, make_config):
    """A window too narrow for the end-of-run message beside the permanent labels: the status bar elides the
    message, and its tooltip holds the whole of it until it goes."""
    window.resize(900, 700)
    window.settings_panel.set_config(make_config(iterations=12))
    with qtbot.waitSignal(window.controller.run_finished, timeout=30000):
        assert window.start() == 1
    bar = window.statusBar()
    message = bar.currentMessage()
    assert message.startswith("Run finished its iterations after 12 iterations") and message.endswith(".")
    st = window.status
    labels = (st.state, st.iteration, st.speed, st.eta, st.psnr, st.written, st.device)
    room = bar.width() - sum(w.sizeHint().width() for w in labels if w.text())
    assert bar.fontMetrics().horizontalAdvance(message) > room  # the bar shows only part of it
    assert bar.toolTip() == message
    bar.clearMessage()
    assert bar.toolTip() == ""  # no stale message in the tooltip


def _raw_keeps(qtbot, problem, cfg, **options):
    """Run ``cfg`` on a bare controller; (the raw iterates' iterations in arrival order, the summary)."""
    ctrl = worker_mod.RunController()
    raw = []
    ctrl.iterate_kept.connect(lambda item: raw.append(item.iteration) if item.kind == "raw" else None)
    with qtbot.waitSignal(ctrl.run_finished, timeout=60000) as fin:
        ctrl.start(problem, cfg, **options)
    assert ctrl.shutdown()
    return raw, fin.args[0]


def test_timeline_keeps_at_most_a_few_iterates_a_second_on_the_schedule(qtbot, make_config):
    """A fast run offers the timeline a few iterates a second, not dozens (each is a copy, a signal and a
    thumbnail the GUI thread draws while the run waits for Python's lock); all on the log-spaced schedule."""
    from rwgui.core.history import KeepSchedule
    from rwgui.core.samples import load_sample

    problem, cfg, keep = load_sample("denoise", size=64).problem(), make_config(iterations=150), KeepSchedule(16)
    raw, s = _raw_keeps(qtbot, problem, cfg, keep=keep, keep_every_s=0.2)
    assert raw[-1] == 150  # the last iterate always arrives (the run's results)
    assert all(keep.wants(it) for it in raw[:-1])
    assert 2 <= len(raw) <= s.seconds / 0.2 + 2
    every, _ = _raw_keeps(qtbot, problem, make_config(iterations=150), keep=keep, keep_every_s=0.0)
    assert set(every) == {it for it in range(1, 151) if keep.wants(it)} | {150}  # no cap: the whole schedule
    last_only, _ = _raw_keeps(qtbot, problem, make_config(iterations=150), keep=keep, keep_every_s=1e9)
    assert last_only == [150]  # the cap holds whatever the speed


def test_pause_resume_and_stop_within_a_second(qtbot, window, make_config):
    window.settings_panel.set_config(make_config(iterations=100_000))
    window.start()
    qtbot.waitUntil(lambda: window.curves.data.n >= 5, timeout=20000)
    with qtbot.waitSignal(window.controller.paused_changed, timeout=5000) as sig:
        window.toggle_pause()
    assert sig.args == [True]
    assert window.acts.pause.text() == "Resume"
    n = window.curves.data.n
    qtbot.wait(400)
    assert window.curves.data.n == n  # no new reports while paused
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.curves.data.n > n + 3, timeout=10000)
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.controller.run_finished, timeout=5000) as fin:
        window.stop()
    elapsed = time.perf_counter() - t0
    assert fin.args[0].reason == "user"
    assert elapsed < 1.0, f"stop took {elapsed:.2f} s"
    assert window.acts.start.isEnabled() and not window.acts.stop.isEnabled()


def test_stop_while_paused(qtbot, window, make_config):
    window.settings_panel.set_config(make_config(iterations=100_000))
    window.start()
    qtbot.waitUntil(lambda: window.curves.data.n >= 2, timeout=20000)
    window.toggle_pause()
    with qtbot.waitSignal(window.controller.run_finished, timeout=5000) as fin:
        window.stop()
    assert fin.args[0].reason == "user"


def test_auto_stop_ends_at_the_rule_and_marks_the_pick(qtbot, window, make_config):
    window.settings_panel.set_config(
        make_config(iterations=5000, stop_params={"window": 5, "patience": 15}, auto_stop=True)
    )
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000) as fin:
        window.start()
    s = fin.args[0]
    assert s.reason == "rule" and s.iterations < 5000
    pick = window.history.pick_iteration
    assert pick == s.pick_iteration and pick in window.history.iterations()
    assert window.curves.pick() == pick
    assert len(window.curves.loss.star.data) == 1  # the star on the loss curve
    assert window.curves.loss.pick_line.isVisible()
    item = window.timeline._items[pick]
    assert "pick" in item.text()
    assert window.timeline.current() == window.history.result_key()  # the pick is offered as the result
    assert "rule's pick" in window.timeline.result_label.text()


def test_close_mid_run_stops_the_thread(qtbot, make_config):
    from rwgui.gui.main_window import MainWindow

    win = MainWindow(sample_size=64)
    qtbot.addWidget(win)
    win.settings_panel.set_config(make_config(iterations=100_000))
    win.show()
    win.start()
    qtbot.waitUntil(lambda: win.curves.data.n >= 3, timeout=20000)
    threads = [t for t in worker_mod.live_threads() if t.isRunning()]
    assert threads
    t0 = time.perf_counter()
    win.close()
    assert time.perf_counter() - t0 < 3
    assert not any(t.isRunning() for t in threads)


def test_restart_drops_stale_payloads(qtbot, window, make_config):
    window.settings_panel.set_config(make_config(iterations=100_000))
    first = window.start()
    qtbot.waitUntil(lambda: window.curves.data.n >= 3, timeout=20000)
    window.settings_panel.set_config(make_config(iterations=25))
    with qtbot.waitSignal(window.controller.run_finished, timeout=30000):
        second = window.start()  # restart while running: the old run is stopped, its payloads dropped
    assert second == first + 1
    assert np.array_equal(window.curves.data.column("iteration"), np.arange(1, 26))
    before = window.recon_view.image().copy()
    frames = []
    window.controller.frame_ready.connect(lambda *a: frames.append(a))
    dropped = window.controller.dropped
    window.controller._on_frame_ready(first, 7, np.zeros((64, 64, 4), np.uint8))  # a late frame of run 1
    window.controller._on_reports_ready(first, [])
    assert frames == [] and window.controller.dropped == dropped + 2
    assert np.array_equal(window.recon_view.image(), before)


@pytest.mark.parametrize("error", ["runtime", "oom"])
def test_failed_step_keeps_photo_mask_and_iterates(qtbot, window, make_config, monkeypatch, tmp_path, error):
    window.settings_panel.set_task("inpaint")
    window.settings_panel.set_config(make_config("inpaint", iterations=1000))
    photo = window.photo
    window.photo_view.paint_stroke([(5, 5), (30, 30)])
    mask = window.photo_view.mask()
    real_step = Engine.step

    def failing_step(self):
        if self.iteration >= 12:
            if error == "oom":
                raise OutOfMemoryError("the 64x64 run does not fit in the memory of the test device")
            raise RuntimeError("boom in step")
        return real_step(self)

    monkeypatch.setattr(Engine, "step", failing_step)
    with qtbot.waitSignal(window.controller.run_finished, timeout=30000) as fin:
        window.start()
    assert fin.args[0].reason == ("error" if error == "runtime" else "out_of_memory")
    qtbot.waitUntil(lambda: window.last_error is not None)
    assert ("boom in step" if error == "runtime" else "does not fit") in window.last_error
    assert window.error_box is not None and window.error_box.isVisible()
    window.error_box.close()
    assert window.photo is photo
    assert np.array_equal(window.photo_view.mask(), mask)
    assert 12 in window.history.iterations() and window.history.result_key() is not None
    assert window.curves.data.n == 12  # every step that worked reached the curves
    assert window.save_result(tmp_path / "after-error.png")
    assert window.acts.start.isEnabled()


def test_engine_construction_error_reaches_the_window(qtbot, window, make_config):
    from rwgui.gui.document import build_problem

    cfg = make_config(iterations=10).replace(device="mps")  # never present on Linux: DeviceError in the worker
    problem = build_problem(window.photo, "denoise", 1, None)
    with qtbot.waitSignal(window.controller.run_finished, timeout=30000) as fin:
        window.controller.start(problem, cfg)
    assert fin.args[0].reason == "error" and fin.args[0].iterations == 0
    qtbot.waitUntil(lambda: window.last_error is not None)
    assert "mps" in window.last_error
    assert window.photo is not None and window.controller.state == "idle"


class _Emitter(QObject):
    ping = Signal(int)
    done = Signal()

    @Slot()
    def run(self):
        for i in range(20_000):
            self.ping.emit(i)
        self.done.emit()


class _Receiver(QObject):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.finished = False

    @Slot(int)
    def on_ping(self, _i):
        self.n += 1

    @Slot()
    def on_done(self):
        self.finished = True


def test_twenty_thousand_signals_worker_to_gui(qtbot):
    """PySide6 6.12.0 on CPython 3.11 aborts after a few hundred emits (bool_dealloc); this guards the pin."""
    before = sys.getrefcount(True)
    thread = QThread()
    emitter, receiver = _Emitter(), _Receiver()
    emitter.moveToThread(thread)
    emitter.ping.connect(receiver.on_ping)
    emitter.done.connect(receiver.on_done)
    thread.started.connect(emitter.run)
    thread.start()
    try:
        qtbot.waitUntil(lambda: receiver.finished and receiver.n == 20_000, timeout=60000)
    finally:
        thread.quit()
        assert thread.wait(5000)
    assert sys.getrefcount(True) > before - 1000  # no reference leak per emit


def test_opening_a_photo_mid_run_abandons_the_run(qtbot, window, make_config, tmp_path):
    from rwgui.core import imageio

    window.settings_panel.set_config(make_config(iterations=100_000))
    window.start()
    qtbot.waitUntil(lambda: len(window.history) > 0, timeout=20000)
    photo = tmp_path / "other.png"
    imageio.write(photo, np.full((48, 48, 3), 0.5, np.float32))
    assert window.open_file(photo)
    assert window.controller.state == "idle" and window.acts.start.isEnabled()
    qtbot.wait(300)  # whatever the abandoned run still sends is dropped
    assert len(window.history) == 0 and window.curves.data.n == 0
    assert window.recon_view.image().shape[:2] == (48, 48)


def test_the_worker_streams_the_reports_of_the_engines_loop(qtbot):
    """The worker only consumes the engine's loop: its reports are the ones draining the loop gives for the
    same problem, settings and seed, in order, each once."""
    from rwgui.core.engine import drain
    from rwgui.core.samples import load_sample
    from tests.conftest import tiny_config

    problem, cfg = load_sample("denoise", size=32).problem(), tiny_config(iterations=12, seed=4)
    ctrl = worker_mod.RunController()
    streamed = []
    ctrl.reports_ready.connect(streamed.extend)
    with qtbot.waitSignal(ctrl.run_finished, timeout=60000) as fin:
        ctrl.start(problem, cfg)
    assert ctrl.shutdown()
    drained = drain(Engine(problem, cfg).steps()).reports  # the engine sets the same thread count in both
    assert [r.iteration for r in streamed] == [r.iteration for r in drained] == list(range(1, 13))
    assert [r.loss for r in streamed] == pytest.approx([r.loss for r in drained], rel=1e-6)
    assert [r.pick_iteration for r in streamed] == [r.pick_iteration for r in drained]
    assert fin.args[0].reason == "budget" and fin.args[0].pick_iteration == drained[-1].pick_iteration


def test_a_stream_policy_silences_steps_but_not_the_results(qtbot):
    """A silent step keeps its report for later; the end of the run still sends everything it found."""
    from rwgui.core.samples import load_sample
    from tests.conftest import tiny_config

    class Silent(worker_mod.StreamPolicy):
        calls = 0

        def enabled(self, now: float) -> bool:
            Silent.calls += 1
            return False

    problem, cfg = load_sample("denoise", size=32).problem(), tiny_config(iterations=10)
    ctrl = worker_mod.RunController()
    ctrl.stream_policy = Silent()
    batches, frames, kept = [], [], []
    ctrl.reports_ready.connect(batches.append)
    ctrl.frame_ready.connect(lambda it, rgba: frames.append(it))
    ctrl.iterate_kept.connect(lambda item: kept.append((item.kind, item.iteration)))
    with qtbot.waitSignal(ctrl.run_finished, timeout=60000):
        ctrl.start(problem, cfg)
    assert ctrl.shutdown()
    assert Silent.calls == 10  # asked once per step
    assert len(batches) == 1 and [r.iteration for r in batches[0]] == list(range(1, 11))
    assert frames == [10]
    assert ("raw", 10) in kept and ("average", 10) in kept and any(k == "pick" for k, _ in kept)


def test_out_of_memory_in_the_worker_reports_the_message_and_keeps_the_iterates(qtbot, monkeypatch):
    from rwgui.core.samples import load_sample
    from tests.conftest import tiny_config

    real_step = Engine.step

    def step(self):
        if self.iteration == 5:
            raise OutOfMemoryError("the 32x32 run does not fit in the memory of the test device")
        return real_step(self)

    monkeypatch.setattr(Engine, "step", step)
    ctrl = worker_mod.RunController()
    failed, kept = [], []
    ctrl.run_failed.connect(failed.append)
    ctrl.iterate_kept.connect(lambda item: kept.append((item.kind, item.iteration)))
    with qtbot.waitSignal(ctrl.run_finished, timeout=60000) as fin:
        ctrl.start(load_sample("denoise", size=32).problem(), tiny_config(iterations=50))
    assert ctrl.shutdown()
    s = fin.args[0]
    assert s.reason == "out_of_memory" and s.iterations == 5 and "does not fit" in s.message
    assert failed and "does not fit" in failed[0]
    assert ("raw", 5) in kept and ("average", 5) in kept


def test_an_inpainting_run_shows_the_psnr_of_what_save_result_writes(qtbot, window, make_config, tmp_path):
    """The steps' PSNR is the network output's, which also redraws the known pixels; Save result keeps the
    photo's known pixels. The status bar and the PSNR plot say whose the steps' figure is, and show the saved
    image's own PSNR at the result, the figure that describes the file a photographer gets."""
    from rwgui.core import imageio
    from rwgui.core.metrics import psnr

    window.settings_panel.set_task("inpaint")
    window.settings_panel.set_config(make_config("inpaint", iterations=40, stop_params={"window": 5, "patience": 5}))
    gt = window.photo.ground_truth
    assert gt is not None  # the sample's damage is synthetic: its clean photo is known
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
        assert window.start() is not None, window.last_error
    assert "network output" in window.status.psnr.text()
    key = window.history.result_key()
    it = window.history.entry(key).iteration
    saved = psnr(window.session.result_pixels(key), gt)
    assert window.status.written.text() == f"Saved result PSNR {saved:.2f} dB at {it}"
    assert window.curves.written_psnr() == (it, pytest.approx(saved))
    legend = window.curves.psnr.legend.getLabel(window.curves.psnr.curves["psnr_average"]).text
    assert legend == "Network output (average)"
    network = window.curves.data.value_at("psnr_average", it)
    assert saved > network + 0.5  # the known pixels kept exactly: not the network output's figure
    out = tmp_path / "result.png"
    assert window.save_result(out)
    assert psnr(imageio.read(out).pixels, gt) == pytest.approx(saved, abs=0.1)  # the file's, to 8-bit rounding
    assert window.last_error is None


def test_a_denoising_run_names_no_other_image(qtbot, window, make_config):
    """Denoising writes the network's output itself: one PSNR, no second figure."""
    window.settings_panel.set_config(make_config(iterations=10))
    with qtbot.waitSignal(window.controller.run_finished, timeout=30000):
        assert window.start() is not None
    assert window.status.psnr.text().startswith("PSNR ") and "network output" not in window.status.psnr.text()
    assert window.status.written.text() == "" and window.curves.written_psnr() is None


def test_a_status_label_shows_its_own_tooltip_not_the_message(qtbot, window):
    """The bar's tooltip is the transient message; a permanent label without a tooltip of its own would show
    that message when hovered."""
    bar = window.statusBar()
    bar.showMessage("a message about something else")
    st = window.status
    for label in (st.state, st.iteration, st.speed, st.eta, st.psnr, st.written, st.device):
        assert label.toolTip() and label.toolTip() != bar.toolTip()
