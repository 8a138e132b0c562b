"""Start, a Preview, a time budget and the run's estimate, at the top of the settings panel.

The estimate (:func:`~rwgui.core.estimate.estimate_run`) times a few steps of the real network, which takes
seconds on a CPU: it runs on a helper thread, never the GUI's, so the window stays responsive while the person
edits. :class:`Estimator` waits until the edits pause (``DEBOUNCE_MS``), computes one estimate at a time (a
newer request waits for the running one, then only the newest is computed), and keeps every answer by its key
(photo, mask's damage, settings, time budget, memory budget), so going back to earlier settings answers at
once. Nothing is estimated while a run is going: the estimate would compete with the run for the same cores and
measure both wrongly; the status line measures the run itself then.

Every other timing the studio needs goes through the same helper (:meth:`Estimator.submit`), one at a time:
the time budget's and Preview's plan at Start (:meth:`EstimateHookup.time_plan`) and the working-size offer's
time per option (:mod:`rwgui.gui.working`). So does building a problem whose making runs a network (the
pre-image's classifier computes its target: ``RUNS_A_NETWORK``), for the estimate and for Start. Each timing
first asks the timing cache alone (:func:`cached_only`): the label's estimate has usually timed the network
already, and then nothing waits. When the cache is cold, Start
waits for the helper in a local event loop behind a window-modal "timing…" dialog with a Cancel button: the
window keeps painting, nothing can be edited under the plan, and Cancel starts nothing. Start keeps returning
the run it started (the screenshot script, the benchmarks and the tests rely on that), which is why the wait is
a local loop and not a callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QProgressDialog,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from ..core.cancel import cancellable
from ..core.config import RunConfig
from ..core.errors import RwguiError
from ..core.estimate import FIXED_SIZE, RunEstimate, TimePlan, estimate_run, fixed_size_error, plan_time_budget
from ..core.problems import Problem
from ..core.vocabulary import Task, WorkingMode
from ..core.working_size import DEFAULT_MARGIN, choose_working, plan_for_problem
from .forms import hint_style

__all__ = [
    "StartArea",
    "Estimator",
    "EstimateHookup",
    "EstimateResult",
    "HelperJob",
    "NotTimed",
    "StartCancelled",
    "cached_only",
    "compute_estimate",
]

DEBOUNCE_MS = 600
#: What the person can do when a time budget or a Preview must keep the photo's size (``FIXED_SIZE``) and that
#: size does not fit in memory.
NO_SMALLER = (
    "free memory, open a smaller photo, or set no time limit (and no Preview) to be offered a smaller working size"
)


class NotTimed(Exception):
    """:func:`cached_only` was asked for a timing the cache does not hold."""


class StartCancelled(Exception):
    """The person cancelled Start while it waited for a timing: nothing was started or changed."""


def cached_only(*_: object) -> float:
    """A timer for :mod:`rwgui.core.estimate` that never times: the cache answers (the timer is asked only on
    a miss) or :class:`NotTimed` is raised, so the GUI thread can use a timing already made without running a
    step, and hand a cold one to the helper thread."""
    raise NotTimed


class HelperJob:
    """One piece of work for the helper thread (:meth:`Estimator.submit`): ``fn``'s value or the exception it
    raised, set on the helper thread before ``done`` turns True on the GUI thread."""

    def __init__(self, fn: Callable[[], Any], then: Callable[[HelperJob], None] | None = None) -> None:
        self.fn = fn
        self.then = then
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def result(self) -> Any:
        """The value, or the exception re-raised (on the GUI thread, where the caller can show it)."""
        if self.error is not None:
            raise self.error
        return self.value


@dataclass(frozen=True)
class EstimateResult:
    """What the label shows: the estimate, the time budget's plan when one is set, or why there is none."""

    estimate: RunEstimate | None
    plan: TimePlan | None = None
    working_note: str = ""
    error: str = ""

    def text(self) -> str:
        if self.estimate is None:
            return f"No estimate: {self.error}" if self.error else ""
        head = f"Estimate: {self.estimate.short()}"
        if self.plan is not None:
            head = f"Time budget: {self.plan.message}.\n" + head
        return head + (f"\n{self.working_note}" if self.working_note else "")


def compute_estimate(
    problem: Problem,
    config: RunConfig,
    minutes: float,
    memory_budget: int | str = "auto",
    margin: int = DEFAULT_MARGIN,
) -> EstimateResult:
    """The estimate at the size the run would use: the working size that fits in ``memory_budget`` (bytes, or
    'auto': the studio's :attr:`~rwgui.gui.working.WorkingSize.memory_budget`, as Start plans with it), or the
    time budget's size and iterations when ``minutes`` > 0, capped by that working size as Start caps them
    (:meth:`EstimateHookup.time_plan`). Runs on the helper thread (it times steps)."""
    try:
        mem = plan_for_problem(problem, config, memory_budget, margin)
        if minutes > 0 and problem.task in FIXED_SIZE and not mem.fits:  # the plan keeps the photo's size
            raise fixed_size_error(problem.task, mem.sentence, NO_SMALLER)
        working = None if mem.fits else choose_working(mem, WorkingMode.AUTO)
        if minutes > 0:
            max_side = None if working is None or working.mode == WorkingMode.FULL else max(working.size)
            plan = plan_time_budget(problem, config, 60.0 * minutes, max_side=max_side)
            cfg = plan.config(config)
            return EstimateResult(estimate_run(problem, cfg, plan.working), plan)
        note = ""
        if working is not None:
            note = f"It does not fit in memory at full size; estimated at {working.describe()}."
        return EstimateResult(estimate_run(problem, config, working), working_note=note)
    except RwguiError as exc:
        return EstimateResult(None, error=str(exc))


class Estimator(QObject):
    """Estimates off the GUI thread, debounced and cached (see the module). ``ready`` carries the request's
    number and its :class:`EstimateResult`; only the newest request's answer is announced. Other timings run
    on the same helper, one at a time, through :meth:`submit`: two timings side by side would share the cores
    and measure each other."""

    ready = Signal(int, object)
    work_done = Signal()  # an estimate or a job ended (GUI thread): whoever waits looks again
    _computed = Signal(int, object, object)  # request number, key, result: from the helper thread
    _job_computed = Signal(object)  # a HelperJob, its value or error set: from the helper thread

    def __init__(self, parent: QObject | None = None, delay_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)
        self._timer.timeout.connect(self._fire)
        self._computed.connect(self._on_computed, Qt.ConnectionType.QueuedConnection)
        self._job_computed.connect(self._on_job_computed, Qt.ConnectionType.QueuedConnection)
        self._jobs: list[HelperJob] = []  # submitted, not started; they go before the next estimate
        self._cache: dict[object, EstimateResult] = {}
        self._request: tuple[object, Callable[[], EstimateResult]] | None = None
        self._number = 0
        self._busy = False
        self._thread: threading.Thread | None = None
        self._abandoned = threading.Event()  # the window closes: the helper gives up between two steps

    def request(self, key: object, work: Callable[[], EstimateResult]) -> None:
        """Estimate ``key`` by calling ``work`` on the helper thread once the edits pause (it builds the problem
        too: the pre-image's runs its classifier); a cached answer is announced at once."""
        self._number += 1
        hit = self._cache.get(key)
        if hit is not None:
            self._timer.stop()
            self._request = None
            self.ready.emit(self._number, hit)
            return
        self._request = (key, work)
        self._timer.start()

    def cancel(self) -> None:
        """Forget the request not yet started (a run starts); one already running finishes into the cache."""
        self._timer.stop()
        self._request = None
        self._number += 1

    def is_busy(self) -> bool:
        """An estimate or a job is running, waiting for the edits to pause, or queued."""
        return self._busy or self._timer.isActive() or bool(self._jobs)

    def submit(self, fn: Callable[[], Any], then: Callable[[HelperJob], None] | None = None) -> HelperJob:
        """Run ``fn`` on the helper thread, before any estimate not yet started and after the one running;
        ``then(job)`` is called on the GUI thread when it ends (``work_done`` is emitted too)."""
        job = HelperJob(fn, then)
        self._jobs.append(job)
        self._fire()
        return job

    def drop_jobs(self) -> None:
        """Forget the jobs not yet started (the window closes)."""
        self._jobs.clear()

    def _fire(self) -> None:
        if self._busy:
            return  # the running one's end fires again
        if self._jobs:
            job = self._jobs.pop(0)
            self._busy = True
            self._start_thread(self._work_job, (job,))
            return
        if self._request is None:
            return
        key, work = self._request
        self._request = None
        self._busy = True
        self._start_thread(self._work, (self._number, key, work))

    def abandon(self) -> None:
        """Make the timing in progress give up at its next step (:mod:`rwgui.core.cancel`): the window is
        closing, and a helper still stepping a network when Python exits would abort the process."""
        self._abandoned.set()

    def _start_thread(self, target: Callable[..., None], args: tuple) -> None:
        def run() -> None:
            with cancellable(self._abandoned.is_set):
                target(*args)

        thread = threading.Thread(target=run, name="rwgui-estimate", daemon=True)
        self._thread = thread
        thread.start()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the timing in progress ends: the window is closing, and no helper thread may outlive it
        (Start waits without blocking: :meth:`EstimateHookup.before_run`)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def _work(self, number: int, key: object, work: Callable[[], EstimateResult]) -> None:
        try:
            result = work()
        except Exception as exc:  # a bug must not leave the label waiting forever
            result = EstimateResult(None, error=f"{type(exc).__name__}: {exc}")
        try:
            self._computed.emit(number, key, result)
        except RuntimeError:  # the window closed while this timing ran: nobody is left to tell
            pass

    def _work_job(self, job: HelperJob) -> None:
        try:
            job.value = job.fn()
        except Exception as exc:  # handed to the GUI thread, which re-raises it where the caller can show it
            job.error = exc
        try:
            self._job_computed.emit(job)
        except RuntimeError:  # the window closed while this timing ran
            pass

    def _on_computed(self, number: int, key: object, result: EstimateResult) -> None:
        self._busy = False
        if result.estimate is not None:
            self._cache[key] = result
        if number == self._number:
            self.ready.emit(number, result)
        self._fire_soon()
        self.work_done.emit()

    def _on_job_computed(self, job: HelperJob) -> None:
        self._busy = False
        job.done = True
        if job.then is not None:
            job.then(job)
        self._fire_soon()
        self.work_done.emit()

    def _fire_soon(self) -> None:
        """Start the next piece of work once control is back in the event loop, not from the slot that ended
        the last one: a Start waiting for this one then drops the estimate request first (:meth:`cancel`)
        instead of waiting for it too."""
        QTimer.singleShot(0, self, self._fire)


class StartArea(QWidget):
    """Start (the window's Start action), Preview, "About N min" and the estimate label under them."""

    budget_changed = Signal(float)  # minutes; 0 = no time budget

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 4)
        self.start_button = QToolButton(self)  # shows the window's Start action (set_start_action)
        self.start_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.start_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.start_button.setText("Start")
        self.preview_button = QPushButton("Preview", self)
        self.preview_button.setToolTip(
            "A first look in under a minute: the photo at most 128 px a side, as many iterations as fit"
        )
        self.budget = QDoubleSpinBox(self)
        self.budget.setRange(0.0, 1440.0)
        self.budget.setDecimals(1)
        self.budget.setSingleStep(0.5)
        self.budget.setPrefix("about ")
        self.budget.setSuffix(" min")
        self.budget.setSpecialValueText("no time limit")
        self.budget.setToolTip(
            "A time budget: Start chooses a working size (downscaled and upscaled back, or the crop around the "
            "damage for inpainting) and iterations so the run ends with its best result in about this time, and "
            "stops it then at the latest"
        )
        self.estimate_label = QLabel("Estimate: open a photo", self)
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setStyleSheet(hint_style())
        self.estimate_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(self.start_button, 0, 0)
        grid.addWidget(self.preview_button, 0, 1)
        grid.addWidget(self.budget, 0, 2)
        grid.addWidget(self.estimate_label, 1, 0, 1, 3)
        grid.setColumnStretch(0, 1)
        self.budget.valueChanged.connect(self.budget_changed)

    def set_start_action(self, action) -> None:  # a QAction: the toolbar's Start, so both stay in step
        self.start_button.setDefaultAction(action)

    def minutes(self) -> float:
        return float(self.budget.value())

    def show_estimate(self, result: EstimateResult | None, pending: bool = False) -> None:
        if pending:
            self.estimate_label.setText("Estimate: timing a few steps…")
        elif result is None:
            self.estimate_label.setText("")
        else:
            self.estimate_label.setText(result.text())


class EstimateHookup(QObject):
    """The main window's estimate: asks :class:`Estimator` whenever the photo, the mask, the settings or the
    time budget change while no run is going, shows the answer under Start, and turns a time budget or a
    Preview into the working size and iterations of the run Start begins (:meth:`time_plan`)."""

    def __init__(self, window) -> None:  # the MainWindow: its session, settings panel and run controller
        super().__init__(window)
        self.window = window
        self.area: StartArea = window.settings_panel.start_area
        self.area.set_start_action(window.acts.start)
        self.estimator = Estimator(self)
        self.estimator.ready.connect(self._on_ready)
        self.last: EstimateResult | None = None
        self.waiting = False  # Start waits for the helper (a local event loop runs: start nothing else)
        self.wait_dialog: QProgressDialog | None = None  # shown while it waits, with Cancel
        self._wait_loop: QEventLoop | None = None
        self._closing = False
        s = window.session
        # the no-flash photo too: without it a flash estimate is "No estimate", so its arrival must ask again
        for signal in (s.photo_changed, s.mask_changed, s.settings_changed, s.second_photo_changed):
            signal.connect(self.refresh)
        self.area.budget_changed.connect(self.refresh)
        window.controller.state_changed.connect(self.refresh)
        self.area.preview_button.clicked.connect(lambda: window.start(preview=True))

    def _inputs(self) -> tuple[object, Callable[[], EstimateResult]] | None:
        """The estimate's key and its work for the helper thread. The problem is built there when building it
        runs a network (``RUNS_A_NETWORK``: the pre-image's classifier), from the photo and a copy of the mask
        taken here; any other is built here, so a mask with no hole is said at once. The memory budget and crop
        margin are the ones Start plans with (:class:`~rwgui.gui.working.WorkingSize`)."""
        from ..core.working_size import hole_box
        from .document import RUNS_A_NETWORK, build_problem

        w = self.window
        photo = w.photo
        if photo is None:
            return None
        cfg = w.settings_panel.config()
        mask = None if cfg.task != Task.INPAINT or w.session.mask is None else w.session.mask.copy()
        second = w.session.second()
        minutes = self.area.minutes()
        ws = w.working_size
        budget, margin = ws.memory_budget, ws.crop_margin

        def build() -> Problem:
            return build_problem(photo, cfg.task, cfg.factor, mask, cfg.task_params, second)

        made = None if cfg.task in RUNS_A_NETWORK else build()
        damage = None if mask is None else hole_box(mask)
        key = (id(photo), photo.pixels.shape, id(second), damage, cfg.to_json(), minutes, budget, margin)

        def work() -> EstimateResult:
            try:
                problem = made if made is not None else build()
            except RwguiError as exc:  # the pre-image's weights do not load, or its photo is too small
                return EstimateResult(None, error=str(exc))
            return compute_estimate(problem, cfg, minutes, budget, margin)

        return key, work

    def refresh(self, *_: object) -> None:
        """Ask for the estimate of what Start would run now (nothing while a run is going)."""
        if self.window.controller.is_busy():
            self.estimator.cancel()
            return
        try:
            inputs = self._inputs()
        except RwguiError as exc:  # a half-typed field, an inpainting mask with no hole yet
            self.area.show_estimate(EstimateResult(None, error=str(exc)))
            return
        if inputs is None:
            return
        key, work = inputs
        self.area.show_estimate(None, pending=True)
        self.estimator.request(key, work)

    def shutdown(self, timeout: float = 30.0) -> None:
        """The window is closing: start nothing more and let a timing in progress end, so no helper thread
        outlives the window or emits into deleted objects (a Start waiting for it gives up)."""
        self._closing = True
        if self._wait_loop is not None:
            self._wait_loop.quit()
        self.estimator.cancel()
        self.estimator.drop_jobs()
        self.estimator.abandon()
        self.estimator.wait(timeout)

    def wait_until(self, done: Callable[[], bool], what: str) -> bool:
        """Let the GUI thread's event loop run until ``done()`` (checked whenever the helper ends a piece of
        work), behind a window-modal dialog saying ``what`` with a Cancel button. False when the person
        cancelled (or the window closed). The GUI thread never computes here: it waits for the helper."""
        if done():
            return True
        if self._closing:
            return False
        loop = QEventLoop(self)
        dialog = QProgressDialog(what, "Cancel", 0, 0, self.window)  # 0..0: a busy bar, no percentage
        dialog.setWindowTitle("rwgui")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumDuration(0)
        cancelled = []
        dialog.canceled.connect(lambda: cancelled.append(True))
        dialog.canceled.connect(loop.quit)
        self.estimator.work_done.connect(loop.quit)
        self.waiting, self.wait_dialog, self._wait_loop = True, dialog, loop
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        try:
            dialog.show()
            while not done() and not cancelled and not self._closing:
                loop.exec()
            ok = done() and not cancelled
        finally:
            QApplication.restoreOverrideCursor()
            self.estimator.work_done.disconnect(loop.quit)
            self.waiting, self.wait_dialog, self._wait_loop = False, None, None
            dialog.canceled.disconnect()  # closing a progress dialog says "canceled" too
            dialog.close()
            dialog.deleteLater()
        return ok

    def on_helper(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()`` computed on the helper thread while Start waits (:meth:`wait_until`); its exception is
        raised here, and :class:`StartCancelled` when the person cancels (the timing still ends into the
        cache, so the next Start has it)."""
        job = self.estimator.submit(fn)
        if not self.wait_until(lambda: job.done, what):
            raise StartCancelled
        return job.result()

    def made_off_gui(self, make: Callable[[], Problem], task: str) -> Problem:
        """``make()``: here, or on the helper thread while the caller waits behind the dialog with Cancel
        (:meth:`on_helper`; :class:`StartCancelled`) when making ``task``'s problem runs a network
        (``RUNS_A_NETWORK``: the pre-image's classifier computes its target), which the GUI thread never does.
        Start and the Lab build their problems, and rebuild them at a working size, through it."""
        from .document import RUNS_A_NETWORK

        if task not in RUNS_A_NETWORK:
            return make()
        made: Problem = self.on_helper(make, "Computing the photo's features with the classifier…")
        return made

    def _on_ready(self, _number: int, result: EstimateResult) -> None:
        self.last = result
        self.area.show_estimate(result)

    def before_run(self) -> None:
        """A run is about to start: drop the estimate not yet started and wait for the timing running, without
        blocking the window (:meth:`wait_until`): beside the run it would take the run's cores and cache a
        timing measured under that load. :class:`StartCancelled` when the person cancels the wait; call it
        before anything of the run changes the session."""
        self.estimator.cancel()
        if not self.wait_until(lambda: not self.estimator.is_busy(), "Waiting for a timing to end before the run…"):
            if not self._closing:  # no run after all: the label's estimate, dropped above, is asked for again
                self.refresh()
            raise StartCancelled

    def keeps_size(self, task: str, preview: bool) -> bool:
        """Whether Start must run ``task`` at the photo's size: a time budget or a Preview of a ``FIXED_SIZE``
        task (the pre-image) plans at the photo's size, so a smaller working size that memory would need is
        refused (:meth:`~rwgui.gui.working.WorkingSize.fit_to_memory`) rather than offered."""
        return (preview or self.area.minutes() > 0) and task in FIXED_SIZE

    def expected_step_s(self, size: tuple[int, int]) -> float | None:
        """The estimate's seconds per step when it was made for this working size (the status line's first
        figure, until the run measures its own)."""
        e = self.last.estimate if self.last is not None else None
        return e.seconds_per_step if e is not None and e.size == size else None

    def time_plan(self, problem: Problem, cfg: RunConfig, working, preview: bool) -> TimePlan | None:
        """Start with a time budget (or Preview): the plan. From the timing cache when it holds the steps (the
        label's estimate has usually measured them already), else timed on the helper thread while Start waits
        (:meth:`on_helper`; :class:`StartCancelled` on Cancel). None without a time budget. A ``FIXED_SIZE``
        task (the pre-image) that memory runs at less than the photo is refused with a ConfigError, as the CLI
        refuses it: its plan keeps the photo's size, which would not fit."""
        from ..core.estimate import plan_preview

        minutes = self.area.minutes()
        if not preview and minutes <= 0:
            return None
        if problem.task in FIXED_SIZE and working is not None and working.mode != WorkingMode.FULL:
            # the plan would keep the photo's size, which memory does not allow: a run that cannot run
            why = f"the photo does not fit in memory at full size (it would at {working.describe()})"
            raise fixed_size_error(problem.task, why, NO_SMALLER)
        max_side = None if working is None or working.mode == WorkingMode.FULL else max(working.size)

        def plan(timer=None) -> TimePlan:
            if preview:
                return plan_preview(problem, cfg, timer)
            return plan_time_budget(problem, cfg, 60.0 * minutes, timer, max_side=max_side)

        try:
            return plan(cached_only)
        except NotTimed:
            pass
        what = "Preview" if preview else "The time budget"
        result: TimePlan = self.on_helper(plan, f"{what}: timing a few steps of this network…")
        return result
