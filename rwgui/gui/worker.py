"""One engine run on a QThread, and the GUI-thread controller that owns it.

The worker runs the engine's one loop (:meth:`Engine.steps`) and only streams what each step offers; the
engine alone decides when a run ends. Threading contract:

* control goes GUI -> worker through a :class:`RunControl` (``threading.Event`` flags the loop checks before
  every step): a queued slot call would not be delivered while the worker's thread is busy in the loop.
  Pause blocks on an event, it does not spin;
* data goes worker -> GUI only as signals carrying owned copies (numpy arrays and frozen reports, never a
  tensor the next step writes into), every payload tagged with the run id; reports go in batches (at most
  ~5 per second), frames at most ~10 per second whatever the step speed, raw iterates for the timeline at
  most ~5 per second: each signal costs the GUI thread Python time, and the run waits on Python's lock;
* worker signals connect only to bound methods of :class:`RunController`, a GUI-thread QObject, which drops
  stale run ids and re-emits on its own signals (tests wait on those, never on the worker's): a lambda or a
  plain function would run in the worker's thread, and a late payload of an old run would reach the window;
* stop is cooperative; the thread is quit and waited for, never terminated (terminating a thread inside a
  torch kernel can leave locks held and crash the process).

Importing this module loads torch (the engine and ``core.problems`` need it); the window imports it at
start-up, so the studio's start-up pays for torch once, before the first run.
"""

from __future__ import annotations

import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, SignalInstance, Slot

from ..core.autotune import fixed_rule
from ..core.autotune import resolve as resolve_speed
from ..core.cancel import Cancelled, cancellable
from ..core.config import RunConfig
from ..core.device import keep_device_queries_off_this_thread, resolve_device
from ..core.engine import (
    Engine,
    EventKind,
    FrameFetch,
    ImageFetch,
    RunControl,
    RunEvent,
    StepReport,
    describe_error,
    drain,
    print_error,
)
from ..core.errors import OutOfMemoryError, RwguiError
from ..core.history import KeepSchedule, thumbnail
from ..core.pixels import float_to_u16, rgba8_for_display
from ..core.problems import Problem
from ..core.tiles import TileEvent, TileGrid, run_tiled
from ..core.vocabulary import Iterate, RunState, StopReason

__all__ = [
    "RunRequest",
    "StreamPolicy",
    "KeptImage",
    "RunSummary",
    "RunWorker",
    "RunController",
    "live_threads",
    "new_run_thread",
]

_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def live_threads() -> list[QThread]:
    """Every run thread created in this process that still exists (tests assert none is running)."""
    return list(_THREADS)


def new_run_thread(obj: QObject, name: str, run: Callable[[], None], done: SignalInstance) -> QThread:
    """A thread, not yet started, that calls ``run`` when it starts and quits when ``done`` is emitted, with
    ``obj`` moved onto it. Every thread that runs the engine off the GUI thread (the studio's runs, the Lab's
    folder runs) is made here so that each is in the registry :func:`live_threads` reads."""
    thread = QThread()
    thread.setObjectName(name)
    _THREADS.add(thread)
    obj.moveToThread(thread)
    done.connect(thread.quit, Qt.ConnectionType.DirectConnection)  # quit() is thread-safe
    thread.started.connect(run)
    return thread


class StreamPolicy:
    """Whether the worker streams a step's side effects (frames, report batches, kept iterates). The
    studio's streams every step, at the request's rates; a benchmark that measures what streaming costs
    supplies its own (``rwgui.bench.streaming.DutyCycle`` alternates streaming and silent blocks in one run).

    ``enabled(now)`` is called once per step, on the worker's thread, with ``time.perf_counter()``. A silent
    step still keeps its report for the next batch, and the end of a run always sends its results."""

    def enabled(self, now: float) -> bool:
        return True


@dataclass(frozen=True)
class RunRequest:
    """An immutable snapshot taken when Start is pressed: the worker never sees live GUI state."""

    run_id: int
    problem: Problem
    config: RunConfig
    frame_hz: float = 10.0  # 10-20 a second looks live; each frame is a repaint in Python on the GUI thread
    report_hz: float = 5.0  # the status line and the curves' buffer; the curves redraw once a second anyway
    keep: KeepSchedule = field(default_factory=KeepSchedule)
    thumb_side: int = 96
    pick_every_s: float = 1.0  # the rule's pick moves often early on: send it at most this often
    keep_every_s: float = 0.2  # raw iterates for the timeline: a fast run offers far more than anyone scrubs
    average_every_s: float = 1.0
    streaming: StreamPolicy = field(default_factory=StreamPolicy)
    tiles: TileGrid | None = None  # the whole photo restored on these tiles (``problem`` is the whole photo)


@dataclass(frozen=True)
class KeptImage:
    """A full-resolution iterate for the history: RAW, AVERAGE, or PICK (raw + the average at the pick)."""

    kind: Iterate
    iteration: int
    pixels: np.ndarray  # HxWxC uint16, owned by the receiver
    thumb: np.ndarray  # HxWx4 uint8
    average: np.ndarray | None = None  # for PICK: the running average at the pick


@dataclass(frozen=True)
class RunSummary:
    """Why and where a run ended (``reason`` from the engine's loop; ERROR also when the engine could not be
    built)."""

    reason: StopReason
    iterations: int
    total: int
    pick_iteration: int | None
    peak: tuple[int, float] | None
    seconds: float
    iterations_per_second: float
    device: str
    message: str = ""
    step_seconds: float = 0.0  # of ``seconds``, the time spent inside engine.step()


@dataclass
class _KeepFetch:
    """A kept iterate on its way from the device: requested in one loop turn, taken in a later one once
    ``ready()`` (the uint16 conversion and the thumbnail happen when it is taken, never while it waits)."""

    kind: Iterate
    iteration: int
    pixels: ImageFetch
    average: ImageFetch | None = None  # for PICK: the running average at the pick

    def ready(self) -> bool:
        return self.pixels.ready() and (self.average is None or self.average.ready())


class RunWorker(QObject):
    """Builds the Engine inside its thread and consumes its loop, streaming at bounded rates; never touches a
    widget and never decides when the run ends."""

    run_started = Signal(int, str)  # run_id, device name
    reports_ready = Signal(int, object)  # run_id, list[StepReport]
    frame_ready = Signal(int, int, object)  # run_id, iteration, HxWx4 uint8
    iterate_kept = Signal(int, object)  # run_id, KeptImage
    paused_changed = Signal(int, bool)
    run_finished = Signal(int, object)  # run_id, RunSummary
    run_failed = Signal(int, str)  # run_id, message
    done = Signal()  # last signal of every run: the thread may quit
    tile_started = Signal(int, int, int)  # run_id, tile index (0-based), tile count: a run on tiles only
    status = Signal(int, str)  # run_id, what the worker does before the first step ("measuring speed…")

    def __init__(self, request: RunRequest) -> None:
        super().__init__()
        self.request = request
        self.control = RunControl()
        self.live_view = Iterate.RAW  # RAW or AVERAGE: a plain attribute, read once per frame
        self._batch: list[StepReport] = []  # reports not yet sent
        self._frame: FrameFetch | None = None  # a frame on its way from the device (never waited for)
        self._keeping: list[_KeepFetch] = []  # kept iterates on their way, oldest first (waited for at the end)
        self._sent_pick: int | None = None
        self._last = {"report": 0.0, "frame": 0.0, "pick": 0.0, "average": 0.0, "raw": 0.0}
        self._tile: tuple[int, tuple[int, int, int, int], int] | None = None  # index, box, iteration offset
        self._canvas: np.ndarray | None = None  # a run on tiles: the whole photo's frame, tiles placed in it
        self._device = ""  # a run on tiles: the device its first tile's engine named

    # ----- control, from any thread -----------------------------------------------------------------
    def stop(self) -> None:
        self.control.stop()

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    # ----- the run, on the worker thread -----------------------------------------------------------
    @Slot()
    def run(self) -> None:
        req = self.request
        rid = req.run_id
        if req.tiles is not None:
            self._end(self._run_tiles(req.tiles))
            return
        engine = None
        t0 = time.perf_counter()
        try:
            config = self._measured_config(req.problem.size)
            engine = Engine(req.problem, config)  # sets the CPU threads in this thread, as in the CLI
            self.run_started.emit(rid, engine.device_name)
            result = drain(engine.steps(self.control), partial(self._on_event, engine))
            self._flush()
            if engine.iteration > 0:
                self._send_results(engine)
            if result.stop_reason in (StopReason.OUT_OF_MEMORY, StopReason.ERROR, StopReason.DIVERGED):
                print_error(result)
                self.run_failed.emit(rid, result.message)
            summary = RunSummary(
                result.stop_reason,
                engine.iteration,
                req.config.iterations,
                engine.pick_iteration,
                engine.peak,
                time.perf_counter() - t0,
                result.iterations_run / result.seconds if result.seconds > 0 else 0.0,
                engine.device_name,
                result.message,
                result.step_seconds,
            )
        except Exception as exc:  # the engine could not be built, or streaming failed: still end cleanly
            # streaming a frame or a kept iterate can run out of device memory too (the engine's own words)
            out_of_memory = isinstance(exc, OutOfMemoryError)
            message = describe_error(exc)
            if not isinstance(exc, RwguiError):
                traceback.print_exc()
            self._flush()  # the steps that worked still reach the curves
            if engine is not None and engine.iteration > 0:
                self._send_results(engine)
            self.run_failed.emit(rid, message)
            summary = RunSummary(
                StopReason.OUT_OF_MEMORY if out_of_memory else StopReason.ERROR,
                engine.iteration if engine is not None else 0,
                req.config.iterations,
                engine.pick_iteration if engine is not None else None,
                engine.peak if engine is not None else None,
                time.perf_counter() - t0,
                0.0,
                engine.device_name if engine is not None else "",
                message,
            )
        del engine
        self._end(summary)

    def _end(self, summary: RunSummary) -> None:
        """The last signals of a run: its summary, then ``done`` (after which the thread may quit)."""
        if torch.cuda.is_initialized():  # the next run (or the Lab's next variant) budgets the freed memory
            torch.cuda.empty_cache()
        self.run_finished.emit(self.request.run_id, summary)
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())  # so that the GUI thread may delete this object safely
        self.done.emit()

    def _measured_config(self, size: tuple[int, int]) -> RunConfig:
        """The run's config once its "auto" speed settings are measured for ``size``: here, in the worker, the
        first time (then cached), never on the GUI thread; the engines built next find the choice in the cache.
        A Stop gives the measuring up (:mod:`rwgui.core.cancel`): the config then takes the unmeasured rule, so
        the engine builds at once and its loop ends before the first step."""
        req = self.request
        config, device = req.config, resolve_device(req.config.device)
        try:
            with cancellable(lambda: self.control.stop_requested):
                resolve_speed(
                    config, size, device, channels=req.problem.channels, on_status=partial(self.status.emit, req.run_id)
                )
        except Cancelled:
            config = config.replace(speed=fixed_rule(config.speed, device))
        return config

    def _run_tiles(self, grid: TileGrid) -> RunSummary:
        """The whole photo on ``grid``'s tiles through :func:`~rwgui.core.tiles.run_tiled` (each tile is the
        engine's own loop; this only consumes its events, as :meth:`run` does one engine's). Reports count
        iterations over the whole photo (tile k's step i is ``k * budget + i``), so the status line's progress
        and ETA cover the photo; frames place the current tile's iterate in the photo; nothing is kept while
        the tiles run (one tile's iterate is not the photo's), and at the end the blend is sent as the result."""
        req = self.request
        rid, budget = req.run_id, req.config.iterations
        t0 = time.perf_counter()
        self._canvas = rgba8_for_display(req.problem.naive())  # the damaged photo where no tile has run yet
        try:
            config = self._measured_config(grid.tile)  # a tile's problem has the tile's (output) size
            tiled = run_tiled(req.problem, config, grid, self.control, self._on_tile_event)
        except Exception as exc:  # a tile's engine could not be built, or streaming failed
            if not isinstance(exc, RwguiError):
                traceback.print_exc()
            self._flush()
            message = describe_error(exc)
            self.run_failed.emit(rid, message)
            reason = StopReason.OUT_OF_MEMORY if isinstance(exc, OutOfMemoryError) else StopReason.ERROR
            done = 0 if self._tile is None else self._tile[2]
            return RunSummary(reason, done, budget * grid.count, None, None, time.perf_counter() - t0, 0.0, "", message)
        self._flush()
        result = tiled.run
        assert result is not None
        last = len(tiled.results) - 1
        iteration = last * budget + tiled.results[-1].iterations_run if tiled.results else 0
        if any(r.iterations_run > 0 for r in tiled.results):  # the blend is the run's result, at full size
            self._tile = None
            self._send_frame(iteration, rgba8_for_display(tiled.image))
            px = float_to_u16(tiled.image)
            thumb = thumbnail(px, req.thumb_side)
            # a run on tiles has no raw iterate of the whole photo: its blend stands for the pick and its average
            self.iterate_kept.emit(rid, KeptImage(Iterate.PICK, iteration, px, thumb, px))
        if result.stop_reason in (StopReason.OUT_OF_MEMORY, StopReason.ERROR, StopReason.DIVERGED):
            print_error(result)
            self.run_failed.emit(rid, result.message)
        return RunSummary(
            result.stop_reason,
            iteration,
            budget * grid.count,
            None,
            None,
            time.perf_counter() - t0,
            result.iterations_run / result.seconds if result.seconds > 0 else 0.0,
            self._device,
            result.message,
            result.step_seconds,
        )

    def _on_tile_event(self, ev: TileEvent) -> None:
        """One event of a tile's loop: a new tile is announced, then the event streams as a run's would."""
        engine = ev.engine
        assert engine is not None
        if self._tile is None or self._tile[0] != ev.index:
            if self._tile is None:
                self._device = engine.device_name
                self.run_started.emit(self.request.run_id, engine.device_name)
            self._flush()  # the last tile's reports before the new tile's
            self._frame = None  # the last tile's frame in flight: its final frame is already in the canvas
            grid = self.request.tiles
            assert grid is not None
            self._tile = (ev.index, grid.boxes[ev.index], ev.index * ev.budget)
            self.tile_started.emit(self.request.run_id, ev.index, ev.count)
        event, offset = ev.event, self._tile[2]
        rep = event.report
        if rep is not None:
            pick = None if rep.pick_iteration is None else rep.pick_iteration + offset
            event = replace(event, report=replace(rep, iteration=rep.iteration + offset, pick_iteration=pick))
        self._on_event(engine, event)

    def _send_frame(self, iteration: int, rgba: np.ndarray) -> None:
        """A live frame to the window; during a run on tiles, the tile's frame placed in the whole photo."""
        if self._tile is not None and self._canvas is not None:
            y0, y1, x0, x1 = self._tile[1]
            self._canvas[y0:y1, x0:x1] = rgba
            rgba, iteration = self._canvas.copy(), iteration + self._tile[2]
        self.frame_ready.emit(self.request.run_id, iteration, rgba)

    def _on_event(self, engine: Engine, event: RunEvent) -> None:
        """One event of the engine's loop: stream what is due, at the request's rates."""
        rid = self.request.run_id
        if event.report is not None:
            self._batch.append(event.report)
        if event.kind is EventKind.PAUSED:
            self._flush()  # the curves show every step before the run waits
            self._take_kept(wait=True)  # and the timeline every iterate it kept: the device is idle now
            if engine.iteration > 0:  # and the restored pane the iterate it waits on, before "Paused"
                self._frame = None
                self._send_frame(engine.iteration, engine.frame(self._view()))
            self.paused_changed.emit(rid, True)
        elif event.kind is EventKind.RESUMED:
            self.paused_changed.emit(rid, False)
        elif event.kind is EventKind.STEP:
            now = time.perf_counter()
            if self.request.streaming.enabled(now):
                self._stream(engine, event, now)

    def _stream(self, engine: Engine, event: RunEvent, now: float) -> None:
        req, last = self.request, self._last
        self._take_kept()
        frame = self._frame
        if frame is not None and frame.ready():
            self._send_frame(frame.iteration, frame.array())
            frame = None
        if frame is None and now - last["frame"] >= 1.0 / req.frame_hz:
            first = last["frame"] == 0.0
            last["frame"] = now
            frame = engine.request_frame(self._view())
            if first or frame.ready():  # sent now (the CPU's is ready at once; the first may wait): no lag
                self._send_frame(frame.iteration, frame.array())
                frame = None
        self._frame = frame
        if now - last["raw"] >= req.keep_every_s and req.keep.wants(event.iteration):
            last["raw"] = now  # images are the newest step's; reports may lag one step
            self._keep(engine, Iterate.RAW, event.iteration)
        if now - last["average"] >= req.average_every_s:
            last["average"] = now
            self._keep(engine, Iterate.AVERAGE, event.iteration)
        rep = event.report
        if rep is None:  # overlap: this step's numbers arrive with the next one
            return
        pick = rep.pick_iteration
        if pick is not None and pick != self._sent_pick and now - last["pick"] >= req.pick_every_s:
            self._sent_pick, last["pick"] = pick, now
            self._keep(engine, Iterate.PICK, pick)
        if now - last["report"] >= 1.0 / req.report_hz:
            last["report"] = now
            self._flush()

    def _view(self) -> Iterate:
        return Iterate.AVERAGE if self.live_view == Iterate.AVERAGE else Iterate.RAW

    def _flush(self) -> None:
        if self._batch:
            self.reports_ready.emit(self.request.run_id, list(self._batch))
            self._batch.clear()

    def _keep(self, engine: Engine, kind: Iterate, iteration: int) -> None:
        """Start fetching an iterate for the timeline (taken by ``_take_kept`` in a later turn): ``image()``
        here would wait for all the device's queued work several times a second, on the loop's thread."""
        if self._tile is not None:  # a tile's iterate is not the photo's: a run on tiles keeps only its blend
            return
        if kind is Iterate.PICK:
            fetch = _KeepFetch(kind, iteration, engine.request_image(Iterate.PICK))
            fetch.average = engine.request_image(Iterate.PICK_AVERAGE)
        else:
            fetch = _KeepFetch(kind, iteration, engine.request_image(kind))
        self._keeping.append(fetch)

    def _take_kept(self, wait: bool = False) -> None:
        """Send the kept iterates whose copies have arrived, oldest first and in order (the device runs its
        queue in order, so the oldest arrives first); with ``wait``, all of them (the end of a run, a pause)."""
        side = self.request.thumb_side
        while self._keeping and (wait or self._keeping[0].ready()):
            fetch = self._keeping.pop(0)
            px = float_to_u16(fetch.pixels.array())
            avg = float_to_u16(fetch.average.array()) if fetch.average is not None else None
            item = KeptImage(fetch.kind, fetch.iteration, px, thumbnail(px, side), avg)
            self.iterate_kept.emit(self.request.run_id, item)

    def _send_results(self, engine: Engine) -> None:
        """The last frame, the final raw iterate, the running average and the rule's pick, so nothing the run
        found is lost (also after an error: the engine keeps its state), after every kept iterate still on its
        way."""
        try:
            self._take_kept(wait=True)
            self.frame_ready.emit(self.request.run_id, engine.iteration, engine.frame(self._view()))
            self._keep(engine, Iterate.RAW, engine.iteration)
            self._keep(engine, Iterate.AVERAGE, engine.iteration)
            if engine.pick_iteration is not None:
                self._keep(engine, Iterate.PICK, engine.pick_iteration)
        except Exception:
            traceback.print_exc()
        try:
            self._take_kept(wait=True)
        except Exception:
            traceback.print_exc()
        self._keeping.clear()


class RunController(QObject):
    """Owns the run threads; lives in the GUI thread and relays only the current run's payloads."""

    run_started = Signal(str)  # device name
    reports_ready = Signal(list)
    frame_ready = Signal(int, object)  # iteration, rgba
    iterate_kept = Signal(object)  # KeptImage
    paused_changed = Signal(bool)
    run_finished = Signal(object)  # RunSummary
    run_failed = Signal(str)
    state_changed = Signal(str)  # a RunState
    tile_started = Signal(int, int)  # a run on tiles: tile index (0-based), tile count
    status = Signal(str)  # the current run's words before its first step ("measuring speed…")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # the GUI thread never starts CUDA (a stall, and device memory taken while nothing runs): device facts
        # come from the worker's engine, or from a helper thread
        keep_device_queries_off_this_thread()
        self.run_id = 0
        self._worker: RunWorker | None = None
        self._runs: dict[int, tuple[QThread, RunWorker]] = {}  # kept alive until their thread finishes
        self.state = RunState.IDLE
        self.dropped = 0  # stale payloads dropped (tests look at it)
        # what every run started here streams when start() names no policy (a benchmark sets its own)
        self.stream_policy: StreamPolicy | None = None

    # ----- control ----------------------------------------------------------------------------------
    def start(self, problem: Problem, config: RunConfig, **options: Any) -> int:
        """Start a run from an immutable snapshot; a run still going is stopped and its payloads dropped."""
        if self._worker is not None:
            self._worker.stop()
        self.run_id += 1
        if self.stream_policy is not None:
            options.setdefault("streaming", self.stream_policy)
        request = RunRequest(self.run_id, problem, config, **options)
        worker = RunWorker(request)
        thread = new_run_thread(worker, f"rwgui-run-{self.run_id}", worker.run, worker.done)
        q = Qt.ConnectionType.QueuedConnection
        worker.run_started.connect(self._on_run_started, q)
        worker.reports_ready.connect(self._on_reports_ready, q)
        worker.frame_ready.connect(self._on_frame_ready, q)
        worker.iterate_kept.connect(self._on_iterate_kept, q)
        worker.paused_changed.connect(self._on_paused_changed, q)
        worker.run_finished.connect(self._on_run_finished, q)
        worker.run_failed.connect(self._on_run_failed, q)
        worker.tile_started.connect(self._on_tile_started, q)
        worker.status.connect(self._on_status, q)
        thread.finished.connect(self._on_thread_finished, q)
        self._runs[self.run_id] = (thread, worker)
        self._worker = worker
        self._set_state(RunState.RUNNING)
        thread.start()
        return self.run_id

    def pause(self) -> None:
        if self._worker is not None and self.state == RunState.RUNNING:
            self._worker.pause()
            self._set_state(RunState.PAUSED)

    def resume(self) -> None:
        if self._worker is not None and self.state == RunState.PAUSED:
            self._worker.resume()
            self._set_state(RunState.RUNNING)

    def stop(self) -> None:
        if self._worker is not None and self.state in (RunState.RUNNING, RunState.PAUSED):
            self._worker.stop()
            self._set_state(RunState.STOPPING)

    def set_time_limit(self, seconds: float | None) -> None:
        """A wall-clock cap on the current run (a time budget): it ends with StopReason.BUDGET then."""
        if self._worker is not None:
            self._worker.control.set_time_limit(seconds)

    def abandon(self) -> None:
        """Stop the current run and drop whatever it still sends (a new photo was opened)."""
        if self._worker is not None:
            self._worker.stop()
        self._worker = None
        self.run_id += 1
        self._set_state(RunState.IDLE)

    def set_live_view(self, which: Iterate) -> None:
        """Show the raw iterate or the running average in the live frames (RAW or AVERAGE)."""
        if self._worker is not None:
            self._worker.live_view = Iterate(which)

    def is_busy(self) -> bool:
        return self.state != RunState.IDLE

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
        self._set_state(RunState.IDLE)
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
            self._set_state(RunState.IDLE)
            self.run_finished.emit(summary)

    @Slot(int, str)
    def _on_run_failed(self, run_id: int, message: str) -> None:
        if self._current(run_id):
            self.run_failed.emit(message)

    @Slot(int, int, int)
    def _on_tile_started(self, run_id: int, index: int, count: int) -> None:
        if self._current(run_id):
            self.tile_started.emit(index, count)

    @Slot(int, str)
    def _on_status(self, run_id: int, message: str) -> None:
        if self._current(run_id):
            self.status.emit(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        for rid, (thread, _worker) in list(self._runs.items()):
            if thread.isFinished():
                del self._runs[rid]

    def _set_state(self, state: RunState) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
