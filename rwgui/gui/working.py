"""Fit the run to the device before it starts: a dialog that offers a working size, and what it changes.

:class:`WorkingSize` is the main window's collaborator for it (the Lab's hookup uses it too). The plan is
made before the worker exists, so that Cancel leaves everything as it was; it probes the prior (and the
pre-image's classifier) only above 512x512 (like the engine) unless ``memory_budget`` is set. A probe runs the
network, about half a second on a CPU core, once per network (:mod:`rwgui.core.memory` keeps the counts, and the
engine's own check in the worker reuses them): never on the GUI thread. The estimate under Start has usually
probed already; otherwise the plan is made on the estimate's helper thread while the window waits
(:meth:`WorkingSize.plan`). The person's photo and mask are never changed: the run gets a downscaled or cropped copy,
and :meth:`~rwgui.core.session.Session.result_pixels` turns the run's result back into what Save result writes.

Denoising and super-resolution are also offered *tiles* (:mod:`rwgui.core.tiles`): the whole photo at full
resolution, restored one overlapping tile at a time and blended; the worker runs the tiles' loops, the live
view shows the current tile placed in the photo, and the run's result is the blend at full size. The offer
states the work (tiles x iterations, steps at the tile's size) and, like every option, its estimated time from a
few steps timed beforehand (:func:`option_times`, :mod:`rwgui.core.estimate`); once the run's own first steps are
measured the status line's ETA covers the whole photo.

The option times come from the timing cache when it holds them (the estimate under Start has usually timed the
network); otherwise they are timed on the estimate's helper thread (``WorkingSize.helper``, an
:class:`~rwgui.gui.estimate_view.Estimator`) and the offer opens at once saying "timing…", its lines filled in
when the times arrive: a timing takes seconds on a CPU, and the GUI thread must never run an engine step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox, QPushButton, QStatusBar, QWidget

from ..core.config import RunConfig
from ..core.errors import OutOfMemoryError
from ..core.estimate import fixed_size_error
from ..core.memory import NotMeasured
from ..core.problems import Problem
from ..core.session import Session
from ..core.vocabulary import Task, WorkingMode
from ..core.working_size import DEFAULT_MARGIN, Working, WorkingPlan, choose_working, plan_for_problem
from .estimate_view import NO_SMALLER, HelperJob, NotTimed, StartCancelled, cached_only

if TYPE_CHECKING:
    from .canvas import ImagePane
    from .estimate_view import Estimator

__all__ = ["WorkingSize", "working_size_box", "ask_working_size"]


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[1]}×{size[0]}"


def tiles_line(plan: WorkingPlan, iterations: int | None) -> str:
    """The tiles option in words: the grid, what Save result writes, the work and what is known of its time."""
    g = plan.tiles
    assert g is not None
    th, tw = g.tile
    work = ""
    if iterations:
        work = (
            f" The work: {g.count} tiles × {iterations} iterations = {g.count * iterations} steps at {tw}×{th}; "
            "the time is unknown until the first tile's steps are measured, then the status line's ETA covers "
            "the whole photo."
        )
    return (
        f"• Tiles (full resolution): {g.describe()}, each restored as its own run and blended across the "
        f"overlaps; Save result writes {_wxh(plan.size)}.{work}"
    )


#: What an option's line says while its time is being measured on the helper thread.
TIMING = "timing…"


def offer_text(
    plan: WorkingPlan, iterations: int | None = None, times: dict[str, str] | None = None, timing: bool = False
) -> str:
    """The offer's lines, one per option, each with its estimated time (``times``, :func:`option_times`), or
    "timing…" while ``timing`` (the times are being measured; they fill in when they arrive)."""
    times = times or {}

    def timed(option: str) -> str:
        if timing:
            return f" Estimated time: {TIMING}"
        return f" Estimated beforehand: {times[option]}." if option in times else ""

    lines = ["Run at a size that fits? Your photo, mask and kept iterates stay as they are."]
    if plan.tiles is not None and plan.task in (Task.DENOISE, Task.SR):
        lines.append(tiles_line(plan, iterations) + timed(WorkingMode.TILES))
    if plan.downscale_size is not None:
        d = plan.downscale_size
        saved = (
            "Save result fills the holes of the full photo"
            if plan.task == Task.INPAINT
            else f"Save result writes {_wxh(d)}"
        )
        lines.append(f"• Downscale: the whole photo at {_wxh(d)}; {saved}.{timed(WorkingMode.DOWNSCALE)}")
    if plan.crop_size is not None:
        c = plan.crop_size
        lines.append(
            f"• Crop: the {_wxh(c)} region around the damage at full resolution; Save result pastes it "
            "back into the full photo." + timed(WorkingMode.CROP)
        )
    return "\n".join(lines)


def working_size_box(
    parent: QWidget | None,
    plan: WorkingPlan,
    iterations: int | None = None,
    times: dict[str, str] | None = None,
    timing: bool = False,
) -> tuple[QMessageBox, dict[QAbstractButton, WorkingMode | None]]:
    """The question, not yet shown, and which choice each button means (a :class:`WorkingMode`: tiles,
    downscale or crop; None for Cancel); ``iterations`` is each run's budget, for the tiles' amount of work;
    ``times`` the estimated time of each option, in words (:func:`option_times`), added to its line ("timing…"
    while ``timing``)."""
    text = (
        f"Restoring this photo at {_wxh(plan.size)} needs about {plan.needed_mb or 0:.0f} MB of memory, "
        f"but about {plan.budget_mb or 0:.0f} MB are available."
    )
    box = QMessageBox(QMessageBox.Icon.Question, "The run does not fit in memory", text, parent=parent)
    choices: dict[QAbstractButton, WorkingMode | None] = {}
    if plan.tiles is not None and plan.task in (Task.DENOISE, Task.SR):
        button = box.addButton(f"Tiles (full resolution, {plan.tiles.count} tiles)", QMessageBox.ButtonRole.AcceptRole)
        choices[button] = WorkingMode.TILES
    if plan.downscale_size is not None:
        d = plan.downscale_size
        choices[box.addButton(f"Downscale to {_wxh(d)}", QMessageBox.ButtonRole.AcceptRole)] = WorkingMode.DOWNSCALE
    if plan.crop_size is not None:
        c = plan.crop_size
        button = box.addButton(f"Crop around the damage ({_wxh(c)})", QMessageBox.ButtonRole.AcceptRole)
        choices[button] = WorkingMode.CROP
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    choices[cancel] = None
    # full resolution first, as the 'auto' working size: a crop (inpainting) or tiles (the other tasks)
    order = (WorkingMode.CROP, WorkingMode.TILES, WorkingMode.DOWNSCALE)
    best = [b for c in order for b, chosen in choices.items() if chosen == c]
    if best:
        box.setDefaultButton(cast(QPushButton, best[0]))  # addButton(text, role) made a QPushButton
    box.setEscapeButton(cancel)
    box.setInformativeText(offer_text(plan, iterations, times, timing))
    return box, choices


def option_times(plan: WorkingPlan, cfg: RunConfig, channels: int, timer=None) -> dict[str, str]:
    """Each option's estimated time (:mod:`rwgui.core.estimate`: a few steps timed, cached per network, so
    the estimate under Start has usually measured it already), "usually ..., at most ..." where the stopping
    rule usually ends a run before its budget. Empty when the timing fails. ``timer`` replaces the real
    timing: :func:`~rwgui.gui.estimate_view.cached_only` asks the cache alone, and its NotTimed passes
    through (the GUI thread then hands the timing to the helper thread)."""
    from ..core.estimate import expected_stop, format_duration, step_time

    try:
        model = step_time(cfg, plan.task, channels, plan.size, timer)
    except NotTimed:
        raise
    except Exception:  # an estimate is a courtesy: the offer stands without it
        return {}
    stop = expected_stop(cfg)

    def words(size: tuple[int, int], runs: int = 1) -> str:
        s = model.at(size) * runs
        most = format_duration(s * cfg.iterations)
        return f"usually about {format_duration(s * stop)}, at most {most}" if stop else f"about {most}"

    out: dict[str, str] = {}
    if plan.tiles is not None:
        out[WorkingMode.TILES] = words(plan.tiles.tile, plan.tiles.count)
    if plan.downscale_size is not None:
        out[WorkingMode.DOWNSCALE] = words(plan.downscale_size)
    if plan.crop_size is not None:
        out[WorkingMode.CROP] = words(plan.crop_size)
    return out


def ask_working_size(
    parent: QWidget | None,
    plan: WorkingPlan,
    iterations: int | None = None,
    times: dict[str, str] | None = None,
    shown: Callable[[QMessageBox | None], None] | None = None,
    timing: bool = False,
) -> WorkingMode | None:
    """Ask, modally, how to run a plan that does not fit: a :class:`WorkingMode` (tiles, downscale or crop), or
    None when the person cancels (or closes the box). ``shown``
    hears of the box while it is open (then None), so times arriving meanwhile can fill in its lines."""
    box, choices = working_size_box(parent, plan, iterations, times, timing)
    if shown is not None:
        shown(box)
    try:
        box.exec()
    finally:
        if shown is not None:
            shown(None)
    return choices.get(box.clickedButton())


class WorkingSize:
    """Asks for a working size when a run does not fit, and shows the session's: the result view is placed
    over the region it covers and the status bar says what Save result will write."""

    def __init__(self, session: Session, parent: QWidget, result_view: ImagePane, status_bar: QStatusBar) -> None:
        self.session = session
        self.parent = parent
        self.result_view = result_view
        self.status_bar = status_bar
        #: bytes the planner may assume, or 'auto' (90 % of the device's free memory, asked above 512x512 only)
        self.memory_budget: int | str = "auto"
        self.crop_margin: int = DEFAULT_MARGIN  # px of context kept around the damage when cropping
        self.iterations: int | None = None  # the budget of the run being planned (the tiles' amount of work)
        self.tile: tuple[int, int] | None = None  # a run on tiles: the tile running (0-based) and the count
        self.times: dict[str, str] = {}  # the estimated time of each option offered (option_times)
        self.timing = False  # the offered plan's times are being measured on the helper thread
        #: where option times are measured when the cache lacks them (the window's estimate helper); None: the
        #: offer goes without times (they are never measured on the GUI thread)
        self.helper: Estimator | None = None
        #: ``wait_for(fn, what)``: ``fn()`` computed on that helper while the window waits behind a dialog saying
        #: ``what`` (:meth:`~rwgui.gui.estimate_view.EstimateHookup.on_helper`); None: plans are made here
        self.wait_for: Callable[[Callable[[], Any], str], Any] | None = None
        self.box: QMessageBox | None = None  # the offer while it is open
        self._plan: WorkingPlan | None = None  # the plan being offered
        session.working_changed.connect(self._on_working_changed)

    def choose_working_size(self, plan: WorkingPlan) -> WorkingMode | None:
        """The person's choice for a plan that does not fit, None for Cancel (tests replace this method)."""
        return ask_working_size(self.parent, plan, self.iterations, self.times, self._set_box, self.timing)

    def _set_box(self, box: QMessageBox | None) -> None:
        self.box = box

    def time_options(self, plan: WorkingPlan, cfg: RunConfig, channels: int) -> None:
        """``times`` for ``plan``'s options: from the timing cache at once, else measured on the helper thread
        (``timing`` is True until they arrive; then the open offer's lines are filled in)."""
        self._plan, self.times, self.timing = plan, {}, False
        try:
            self.times = option_times(plan, cfg, channels, cached_only)
            return
        except NotTimed:
            pass
        if self.helper is None:
            return
        self.timing = True
        self.helper.submit(lambda: option_times(plan, cfg, channels), lambda job: self._on_times(plan, job))

    def _on_times(self, plan: WorkingPlan, job: HelperJob) -> None:
        """The helper measured ``plan``'s option times (GUI thread): fill in the offer if it still asks."""
        if plan is not self._plan:
            return  # answered already, or a later offer replaced it
        self.timing = False
        self.times = job.value if job.error is None and job.value else {}
        if self.box is not None:
            self.box.setInformativeText(offer_text(plan, self.iterations, self.times))

    def plan(self, problem: Problem, cfg: RunConfig) -> WorkingPlan:
        """The memory plan for ``problem``, without running a network on the GUI thread: from the counts earlier
        plans left (the estimate under Start, on the helper thread, has usually probed this network), else
        planned on the helper thread (``wait_for``) while a window-modal dialog waits, with Cancel
        (:class:`~rwgui.gui.estimate_view.StartCancelled`). A probe takes about half a second per network on a
        CPU core, the pre-image's classifier another."""

        def plan(measure: bool) -> WorkingPlan:
            return plan_for_problem(problem, cfg, self.memory_budget, self.crop_margin, measure=measure)

        try:
            return plan(False)
        except NotMeasured:
            pass
        if self.wait_for is None:  # a WorkingSize without the window's helper: plan here, behind a busy cursor
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                return plan(True)
            finally:
                QApplication.restoreOverrideCursor()
        planned: WorkingPlan = self.wait_for(lambda: plan(True), "Measuring the memory this network needs…")
        return planned

    def fit_to_memory(
        self, problem: Problem, cfg: RunConfig, tiles: bool = True, keep_size: bool = False
    ) -> Working | None:
        """The working size to run ``problem`` at, asking when it does not fit; None when the person cancels
        (the offer, or the wait for the plan). An OutOfMemoryError when nothing fits at all. ``tiles`` False
        leaves tiles out of the offer (the Lab compares variants on one problem, and a run on tiles is many).
        ``keep_size`` (a time budget or a Preview of the pre-image, which keep the photo's size): a photo that
        does not fit is refused with a ConfigError that says why, rather than offered a size the plan would
        not use."""
        try:
            plan = self.plan(problem, cfg)
        except StartCancelled:
            return None
        if plan.fits:
            return choose_working(plan, WorkingMode.REFUSE)
        if keep_size:
            raise fixed_size_error(plan.task, plan.sentence, NO_SMALLER)
        if not tiles:
            plan = replace(plan, tiles=None)
        if plan.downscale_size is None and plan.crop_box is None and plan.tiles is None:
            raise OutOfMemoryError(plan.sentence)
        self.iterations = cfg.iterations
        self.time_options(plan, cfg, problem.channels)  # cached, or timed on the helper while the offer is open
        try:
            choice = self.choose_working_size(plan)
        finally:
            self._plan, self.timing = None, False  # times arriving after the answer fill in nothing
        return None if choice is None else choose_working(plan, choice)

    def _on_working_changed(self, working: Working | None) -> None:
        """Place the result view over what the run works on, and say so in the status bar."""
        self.tile = None
        if working is None or working.mode in (WorkingMode.FULL, WorkingMode.TILES):  # the whole photo, placed as it is
            self.result_view.set_placement(None)
            if working is not None and working.mode == WorkingMode.TILES:
                self.status_bar.showMessage(
                    f"Working at {working.describe()} to fit in memory: the live view shows the tile being "
                    "restored in the photo; Save result writes the blended tiles at full size.",
                    15000,
                )
            return
        h, w = working.full_size
        y0, y1, x0, x1 = working.box if working.box is not None else (0, h, 0, w)
        self.result_view.set_placement((x0, y0, x1 - x0, y1 - y0))  # aligned with the photo on the left
        saved = "pastes the result into the full photo" if working.writes_full_size else f"writes {_wxh(working.size)}"
        self.status_bar.showMessage(
            f"Working at {working.describe()} to fit in memory: the live view and the timeline show that; "
            f"Save result {saved}.",
            15000,
        )

    def note(self) -> str:
        """A suffix for the result view's title while a run works on less than the full photo."""
        w = self.session.working
        if w is None or w.mode == WorkingMode.FULL:
            return ""
        if w.mode == WorkingMode.TILES and w.tiles is not None:
            t = self.tile
            return f" · tile {t[0] + 1} of {t[1]}" if t is not None else f" · full size on {w.tiles.count} tiles"
        return f" · crop {_wxh(w.size)}" if w.mode == WorkingMode.CROP else f" · downscaled to {_wxh(w.size)}"

    def on_tile(self, index: int, count: int) -> None:
        """A run on tiles moved to tile ``index`` (0-based) of ``count``: the result view's title says so."""
        self.tile = (index, count)
        self.status_bar.showMessage(f"Restoring tile {index + 1} of {count} at full resolution…", 15000)

    def compare_before(self, shown: np.ndarray | None) -> np.ndarray | None:
        """The damaged photo as the compare view needs it: the crop's region when the run worked on a crop."""
        w = self.session.working
        if shown is None or w is None or w.mode != WorkingMode.CROP or w.box is None:
            return shown
        y0, y1, x0, x1 = w.box
        return shown[y0:y1, x0:x1]
