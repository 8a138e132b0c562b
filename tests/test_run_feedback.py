"""What the window says while a run goes: the first frame at iteration 1, the expected time before the first
step is measured, "Pausing"/"Stopping" with the wait until the run confirms, and nothing reported after
"Paused". Offscreen: these are about the order of events, not about sizes."""

from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtWidgets import QStatusBar

from rwgui.core.vocabulary import RunState
from rwgui.gui.status import RunStatus, format_step_time


def _report(iteration: int, seconds: float, psnr: float | None = None) -> SimpleNamespace:
    return SimpleNamespace(iteration=iteration, seconds=seconds, psnr=psnr, psnr_average=None)


def test_status_says_first_step_until_one_is_measured_then_the_step_time(qtbot):
    bar = QStatusBar()
    qtbot.addWidget(bar)
    st = RunStatus(bar)
    st.begin(3000, True)
    assert st.speed.text() == "first step…" and st.iteration.text() == "Iteration 0 / 3000"
    st.set_state(RunState.RUNNING)
    st.update(_report(1, 9.6, 12.0))  # one report: its own step time, not "0 it/s" or nothing
    assert st.speed.text() == "9.6 s/step" and st.eta.text().startswith("ETA 7:5")
    st.set_state(RunState.STOPPING)
    assert st.state.text() == "Stopping after this step, about 10 s…"
    st.set_state(RunState.IDLE)
    assert st.state.text() == "Ready"
    st.clear()
    assert (st.iteration.text(), st.speed.text(), st.eta.text(), st.psnr.text()) == ("", "", "", "")
    assert format_step_time(0.05) == "20.0 it/s" and format_step_time(2.0) == "2.0 s/step"


def test_pause_is_pausing_until_the_run_confirms(qtbot):
    bar = QStatusBar()
    qtbot.addWidget(bar)
    st = RunStatus(bar)
    st.begin(100, False)
    st.set_state(RunState.RUNNING)
    st.update(_report(1, 3.0))
    st.set_state(RunState.PAUSED)
    assert st.state.text() == "Pausing after this step, about 3 s…"
    st.set_paused(True)
    assert st.state.text() == "Paused"
    st.set_paused(False)
    st.set_state(RunState.RUNNING)
    assert st.state.text() == "Running"


def test_first_frame_is_iteration_one(qtbot, window, make_config):
    window.settings_panel.set_config(make_config(iterations=5))
    frames = []
    # connected after the window's own slot: each entry sees the pane as the window left it
    window.controller.frame_ready.connect(lambda it, rgba: frames.append((it, window.recon_view.title())))
    with qtbot.waitSignal(window.controller.run_finished, timeout=30000):
        window.start()
    assert frames[0] == (1, "Restored — live, iteration 1"), frames
    assert all(title.endswith(f"iteration {it}") for it, title in frames), "the title never lags its frame"


def test_no_report_after_paused_and_the_frame_matches(qtbot, window, make_config):
    window.settings_panel.set_config(make_config(iterations=100000))
    events = []
    c = window.controller
    c.reports_ready.connect(lambda reps: events.append(("report", reps[-1].iteration)))
    c.frame_ready.connect(lambda it, rgba: events.append(("frame", it)))
    c.paused_changed.connect(lambda on: events.append(("paused" if on else "resumed", window.status.state.text())))
    window.start()
    qtbot.waitUntil(lambda: window.session.curves.n >= 3, timeout=30000)
    window.toggle_pause()
    assert window.status.state.text().startswith("Pausing after this step")
    qtbot.waitUntil(lambda: any(e[0] == "paused" for e in events), timeout=30000)
    qtbot.wait(300)  # anything still queued would arrive now
    i = events.index(("paused", "Paused"))
    assert all(kind != "report" for kind, _ in events[i + 1 :]), events[i:]
    last_report = max(it for kind, it in events[:i] if kind == "report")
    last_frame = [it for kind, it in events[:i] if kind == "frame"][-1]
    assert last_frame == last_report == window.session.curves.column("iteration")[-1]
    assert window.status.iteration.text().startswith(f"Iteration {last_report} /")
    window.stop()
    qtbot.waitUntil(lambda: c.state == RunState.IDLE, timeout=30000)
