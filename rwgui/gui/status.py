"""The status bar during a run: iteration / total, speed, ETA, device, and PSNR when ground truth is known.

What it shows is the run's own state, never a leftover: the window clears it when the session lets the run go
(``clear``), shows the Lab's numbers when a Lab result is taken (``show_result``), and says what a Pause or a
Stop is waiting for (the step in progress, with the measured time per step) until the run confirms it.

The PSNR of every step is the network output's (the engine measures it on the device, every step). Where Save
result writes other pixels, an inpainting run's composite that keeps the photo's known pixels
(:func:`~rwgui.core.compositing.keep_known`), the step's figure says whose it is ("network output") and a
second figure gives the PSNR of what Save result writes, measured at the rule's pick and at the end
(:meth:`RunStatus.show_written`): that is the number that describes the saved image.
"""

from __future__ import annotations

import math
import time
from collections import deque

from PySide6.QtWidgets import QLabel, QStatusBar

from ..core.vocabulary import RunState

__all__ = ["RunStatus", "format_eta", "format_step_time"]

#: Steps shorter than this end too soon for a "wait about N s" to help: the state label says only what happens.
_SAY_WAIT_S = 1.0


def format_eta(seconds: float) -> str:
    if seconds != seconds or seconds < 0:  # NaN
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_step_time(seconds: float) -> str:
    """A speed people read at a glance: "12.3 it/s" when fast, "4.2 s/step" when a step takes a second or more."""
    if seconds <= 0 or not math.isfinite(seconds):
        return ""
    if seconds >= 1.0:
        return f"{seconds:.1f} s/step"
    rate = 1.0 / seconds
    return f"{rate:.1f} it/s" if rate < 100 else f"{rate:.0f} it/s"


class RunStatus:
    """Permanent labels on the right of the status bar; transient messages keep the left. Where the window is
    not wide enough for a message beside the labels, Qt cuts it off: the whole message is the bar's tooltip too,
    for as long as it shows (:meth:`_on_message`), and the labels say what they show briefly."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.state = QLabel("Ready", bar)
        self.iteration = QLabel("", bar)
        self.speed = QLabel("", bar)
        self.eta = QLabel("", bar)
        self.psnr = QLabel("", bar)
        self.written = QLabel("", bar)  # the PSNR of what Save result writes, where it is not the step's
        self.written.setToolTip(
            "The PSNR of the image Save result writes: for inpainting, the photo's known pixels kept and the "
            "network's output in the holes"
        )
        self.device = QLabel("", bar)
        self.device.setToolTip("The device the run computes on: its threads and number precision")
        # each permanent label has a tooltip of its own: one without would show the bar's, the current message
        self.state.setToolTip("What the run is doing")
        self.iteration.setToolTip("The iteration shown, of the run's iteration budget")
        self.speed.setToolTip("Time per step (expected before the first step, measured after)")
        self.eta.setToolTip("Time left until the iteration budget is spent, at the measured speed")
        self.psnr.setToolTip(
            "PSNR against the ground truth: the step's output, its running average (avg), and the peak"
        )
        for w in (self.state, self.iteration, self.speed, self.eta, self.psnr, self.written, self.device):
            w.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(w)
        self._total = 0
        self._window: deque[tuple[float, int]] = deque()
        self._it = 0
        self._step_s: float | None = None  # the last measured seconds per step of this run
        self._run_state: str = RunState.IDLE
        self._paused = False  # the run confirmed the pause (its last step's numbers have arrived)
        self._psnr_of = ""  # whose PSNR the steps' figure is, where it is not what Save result writes
        bar.messageChanged.connect(self._on_message)

    # ----- a run's life --------------------------------------------------------------------------------
    def clear(self) -> None:
        """No run: the last one's iteration, speed and PSNR go (a new photo, a task switch, a new run)."""
        self._total = 0
        self._window.clear()
        self._it = 0
        self._step_s = None
        for w in (self.iteration, self.speed, self.eta, self.psnr, self.written):
            w.setText("")
        self._psnr_of = ""

    def begin(
        self, total: int, has_ground_truth: bool, expected_step_s: float | None = None, psnr_of: str = ""
    ) -> None:
        """A run starts. Until its first step is measured the speed says what is expected: ``expected_step_s``
        when an estimate exists, else that the first step is under way (it also builds the network). ``psnr_of``
        names whose PSNR the steps report where Save result writes another image ("network output"); the
        written image's comes through :meth:`show_written`."""
        self.clear()
        self._psnr_of = psnr_of
        self._total = total
        self._paused = False
        self.iteration.setText(f"Iteration 0 / {total}")
        if expected_step_s is not None and expected_step_s > 0:
            self.speed.setText(f"expected ~{format_step_time(expected_step_s)}")
        else:
            self.speed.setText("first step…")
        self.psnr.setText("" if has_ground_truth else "PSNR: no ground truth")
        self.psnr.setVisible(True)

    def set_device(self, device: str) -> None:
        self.device.setText(device)  # "cpu (1 thread, bf16)": the tooltip says what it is

    def set_state(self, state: str) -> None:
        """The controller's state. A pause is "Pausing" until the run confirms it (:meth:`set_paused`): the step
        in progress ends first, and its numbers arrive before the word "Paused"."""
        if state != self._run_state and state != RunState.PAUSED:
            self._paused = False
        self._run_state = state
        if state == RunState.PAUSED:
            self._window.clear()  # a pause must not lower the measured speed
        self._show_state()

    def set_paused(self, paused: bool) -> None:
        """The run says it is waiting (True, after its last report) or going on again (False)."""
        self._paused = paused
        self._show_state()

    def step_seconds(self) -> float | None:
        """The measured seconds per step of this run (None before its first step)."""
        return self._step_s

    def _wait_text(self) -> str:
        s = self._step_s
        return f", about {math.ceil(s)} s" if s is not None and s >= _SAY_WAIT_S else ""

    def _show_state(self) -> None:
        st = self._run_state
        if st == RunState.PAUSED:
            text = "Paused" if self._paused else f"Pausing after this step{self._wait_text()}…"
        elif st == RunState.STOPPING:
            text = f"Stopping after this step{self._wait_text()}…"
        elif st == RunState.RUNNING:
            text = "Running"
        elif st == RunState.IDLE:
            text = "Ready"
        else:
            text = str(st)
        self.state.setText(text)

    def rate(self) -> float:
        """Iterations per second over the last few seconds of wall time."""
        if len(self._window) < 2:
            return 0.0
        (t0, i0), (t1, i1) = self._window[0], self._window[-1]
        return (i1 - i0) / (t1 - t0) if t1 > t0 else 0.0

    def update(self, report) -> None:
        now = time.perf_counter()
        self._it = report.iteration
        self._window.append((now, report.iteration))
        while len(self._window) > 2 and now - self._window[0][0] > 5.0:
            self._window.popleft()
        rate = self.rate()
        # one step's own time until two reports give a rate (the first step, or a slow run's first seconds)
        step_s = 1.0 / rate if rate > 0 else (report.seconds if report.seconds > 0 else None)
        if step_s is not None:
            self._step_s = step_s
            self.speed.setText(format_step_time(step_s))
            self.eta.setText(f"ETA {format_eta(max(0, self._total - report.iteration) * step_s)}")
        self.iteration.setText(f"Iteration {report.iteration} / {self._total}")
        if report.psnr is not None:
            avg = f" (avg {report.psnr_average:.2f} dB)" if report.psnr_average is not None else ""
            whose = f" ({self._psnr_of})" if self._psnr_of else ""
            self.psnr.setText(f"PSNR{whose} {report.psnr:.2f} dB{avg}")
        if self._run_state in (RunState.STOPPING, RunState.PAUSED):
            self._show_state()  # the wait it names follows the newest measurement

    def _on_message(self, message: str) -> None:
        """The transient message changed: the bar's tooltip is the whole of it (none once it goes), since the
        status bar elides a message that does not fit beside the permanent labels."""
        self.bar.setToolTip(message)

    def finish(self, summary) -> None:
        self.eta.setText("")
        if summary.iterations_per_second > 0:
            self.speed.setText(format_step_time(1.0 / summary.iterations_per_second))
        if summary.peak:
            self.psnr.setText(self.psnr.text() + f" · peak {summary.peak[1]:.2f} dB at {summary.peak[0]}")

    def show_written(self, iteration: int, psnr: float) -> None:
        """The PSNR of what Save result writes (the rule's pick, the end of the run, or the result the person
        chose), where the steps' figure is another image's."""
        self.written.setText(f"Saved result PSNR {psnr:.2f} dB at {iteration}")

    def show_result(self, source: str, iteration: int, psnr: float | None) -> None:
        """A result that is not this window's run (a Lab result taken): its iteration and PSNR, no speed."""
        self.clear()
        self.iteration.setText(f"{source}: iteration {iteration}")
        self.psnr.setText(f"PSNR {psnr:.2f} dB" if psnr is not None else "")
