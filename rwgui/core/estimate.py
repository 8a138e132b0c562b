"""How long a run will take, told before it starts, and a working size and budget that fit "about N minutes".

**Seconds per step** are measured, not guessed: :func:`time_steps` times a few steps of the real
:class:`~rwgui.core.engine.Engine` (the run's own network, loss prior and speed settings, "auto" resolved by
:mod:`rwgui.core.autotune` as the run will) on a synthetic problem of the run's task at a small size. A step's cost
grows with the *padded* area the network sees, but not exactly in proportion (caches stop holding the activations as
they grow, and a small step has a fixed part), so :class:`StepTime` times two sizes, ``PROBE_SIDES``, and
interpolates between them on a log-log scale; beyond the larger one it extrapolates with the exponent measured
between the two, at least 1 (a step never gets cheaper per pixel as the image grows). A working size no larger than
the smaller probe is timed at its own size, and so is the working size a time budget chooses when it is smaller than
the probes (a small step's fixed part makes extrapolating down too optimistic). Measurements are cached per network
and size for the life of the process.

**The total** is the seconds per step times the iteration budget, and, where a stopping rule usually ends the run
before the budget, times the iteration it usually ends at: the rule's *typical pick* (the median pick of the
stopping benchmark's ten denoising runs, ``TYPICAL_PICK``) plus its patience. That is what the person can plan on;
the budget is the most it will take.

Every task of the registry (:mod:`rwgui.core.tasks`) is timed on its own kind of problem, built by
:func:`~rwgui.core.problems.make_problem` like the run's: flash / no-flash with a synthetic second photo (its input
code is the flash photo, so the code's channels are the photo's), deblurring with the run's kernel, the pre-image
with a synthetic target made by the run's own classifier (its weights file and layer: every step runs the classifier
forward and backward, so its architecture is part of a step's cost). So the cache key holds the task's parameters
and, for a parameter that names a file, the file's size and modification time: the same path may hold another
network next time. The speed settings' measurement (:mod:`rwgui.core.autotune`) times its candidates on the same
:func:`synthetic_problem`, for the same reason.

**The memory** is :class:`~rwgui.core.memory.MemoryModel`'s estimate at the working size, the one the
working-size plan uses: where the operator is itself a network (the pre-image's classifier) it includes its
weights and the activations autograd keeps through it for the backward pass
(:func:`~rwgui.core.memory.operator_memory`).

**A time budget** (:func:`plan_time_budget`) picks the largest working size whose step time leaves at least the
task's ``MIN_ITERATIONS`` in the time (the whole photo; for inpainting the crop around the damage next; then the
photo downscaled, the result upscaled back) and the iterations the time allows at that size, never more than the
preset's and never fewer than ``ITERATION_FLOOR``. Flash / no-flash downscales both photos alike
(:func:`~rwgui.core.problems.remake`). The pre-image is never downscaled (``FIXED_SIZE``): the photo is the
classifier's input, and a smaller one is a different input to it, with other features to match, so there the
budget sets only the iterations. The run honours it with a wall-clock cap as well
(:class:`~rwgui.core.engine.RunControl`), so a machine that slows down mid-run still ends on time. A *preview*
(:func:`plan_preview`) is the same with a side of at most ``PREVIEW_SIDE`` and ``PREVIEW_SECONDS``. On a CPU, where
the preset's network would be reduced, the plan also times the preset's narrower network (``CPU_FAST_PRESETS``:
``denoise-fast``, measured to reach about the same PSNR in a third of the time) and takes it where it buys more.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import PRESETS, RunConfig, preset
from .errors import ConfigError
from .problems import Problem, make_problem
from .vocabulary import Task, WorkingMode
from .working_size import DEFAULT_MARGIN, Working, hole_box

__all__ = [
    "PROBE_SIDES",
    "TYPICAL_PICK",
    "MIN_ITERATIONS",
    "StepTime",
    "RunEstimate",
    "TimePlan",
    "time_steps",
    "step_time",
    "expected_stop",
    "estimate_run",
    "plan_time_budget",
    "plan_preview",
    "format_duration",
    "FIXED_SIZE",
    "fixed_size_error",
    "synthetic_problem",
    "task_identity",
]

#: Sides of the two square sizes a step is timed at; 256 is where the paper's network stops fitting a CPU's
#: caches, so the exponent between them carries that change into larger sizes.
PROBE_SIDES = (128, 256)
WARMUP_STEPS = 1  # the first step builds the kernels (oneDNN primitives, cuDNN's search): not a step's cost
TIMED_STEPS = 3
#: The stopping benchmark's picks (rwgui/bench/README.md, "Stopping at the peak without ground truth": ten
#: 128x128 denoising runs, σ = 25 and 50): es-wmv picked at iterations 182-916 (median 316), es-emv at 134-860
#: (median 258). A run stopped by the rule ends ``patience`` steps after its pick.
TYPICAL_PICK: dict[str, int] = {"es-wmv": 316, "es-emv": 258}
PICK_RANGE: dict[str, tuple[int, int]] = {"es-wmv": (182, 916), "es-emv": (134, 860)}
#: The fewest iterations a time budget aims for at its working size, per task: denoising's raw iterate peaks
#: after 577-1061 iterations at σ = 25 on the stopping benchmark and 219-380 at σ = 50, and the running average
#: is already past the noisy input's PSNR by then; the other tasks' presets need more.
MIN_ITERATIONS: dict[str, int] = {Task.DENOISE: 600, Task.SR: 1000, Task.INPAINT: 1500}
#: A time budget never downscales a side below this share of the photo's (nor below ``MIN_WORKING_SIDE``): a
#: result upscaled more than 4x holds too little of the photo to be worth the time; it runs fewer iterations.
MIN_SCALE = 0.25
ITERATION_FLOOR = 50  # a run shorter than this shows nothing but the network's first blur
#: Share of a time budget left for what is not a step: building the network, the memory probe, the first
#: step's kernel set-up, writing the result. The wall-clock cap catches the rest.
OVERHEAD_SHARE = 0.08
OVERHEAD_S = 2.0
MIN_WORKING_SIDE = 32
PREVIEW_SIDE = 128
PREVIEW_SECONDS = 45.0
#: A narrower network a time budget may switch to on a CPU, per preset: measured to reach about the same PSNR in
#: less time there (rwgui/bench/README.md, "Time told before Start, and time budgets"). The plan takes it only
#: where it buys a larger working size, or at the same size more iterations when the preset's network gets
#: fewer than the task wants, and only while the run uses the preset's own network.
CPU_FAST_PRESETS: dict[str, str] = {"denoise": "denoise-fast"}

#: One timing: (config, task, channels, factor, size) -> seconds per step. Tests replace it (no real timing).
TimeSteps = Callable[[RunConfig, str, int, int, tuple[int, int]], float]


def format_duration(seconds: float) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min': a time people read at a glance."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min {s:02d} s" if m < 10 else f"{m} min"
    h, rem = divmod(s, 3600)
    return f"{h} h {rem // 60:02d} min"


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


#: Tasks whose working size is the photo's, whatever the time: the pre-image's photo is the classifier's input,
#: and a downscaled one is another input to it (the features it matches are of other sizes and content), so a
#: time budget or a preview sets only the iterations there. The words say why, in the plan's message.
FIXED_SIZE: dict[str, str] = {
    Task.PREIMAGE: "the pre-image is the classifier's input, and a smaller one would change the features it "
    "matches, so the time only sets the iterations",
}


def fixed_size_error(task: str, why: str, remedy: str = "free memory or give a smaller photo") -> ConfigError:
    """The refusal of a time budget or a preview for a ``FIXED_SIZE`` task whose photo does not fit in memory
    (``why``: the memory plan's sentence): the plan keeps the photo's size, so it would plan a run that cannot
    run, and a smaller photo is another input to the classifier. The CLI and the studio say the same."""
    return ConfigError(f"{why}; a time budget keeps the {task} task at the photo's size ({FIXED_SIZE[task]}): {remedy}")


def synthetic_problem(
    task: str,
    channels: int,
    factor: int,
    size: tuple[int, int],
    task_params: Mapping[str, Any] | None = None,
) -> Problem:
    """A problem of ``task`` at ``size`` (the restored image's) with random pixels, built by ``make_problem``
    like the run's: a step's cost does not depend on the pixels, only on the shapes and on the operator, so
    ``task_params`` (the deblur kernel, the pre-image's weights and layer) are the run's. Inpainting gets a mask
    with a fifth of the pixels missing, flash / no-flash a random second photo, the pre-image a target made by
    its own classifier from the random photo."""
    rng = np.random.default_rng(0)
    h, w = size
    if task == Task.SR:
        lr = rng.random((max(1, h // factor), max(1, w // factor), channels), dtype=np.float32)
        return make_problem(Task.SR, lr, factor=factor)
    pixels = rng.random((h, w, channels), dtype=np.float32)
    mask = (rng.random((h, w)) > 0.2).astype(np.float32) if task == Task.INPAINT else None
    second = rng.random((h, w, channels), dtype=np.float32) if task == Task.FLASH else None
    return make_problem(task, pixels, mask=mask, second=second, task_params=task_params)


def time_steps(config: RunConfig, task: str, channels: int, factor: int, size: tuple[int, int]) -> float:
    """Seconds per step of the real engine at ``size``: :func:`rwgui.core.autotune.measure_step_seconds` (the
    one short timing, which also resolves "auto" speed settings as the run will) on a synthetic problem of the
    run's task and task parameters, ``WARMUP_STEPS`` untimed, the median of ``TIMED_STEPS``. The engine it
    builds seeds its weights under :mod:`rwgui.core.rng`'s lock, so a run built at the same time on another
    thread keeps its own seed."""
    from .autotune import measure_step_seconds

    problem = synthetic_problem(task, channels, factor, size, config.task_params)
    return measure_step_seconds(problem, config, TIMED_STEPS, warmup=WARMUP_STEPS)


#: Task parameters that name a file whose content changes a step's cost.
_FILE_PARAMS = ("weights", "kernel_file")


def _file_identity(path: str) -> list[int] | None:
    """A file's size and modification time: a weights file replaced under the same name is another network."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _files(config: RunConfig) -> dict[str, list[int] | None]:
    """The identity of each task parameter that names a file (the weights, a kernel image)."""
    return {k: _file_identity(v) for k, v in dict(config.task_params).items() if k in _FILE_PARAMS and v}


def _network_key(config: RunConfig, task: str, channels: int) -> str:
    """What a step's cost depends on: everything but the seed, the budget and the learning rate's value. The
    task's parameters are part of it (the pre-image's classifier and layer, the deblur kernel), and a parameter
    that names a file (the weights, a kernel image) adds the file's identity (:func:`_file_identity`)."""
    d = config.validated().to_dict()
    for k in ("iterations", "seed", "lr", "preset", "exp_weight", "guard_ratio", "seam_px", "keep_known"):
        d.pop(k, None)
    files = _files(config)
    return json.dumps({"task": str(task), "channels": channels, "files": files, **d}, sort_keys=True, default=str)


def task_identity(config: RunConfig) -> str:
    """What ``config``'s task adds to a step's cost, as text for a cache key: the task, its parameters (the
    pre-image's classifier and layer, the deblur kernel), the super-resolution factor, and the identity of a
    parameter's file (a weights file replaced under the same name is another network). The speed settings'
    cache (:mod:`rwgui.core.autotune`) keys its task's choices by it, as this module keys its timings."""
    cfg = config.validated()
    what = {
        "task": str(cfg.task),
        "factor": cfg.factor if cfg.task == Task.SR else None,
        "params": dict(cfg.task_params),
        "files": _files(cfg),
    }
    return json.dumps(what, sort_keys=True, default=str)


def _with_task_params(config: RunConfig, problem: Problem) -> RunConfig:
    """``config`` with the task parameters ``problem`` was built from: the timing must build its synthetic
    problem from the same classifier or kernel as the run's, even where the caller's settings leave them at
    their defaults (a benchmark, a test, a problem built before the settings)."""
    if problem.task_params is None or dict(problem.task_params) == dict(config.task_params):
        return config
    return config.replace(task_params=dict(problem.task_params)).validated()


_cache: dict[tuple[str, tuple[int, int]], float] = {}
_cache_lock = threading.Lock()


def _timed(timer: TimeSteps, config: RunConfig, task: str, channels: int, size: tuple[int, int]) -> float:
    key = (_network_key(config, task, channels), size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    seconds = timer(config, task, channels, config.factor, size)
    with _cache_lock:
        _cache[key] = seconds
    return seconds


def clear_cache() -> None:
    """Forget every timing (the machine changed its load a lot, or a test wants a fresh measurement)."""
    with _cache_lock:
        _cache.clear()


@dataclass(frozen=True)
class StepTime:
    """Seconds per step as a function of the working size, from one or two timed sizes (see the module)."""

    points: tuple[tuple[int, float], ...]  # (padded area, seconds per step), smaller area first
    multiple: int  # the network pads each side to a multiple of this
    device: str

    def padded_area(self, size: tuple[int, int]) -> int:
        m = self.multiple
        return (-(-max(size[0], 2 * m) // m) * m) * (-(-max(size[1], 2 * m) // m) * m)

    @property
    def exponent(self) -> float:
        """How the step time grows with area between the two probes (1 with one probe), within [0.5, 1.5]."""
        if len(self.points) < 2 or self.points[0][0] == self.points[-1][0]:
            return 1.0
        (a0, t0), (a1, t1) = self.points[0], self.points[-1]
        k = math.log(max(t1, 1e-9) / max(t0, 1e-9)) / math.log(a1 / a0)
        return min(1.5, max(0.5, k))

    def at(self, size: tuple[int, int]) -> float:
        a = self.padded_area(size)
        (a0, t0), (a1, t1) = self.points[0], self.points[-1]
        if a >= a1:  # beyond the larger probe: never cheaper per pixel
            return t1 * (a / a1) ** max(1.0, self.exponent)
        return t0 * (a / a0) ** self.exponent

    def describe(self) -> str:
        sides = " and ".join(f"{int(round(math.sqrt(a)))}²" for a, _ in self.points)
        return f"timed over {TIMED_STEPS} steps at {sides} px on {self.device}"


def step_time(
    config: RunConfig,
    task: str,
    channels: int,
    size: tuple[int, int],
    timer: TimeSteps | None = None,
) -> StepTime:
    """The :class:`StepTime` for runs up to ``size`` with ``config``: the probes of ``PROBE_SIDES`` (each no
    larger than ``size``'s area; a size no larger than the smaller probe is timed at itself)."""
    from .device import describe, resolve_device
    from .tiles import size_multiple

    cfg = config.validated()
    timer = timer or time_steps
    m = max(1, size_multiple(cfg, channels))
    k = cfg.factor if task == Task.SR else 1
    unit = max(m, k)
    small = PROBE_SIDES[0]
    probe = StepTime((), m, "")
    if probe.padded_area(size) <= probe.padded_area((small, small)):
        sizes = [(max(size[0], k), max(size[1], k))]
    else:
        sizes = [(s, s) for s in PROBE_SIDES if probe.padded_area((s, s)) <= probe.padded_area(size)] or [(small,) * 2]
    sizes = [(-(-h // unit) * unit, -(-w // unit) * unit) for h, w in sizes]
    points = tuple((probe.padded_area(s), _timed(timer, cfg, task, channels, s)) for s in sizes)
    return StepTime(points, m, describe(resolve_device(cfg.device)))


def expected_stop(config: RunConfig) -> int | None:
    """The iteration a stopping rule usually ends the run at (its typical pick plus its patience), or None
    when the run usually uses its whole budget (no auto stop, a fixed budget, a rule never benchmarked, or a
    budget shorter than that)."""
    cfg = config.validated()
    if not cfg.auto_stop or cfg.stop not in TYPICAL_PICK:
        return None
    stop = TYPICAL_PICK[cfg.stop] + int(dict(cfg.stop_params).get("patience", 0))
    return stop if stop < cfg.iterations else None


@dataclass(frozen=True)
class RunEstimate:
    """What a run will cost, before it starts (see the module for how each number is found)."""

    size: tuple[int, int]  # (h, w) each step restores
    seconds_per_step: float
    iterations: int  # the budget, per run
    runs: int  # 1, or the number of tiles
    expected_stop: int | None  # the iteration the rule usually ends each run at; None = the budget
    memory_mb: float | None
    stop: str
    method: str  # how the seconds per step were measured
    scaled: bool = True  # the size was not one of those timed: the figure is scaled from them by area

    @property
    def total_seconds(self) -> float:
        return self.seconds_per_step * self.iterations * self.runs

    @property
    def expected_seconds(self) -> float:
        n = self.expected_stop if self.expected_stop is not None else self.iterations
        return self.seconds_per_step * n * self.runs

    def stop_sentence(self) -> str:
        if self.expected_stop is None:
            return ""
        lo, hi = PICK_RANGE.get(self.stop, (0, 0))
        patience = self.expected_stop - TYPICAL_PICK.get(self.stop, 0)
        return (
            f"the rule ({self.stop}) usually stops around iteration {self.expected_stop}, "
            f"{format_duration(self.expected_seconds)} (picks at {lo}-{hi} on the stopping benchmark, "
            f"then {patience} steps of patience)"
        )

    def lines(self) -> list[str]:
        """The CLI's ``--estimate`` output: three lines, each starting with its quantity's name."""
        runs = f" x {self.runs} tiles" if self.runs > 1 else ""
        total = (
            f"total time: {format_duration(self.total_seconds)} for the budget of {self.iterations} iterations{runs}"
        )
        if self.expected_stop is not None:
            total += "; " + self.stop_sentence()
        mem = "memory: " + ("unknown" if self.memory_mb is None else f"about {self.memory_mb:.0f} MB")
        return [
            f"seconds per step: {self.seconds_per_step:.3f} at {_wxh(self.size)} "
            f"({self.method}{', scaled by area' if self.scaled else ''})",
            total,
            mem,
        ]

    def short(self) -> str:
        """One line for the studio, beside Start."""
        step = (
            f"{self.seconds_per_step:.2f} s/step"
            if self.seconds_per_step < 10
            else f"{self.seconds_per_step:.0f} s/step"
        )
        total = format_duration(self.total_seconds)
        if self.expected_stop is not None:
            usual = format_duration(self.expected_seconds)
            when = f"usually about {usual} (the rule stops ~{self.expected_stop}), at most {total}"
        else:
            when = f"about {total} for {self.iterations * self.runs} steps"
        mem = "" if self.memory_mb is None else f" · {self.memory_mb:.0f} MB"
        return f"{when} · {step} at {_wxh(self.size)}{mem}"


def _memory_mb(problem: Problem, config: RunConfig, size: tuple[int, int]) -> float | None:
    """The run's memory at ``size``: the working-size plan's own model (:class:`~rwgui.core.memory.MemoryModel`,
    the problem's operator included), so the figure beside Start and the plan that offers a working size agree."""
    from .device import resolve_device
    from .memory import MemoryModel, run_dtype

    cfg = config.validated()
    device = resolve_device(cfg.device)
    channels = problem.channels
    try:  # the precision the run will compute in (autotune's choice), not what the device could do
        dtype = run_dtype(cfg, size, device, channels)
        return MemoryModel(cfg, channels, dtype, device.type, problem.operator).estimate(size).total_mb
    except Exception:  # an estimate that cannot probe (a device busy elsewhere) says nothing rather than fail
        return None


def estimate_run(
    problem: Problem,
    config: RunConfig,
    working: Working | None = None,
    timer: TimeSteps | None = None,
    model: StepTime | None = None,
) -> RunEstimate:
    """The estimate for ``problem`` with ``config`` at ``working``'s size (the whole photo by default; tiles:
    each tile's run, times the tiles). The timing uses the task parameters ``problem`` was built from."""
    cfg = _with_task_params(config.validated(), problem)
    size = problem.size if working is None else working.size
    runs = working.tiles.count if working is not None and working.tiles is not None else 1
    model = model or step_time(cfg, problem.task, problem.channels, size, timer)
    memory = _memory_mb(problem, cfg, size)
    return RunEstimate(
        size=size,
        seconds_per_step=model.at(size),
        iterations=cfg.iterations,
        runs=runs,
        expected_stop=expected_stop(cfg),
        memory_mb=memory,
        stop=cfg.stop if cfg.auto_stop else "none",
        method=model.describe(),
        scaled=model.padded_area(size) not in [a for a, _ in model.points],
    )


@dataclass(frozen=True)
class TimePlan:
    """A working size and a budget that fit ``seconds``; ``message`` says what was reduced, in words."""

    working: Working
    iterations: int
    seconds: float
    step_seconds: float
    message: str
    reduced: bool = field(default=False)
    preset: str | None = None  # a CPU's faster network (CPU_FAST_PRESETS) the run switches to; None: keep it

    def config(self, config: RunConfig) -> RunConfig:
        if self.preset is not None:  # the fast preset's network and input jitter (see _fast_network)
            fast = preset(self.preset)
            config = config.replace(preset=self.preset, prior=fast.prior, prior_params=fast.prior_params,
                                    reg_noise_std=fast.reg_noise_std)  # fmt: skip
        return config.replace(iterations=self.iterations).validated()


def _scaled(size: tuple[int, int], area: float, unit: int) -> tuple[int, int]:
    """``size`` scaled (same aspect) to about ``area`` pixels, sides rounded down to multiples of ``unit``."""
    h, w = size
    s = min(1.0, math.sqrt(max(area, 1.0) / (h * w)))
    side = max(MIN_WORKING_SIDE, unit)
    return max(side, int(h * s) // unit * unit), max(side, int(w * s) // unit * unit)


def _fast_network(config: RunConfig) -> str | None:
    """The CPU_FAST_PRESETS entry a time budget may switch ``config`` to: on a CPU, while the run uses its
    preset's own network and input jitter (the switch takes the fast preset's, so a person's own choice of
    either is kept by not switching); None otherwise."""
    from .device import resolve_device

    fast = CPU_FAST_PRESETS.get(config.preset)
    if fast is None or fast not in PRESETS or resolve_device(config.device).type != "cpu":
        return None
    own = preset(config.preset)
    mine = (config.prior, config.prior_params, config.reg_noise_std)
    return fast if mine == (own.prior, own.prior_params, own.reg_noise_std) else None


def plan_time_budget(
    problem: Problem,
    config: RunConfig,
    seconds: float,
    timer: TimeSteps | None = None,
    model: StepTime | None = None,
    max_side: int | None = None,
    min_iterations: int | None = None,
    margin: int = DEFAULT_MARGIN,
) -> TimePlan:
    """The working size and iterations for a run that should end in about ``seconds`` (see the module).

    ``max_side`` caps the working size's longer side (a preview; not for a ``FIXED_SIZE`` task, which works at
    its own size and gets only its iterations from the time); ``min_iterations`` replaces the task's
    ``MIN_ITERATIONS``. On a CPU, where the preset's network must be reduced, the preset's faster network
    (``CPU_FAST_PRESETS``) is planned too, its short timing counted in the budget, and taken where it buys a
    larger working size or, at the same size, more of the task's ``MIN_ITERATIONS``."""
    cfg = config.validated()
    t0 = time.monotonic()
    plan = _plan(problem, cfg, seconds, timer, model, max_side, min_iterations, margin)
    fast = _fast_network(cfg) if model is None and plan.reduced else None
    if fast is None:
        return plan
    fast_cfg = TimePlan(plan.working, cfg.iterations, seconds, 0.0, "", preset=fast).config(cfg)
    other = _plan(problem, fast_cfg, seconds, timer, None, max_side, min_iterations, margin, time.monotonic() - t0)
    # what the task wants for a useful result, even where a preview lowered the floor (``min_iterations``): a
    # preview at a capped side would otherwise keep the slower network's few hundred steps
    need = min(cfg.iterations, MIN_ITERATIONS.get(problem.task, 1000))
    area, fast_area = (math.prod(p.working.size) for p in (plan, other))
    if fast_area > area or (fast_area == area and plan.iterations < need and other.iterations > plan.iterations):
        why = f"with the {fast} preset (a narrower network without input jitter: more done per second on a CPU)"
        return dataclasses.replace(other, preset=fast, message=f"{other.message}; {why}")
    return plan


def _plan(
    problem: Problem,
    cfg: RunConfig,
    seconds: float,
    timer: TimeSteps | None,
    model: StepTime | None,
    max_side: int | None,
    min_iterations: int | None,
    margin: int,
    already: float = 0.0,
) -> TimePlan:
    """:func:`plan_time_budget` for ``cfg``'s own network; ``already``: seconds of the budget spent before."""
    cfg = _with_task_params(cfg, problem)
    task = problem.task
    full = problem.size
    t0 = time.monotonic()
    sm: StepTime = model or step_time(cfg, task, problem.channels, full, timer)  # the step-time model
    spent = already + time.monotonic() - t0  # the short timing is part of the budget
    usable = max(1.0, (seconds - spent) * (1.0 - OVERHEAD_SHARE) - OVERHEAD_S)
    need = min(cfg.iterations, min_iterations or MIN_ITERATIONS.get(task, 1000))
    unit = max(sm.multiple, cfg.factor if task == Task.SR else 1)
    fits = usable / need  # seconds a step may take

    def iterations_at(size: tuple[int, int]) -> int:
        return max(ITERATION_FLOOR, min(cfg.iterations, int(usable / sm.at(size))))

    capped = max_side is not None and max(full) > max_side
    working: Working | None = None
    if task in FIXED_SIZE or (not capped and sm.at(full) <= fits):
        working = Working(WorkingMode.FULL, task, full, full)
    mask = None if problem.mask is None else problem.mask[0, 0].numpy()
    if working is None and task == Task.INPAINT and mask is not None:
        box = hole_box(mask, margin)
        if box is not None:
            size = (box[1] - box[0], box[3] - box[2])
            small_enough = max_side is None or max(size) <= max_side
            if size != full and small_enough and sm.at(size) <= fits:
                working = Working(WorkingMode.CROP, task, full, size, box, margin)
    if working is None:
        lo = float(max(MIN_WORKING_SIDE**2, MIN_SCALE**2 * full[0] * full[1]))
        hi = float(full[0] * full[1])
        if max_side is not None:
            hi = min(hi, max_side * max_side * min(full) / max(full))
        if sm.at(_scaled(full, hi, unit)) <= fits:  # the cap itself fits (bisection alone never reaches it)
            lo = hi
        for _ in range(0 if lo == hi else 40):  # the largest area whose step fits: bisection on the monotone model
            mid = math.sqrt(lo * hi)
            if sm.at(_scaled(full, mid, unit)) <= fits:
                lo = mid
            else:
                hi = mid
        size = _scaled(full, lo, unit)
        if size[0] >= full[0] and size[1] >= full[1]:
            working = Working(WorkingMode.FULL, task, full, full)
        else:
            working = Working(WorkingMode.DOWNSCALE, task, full, size, upscaled=True)
    if sm.padded_area(working.size) < sm.points[0][0]:  # below the probes: time the size itself
        measured = _timed(timer or time_steps, cfg, task, problem.channels, working.size)
        sm = StepTime(((sm.padded_area(working.size), measured), *sm.points), sm.multiple, sm.device)
    iterations = iterations_at(working.size)
    step_s = sm.at(working.size)
    reduced = working.mode != WorkingMode.FULL or iterations < cfg.iterations
    what = []
    if working.mode == WorkingMode.DOWNSCALE:
        what.append(f"downscaled to {_wxh(working.size)} (upscaled back to {_wxh(full)} when written)")
    elif working.mode == WorkingMode.CROP:
        what.append(f"the {_wxh(working.size)} crop around the damage at full resolution")
    elif task in FIXED_SIZE:
        what.append(f"full size, {_wxh(full)} ({FIXED_SIZE[task]})")
    else:
        what.append(f"full size, {_wxh(full)}")
    what.append(
        f"{iterations} iterations" + ("" if iterations >= cfg.iterations else f" of the preset's {cfg.iterations}")
    )
    fit = f"to fit about {format_duration(seconds)}" if reduced else f"within about {format_duration(seconds)}"
    message = f"{' and '.join(what)} {fit} ({step_s:.2f} s/step, {sm.describe()})"
    if iterations < need:
        message += f"; fewer than the {need} iterations this task wants: allow more time for a better result"
    return TimePlan(working, iterations, seconds, step_s, message, reduced)


def plan_preview(
    problem: Problem,
    config: RunConfig,
    timer: TimeSteps | None = None,
    model: StepTime | None = None,
) -> TimePlan:
    """A first look in under a minute: at most ``PREVIEW_SIDE`` px a side (a ``FIXED_SIZE`` task keeps its size),
    as many iterations as ``PREVIEW_SECONDS`` allow (at least ``ITERATION_FLOOR``)."""
    return plan_time_budget(
        problem, config, PREVIEW_SECONDS, timer, model, max_side=PREVIEW_SIDE, min_iterations=ITERATION_FLOOR
    )
