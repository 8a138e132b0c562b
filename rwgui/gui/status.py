"""The status bar during a run: iteration / total, it/s, ETA, device, and PSNR when ground truth is known."""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtWidgets import QLabel, QStatusBar

from ..core.vocabulary import RunState

_STATE_TEXT = {
    RunState.IDLE: "Ready",
    RunState.RUNNING: "Running",
    RunState.PAUSED: "Paused",
    RunState.STOPPING: "Stopping…",
}

__all__ = ["RunStatus", "format_eta"]


def format_eta(seconds: float) -> str:
    if seconds != seconds or seconds < 0:  # NaN
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class RunStatus:
    """Permanent labels on the right of the status bar; transient messages keep the left."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.state = QLabel("Ready", bar)
        self.iteration = QLabel("", bar)
        self.speed = QLabel("", bar)
        self.eta = QLabel("", bar)
        self.psnr = QLabel("", bar)
        self.device = QLabel("", bar)
        for w in (self.state, self.iteration, self.speed, self.eta, self.psnr, self.device):
            w.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(w)
        self._total = 0
        self._window: deque[tuple[float, int]] = deque()
        self._it = 0

    def begin(self, total: int, has_ground_truth: bool) -> None:
        self._total = total
        self._window.clear()
        self._it = 0
        self.iteration.setText(f"Iteration 0 / {total}")
        self.speed.setText("")
        self.eta.setText("")
        self.psnr.setText("" if has_ground_truth else "PSNR: no ground truth")
        self.psnr.setVisible(True)

    def set_device(self, device: str) -> None:
        self.device.setText(f"Device: {device}")

    def set_state(self, state: str) -> None:
        self.state.setText(_STATE_TEXT.get(state, state))
        if state == RunState.PAUSED:
            self._window.clear()  # a pause must not lower the measured speed

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
        self.iteration.setText(f"Iteration {report.iteration} / {self._total}")
        if rate > 0:
            self.speed.setText(f"{rate:.1f} it/s" if rate < 100 else f"{rate:.0f} it/s")
            self.eta.setText(f"ETA {format_eta((self._total - report.iteration) / rate)}")
        if report.psnr is not None:
            avg = f" (average {report.psnr_average:.2f} dB)" if report.psnr_average is not None else ""
            self.psnr.setText(f"PSNR {report.psnr:.2f} dB{avg}")

    def finish(self, summary) -> None:
        self.eta.setText("")
        if summary.iterations_per_second > 0:
            self.speed.setText(f"{summary.iterations_per_second:.1f} it/s")
        if summary.peak:
            self.psnr.setText(self.psnr.text() + f" · peak {summary.peak[1]:.2f} dB at {summary.peak[0]}")
