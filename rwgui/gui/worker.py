"""One engine run on a QThread, and the GUI-thread controller that owns it.

Threading contract (DESIGN.md, QT_TORCH_NOTES pitfalls 2-4, 8, 9, 11, 12):

* control goes GUI -> worker through ``threading.Event`` flags checked every step (a queued slot call would
  not arrive while the loop runs); pause blocks on an event, it does not spin;
* data goes worker -> GUI only as signals carrying owned copies, every payload tagged with the run id;
  reports go in batches (at most ~5 per second), frames at most ~10 per second whatever the step speed,
  raw iterates for the timeline at most ~5 per second;
* worker signals connect only to bound methods of :class:`RunController`, a GUI-thread QObject, which drops
  stale run ids and re-emits on its own signals (tests wait on those, never on the worker's);
* stop is cooperative; the thread is quit and waited for, never terminated.
"""

from __future__ import annotations

import threading
import time
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from ..core.config import RunConfig
from ..core.errors import RwguiError
from ..core.history import KeepSchedule, thumbnail, to_uint16
from ..core.problems import Problem

__all__ = ["RunRequest", "KeptImage", "RunSummary", "RunWorker", "RunController", "live_threads"]

_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def live_threads() -> list[QThread]:
    """Every run thread created in this process that still exists (tests assert none is running)."""
    return list(_THREADS)


@dataclass(frozen=True)
class RunRequest:
    """An immutable snapshot taken when Start is pressed: the worker never sees live GUI state."""

    run_id: int
    problem: Problem
    config: RunConfig
    frame_hz: float = 10.0  # DESIGN: 10-20 a second; each frame is a repaint in Python on the GUI thread
    report_hz: float = 5.0  # the status line and the curves' buffer; the curves redraw once a second anyway
    keep: KeepSchedule = field(default_factory=KeepSchedule)
    thumb_side: int = 96
    pick_every_s: float = 1.0  # the rule's pick moves often early on: send it at most this often
    keep_every_s: float = 0.2  # raw iterates for the timeline: a fast run offers far more than anyone scrubs
    average_every_s: float = 1.0


@dataclass(frozen=True)
class KeptImage:
    """A full-resolution iterate for the history. ``kind``: 'raw', 'average' or 'pick' (raw + average)."""

    kind: str
    iteration: int
    pixels: np.ndarray  # HxWxC uint16, owned by the receiver
    thumb: np.ndarray  # HxWx4 uint8
    average: np.ndarray | None = None  # for 'pick': the running average at the pick


@dataclass(frozen=True)
class RunSummary:
    """Why and where a run ended. ``reason``: 'completed', 'rule', 'stopped' or 'error'."""

    reason: str
    iterations: int
    total: int
    pick_iteration: int | None
    peak: tuple[int, float] | None
    seconds: float
    iterations_per_second: float
    device: str
    message: str = ""
    step_seconds: float = 0.0  # of ``seconds``, the time spent inside engine.step()


class RunWorker(QObject):
    """Builds the Engine inside its thread and loops ``step()``; never touches a widget."""

    run_started = Signal(int, str)  # run_id, device name
    reports_ready = Signal(int, object)  # run_id, list[StepReport]
    frame_ready = Signal(int, int, object)  # run_id, iteration, HxWx4 uint8
    iterate_kept = Signal(int, object)  # run_id, KeptImage
    paused_changed = Signal(int, bool)
    run_finished = Signal(int, object)  # run_id, RunSummary
    run_failed = Signal(int, str)  # run_id, message
    done = Signal()  # last signal of every run: the thread may quit

    def __init__(self, request: RunRequest) -> None:
        super().__init__()
        self.request = request
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self.live_view = "raw"  # 'raw' or 'average': a plain attribute, read once per frame
        self._step_seconds = 0.0  # time inside engine.step()
        self._loop_seconds = 0.0  # wall time of the loop, pauses excluded: the it/s the summary reports
        self._batch: list = []  # reports not yet sent

    # ----- control, from any thread -----------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._go.set()  # wake a paused loop so it can see the stop

    def pause(self) -> None:
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    # ----- the loop, on the worker thread ----------------------------------------------------------
    @Slot()
    def run(self) -> None:
        req = self.request
        rid = req.run_id
        engine = None
        reason, message = "error", ""
        t0 = time.perf_counter()
        try:
            self._set_threads(req.config)
            from ..core.engine import Engine  # torch import stays off the GUI start-up path

            engine = Engine(req.problem, req.config)
            self.run_started.emit(rid, engine.device_name)
            reason = self._loop(engine)
        except Exception as exc:
            message = str(exc) if isinstance(exc, RwguiError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, RwguiError):
                traceback.print_exc()
            self._flush(self._batch)  # the steps that worked still reach the curves
            if engine is not None and engine.iteration > 0:
                self._send_results(engine)
            self.run_failed.emit(rid, message)
        n = engine.iteration if engine is not None else 0
        summary = RunSummary(
            reason,
            n,
            req.config.iterations,
            engine.pick_iteration if engine else None,
            engine.peak if engine else None,
            time.perf_counter() - t0,
            n / self._loop_seconds if self._loop_seconds > 0 else 0.0,
            engine.device_name if engine else "",
            message,
            self._step_seconds,
        )
        del engine
        self.run_finished.emit(rid, summary)
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())  # so that the GUI thread may delete this object safely
        self.done.emit()

    def _set_threads(self, config: RunConfig) -> None:
        """Leave a core for the GUI on CPU runs (pitfall 8: set in the thread that computes)."""
        import torch

        from ..core.device import default_threads, resolve_device

        if resolve_device(config.device).type == "cpu":
            torch.set_num_threads(default_threads(gui=True))

    def _loop(self, engine: Any) -> str:
        req = self.request
        rid = req.run_id
        budget = req.config.iterations
        batch = self._batch
        t_report = t_frame = t_pick = t_avg = t_keep = 0.0
        report_dt, frame_dt = 1.0 / req.report_hz, 1.0 / req.frame_hz
        sent_pick: int | None = None
        frame = None  # a frame on its way from the device (never waited for inside the loop)
        reason = "completed"
        t_loop = time.perf_counter()
        paused = 0.0
        while engine.iteration < budget:
            if self._stop.is_set():
                reason = "stopped"
                break
            if not self._go.is_set():
                self._add(batch, engine.flush())
                self._flush(batch)
                self.paused_changed.emit(rid, True)
                tp = time.perf_counter()
                self._go.wait()
                paused += time.perf_counter() - tp
                self.paused_changed.emit(rid, False)
                continue
            ts = time.perf_counter()
            rep = engine.step()
            self._step_seconds += time.perf_counter() - ts
            now = time.perf_counter()
            if frame is not None and frame.ready():
                self.frame_ready.emit(rid, frame.iteration, frame.array())
                frame = None
            if frame is None and now - t_frame >= frame_dt:
                t_frame = now
                frame = engine.request_frame(self._view())
            if now - t_keep >= req.keep_every_s and req.keep.wants(engine.iteration):
                t_keep = now  # images are the newest step's; reports may lag one step
                self._keep(engine, "raw", engine.iteration)
            if now - t_avg >= req.average_every_s:
                t_avg = now
                self._keep(engine, "average", engine.iteration)
            if rep is None:  # overlap: this step's numbers arrive with the next one
                continue
            batch.append(rep)
            if rep.best_iteration is not None and rep.best_iteration != sent_pick and now - t_pick >= req.pick_every_s:
                sent_pick, t_pick = rep.best_iteration, now
                self._keep(engine, "pick", rep.best_iteration)
            if now - t_report >= report_dt:
                t_report = now
                self._flush(batch)
            if engine.stop_requested and req.config.auto_stop:
                reason = "rule"
                break
        self._add(batch, engine.flush())
        self._flush(batch)
        self._loop_seconds = time.perf_counter() - t_loop - paused
        if engine.iteration > 0:
            self.frame_ready.emit(rid, engine.iteration, engine.frame(self._view()))
            self._send_results(engine)
        return reason

    def _view(self) -> str:
        return "average" if self.live_view == "average" else "raw"

    @staticmethod
    def _add(batch: list, rep: Any) -> None:
        if rep is not None:
            batch.append(rep)

    def _flush(self, batch: list) -> None:
        if batch:
            self.reports_ready.emit(self.request.run_id, list(batch))
            batch.clear()

    def _keep(self, engine: Any, kind: str, iteration: int) -> None:
        side = self.request.thumb_side
        if kind == "pick":
            px = to_uint16(engine.image("pick"))
            avg = to_uint16(engine.image("pick_average"))
            item = KeptImage("pick", iteration, px, thumbnail(px, side), avg)
        else:
            px = to_uint16(engine.image("average" if kind == "average" else "raw"))
            item = KeptImage(kind, iteration, px, thumbnail(px, side))
        self.iterate_kept.emit(self.request.run_id, item)

    def _send_results(self, engine: Any) -> None:
        """The final raw iterate, the running average and the rule's pick, so nothing the run found is lost."""
        try:
            self._keep(engine, "raw", engine.iteration)
            self._keep(engine, "average", engine.iteration)
            if engine.pick_iteration is not None:
                self._keep(engine, "pick", engine.pick_iteration)
        except Exception:
            traceback.print_exc()


class RunController(QObject):
    """Owns the run threads; lives in the GUI thread and relays only the current run's payloads."""

    run_started = Signal(str)  # device name
    reports_ready = Signal(list)
    frame_ready = Signal(int, object)  # iteration, rgba
    iterate_kept = Signal(object)  # KeptImage
    paused_changed = Signal(bool)
    run_finished = Signal(object)  # RunSummary
    run_failed = Signal(str)
    state_changed = Signal(str)  # 'idle', 'running', 'paused', 'stopping'

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run_id = 0
        self._worker: RunWorker | None = None
        self._runs: dict[int, tuple[QThread, RunWorker]] = {}  # kept alive until their thread finishes
        self.state = "idle"
        self.dropped = 0  # stale payloads dropped (tests look at it)

    # ----- control ----------------------------------------------------------------------------------
    def start(self, problem: Problem, config: RunConfig, **options: Any) -> int:
        """Start a run from an immutable snapshot; a run still going is stopped and its payloads dropped."""
        if self._worker is not None:
            self._worker.stop()
        self.run_id += 1
        request = RunRequest(self.run_id, problem, config, **options)
        worker = RunWorker(request)
        thread = QThread()
        thread.setObjectName(f"rwgui-run-{self.run_id}")
        _THREADS.add(thread)
        worker.moveToThread(thread)
        q = Qt.ConnectionType.QueuedConnection
        worker.run_started.connect(self._on_run_started, q)
        worker.reports_ready.connect(self._on_reports_ready, q)
        worker.frame_ready.connect(self._on_frame_ready, q)
        worker.iterate_kept.connect(self._on_iterate_kept, q)
        worker.paused_changed.connect(self._on_paused_changed, q)
        worker.run_finished.connect(self._on_run_finished, q)
        worker.run_failed.connect(self._on_run_failed, q)
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)  # quit() is thread-safe
        thread.started.connect(worker.run)
        thread.finished.connect(self._on_thread_finished, q)
        self._runs[self.run_id] = (thread, worker)
        self._worker = worker
        self._set_state("running")
        thread.start()
        return self.run_id

    def pause(self) -> None:
        if self._worker is not None and self.state == "running":
            self._worker.pause()
            self._set_state("paused")

    def resume(self) -> None:
        if self._worker is not None and self.state == "paused":
            self._worker.resume()
            self._set_state("running")

    def stop(self) -> None:
        if self._worker is not None and self.state in ("running", "paused"):
            self._worker.stop()
            self._set_state("stopping")

    def abandon(self) -> None:
        """Stop the current run and drop whatever it still sends (a new photo was opened)."""
        if self._worker is not None:
            self._worker.stop()
        self._worker = None
        self.run_id += 1
        self._set_state("idle")

    def set_live_view(self, which: str) -> None:
        if self._worker is not None:
            self._worker.live_view = which

    def is_busy(self) -> bool:
        return self.state != "idle"

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop every run and wait for its thread (window closing). True when all threads ended."""
        ok = True
        for thread, worker in list(self._runs.values()):
            worker.stop()
            thread.quit()
        for thread, _worker in list(self._runs.values()):
            ok = thread.wait(timeout_ms) and ok
        self._worker = None
        self.run_id += 1  # anything still queued is stale now
        self._set_state("idle")
        return ok

    # ----- relays (GUI thread) -----------------------------------------------------------------------
    def _current(self, run_id: int) -> bool:
        if run_id == self.run_id:
            return True
        self.dropped += 1
        return False

    @Slot(int, str)
    def _on_run_started(self, run_id: int, device: str) -> None:
        if self._current(run_id):
            self.run_started.emit(device)

    @Slot(int, object)
    def _on_reports_ready(self, run_id: int, reports: list) -> None:
        if self._current(run_id):
            self.reports_ready.emit(reports)

    @Slot(int, int, object)
    def _on_frame_ready(self, run_id: int, iteration: int, rgba: np.ndarray) -> None:
        if self._current(run_id):
            self.frame_ready.emit(iteration, rgba)

    @Slot(int, object)
    def _on_iterate_kept(self, run_id: int, item: KeptImage) -> None:
        if self._current(run_id):
            self.iterate_kept.emit(item)

    @Slot(int, bool)
    def _on_paused_changed(self, run_id: int, paused: bool) -> None:
        if self._current(run_id):
            self.paused_changed.emit(paused)

    @Slot(int, object)
    def _on_run_finished(self, run_id: int, summary: RunSummary) -> None:
        if self._current(run_id):
            self._worker = None
            self._set_state("idle")
            self.run_finished.emit(summary)

    @Slot(int, str)
    def _on_run_failed(self, run_id: int, message: str) -> None:
        if self._current(run_id):
            self.run_failed.emit(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        for rid, (thread, _worker) in list(self._runs.items()):
            if thread.isFinished():
                del self._runs[rid]

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
