"""The optimisation loop: fit f_θ(z) so that A(f_θ(z)) matches the observed photo.

No threads, no Qt. ``step()`` does one step and returns a small report. Every number of a step (losses,
PSNR, the stopping signal) is computed on the device and fetched in one copy; with ``overlap`` on (the
default on CUDA) that copy goes to pinned memory without blocking and is read during the *next* step, so the
loop never waits for the device and each report arrives one step late (``flush()`` settles the last one).
Images leave only when asked: ``image()`` and ``frame()`` wait for the device; ``request_image()`` and
``request_frame()`` do not (poll the fetch's ``ready()``, take it when ready).

``Engine.steps()`` is the one loop every consumer runs (the CLI, the studio's worker, the Lab through it,
the benchmarks): a generator that yields a :class:`RunEvent` after every step and *returns* a
:class:`RunResult`. Only this loop decides when a run ends (budget, the person's stop through a
:class:`RunControl`, the stopping rule with auto stop, divergence, running out of memory, an error), so the
consumers differ only in what they do between steps. ``Engine.run()`` drains it for code that wants the end
only.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import torch

from . import rng
from .autotune import resolve as resolve_speed
from .config import RunConfig
from .device import default_threads, describe, fused_adam_device, overlaps, precision_dtype, resolve_device
from .errors import OutOfMemoryError, RwguiError
from .lossprior import build_loss_prior, total_variation
from .metrics import psnr_t
from .priors import build_prior, input_channels, input_stride, make_input, padded_size
from .problems import Problem
from .stopping import Observation, build_rule
from .vocabulary import Iterate, StopReason

GUARD_EVERY = 50  # steps between snapshots of the last good weights and optimiser state
GUARD_RETRIES = 5  # restores in a row without a new good snapshot before the run counts as diverged
#: A step at least this long (the last one measured, in seconds) checks for a stop between its forward and its
#: backward pass, so a person who presses Stop waits about half a step instead of a whole one.
MID_STEP_STOP_S = 1.0


class _Abandoned(Exception):
    """A stop asked during a long step, seen between its forward and backward passes: the step is undone."""


class _Fetch:
    """Device values on their way to the host: a non-blocking copy into pinned memory plus an event on
    CUDA; elsewhere the tensor itself (the CPU has nothing to wait for; MPS copies when read, which waits for
    all queued work: see ``device.overlaps``)."""

    def __init__(self, t: torch.Tensor) -> None:
        self._event = None
        if t.device.type == "cuda":
            self._host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            self._host.copy_(t, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = t

    def ready(self) -> bool:
        return self._event is None or bool(self._event.query())

    def tensor(self) -> torch.Tensor:
        if self._event is not None:
            self._event.synchronize()
        return self._host.cpu()


class FrameFetch(_Fetch):
    """A display frame on its way to the host; ``ready()`` never waits, ``array()`` may."""

    def __init__(self, iteration: int, rgba: torch.Tensor) -> None:
        super().__init__(rgba)
        self.iteration = iteration

    def array(self) -> np.ndarray:
        return self.tensor().numpy()


class ImageFetch(FrameFetch):
    """An iterate on its way to the host, HxWxC float32 in [0, 1] (see :meth:`Engine.request_image`):
    ``ready()`` never waits, ``array()`` (an owned array: the buffer is this fetch's own) may."""


@dataclass
class _Pending:
    """A step whose numbers are still on the device."""

    iteration: int
    names: tuple[str, ...]  # loss terms, in the order of ``values``
    values: _Fetch  # total, terms..., [psnr raw, psnr average], [signal], [snapshot finite]
    has_psnr: bool
    has_signal: bool
    output: torch.Tensor
    average: torch.Tensor
    has_snapshot: bool = False  # the step took a guard snapshot; its last value says whether it is finite


@dataclass(frozen=True)
class StepReport:
    """What one step tells the outside world; small, plain, safe to send across threads."""

    iteration: int
    loss: float
    loss_terms: dict[str, float]
    psnr: float | None
    psnr_average: float | None
    signal: float | None
    pick_iteration: int | None  # the stopping rule's pick so far
    seconds: float
    restored: bool = False
    seed: int = 0


@dataclass
class RunResult:
    """The end of a run: why it stopped, the rule's pick, the peak when ground truth was known.

    ``seconds`` is the loop's wall time with pauses left out (what a rate is computed from); ``step_seconds``
    the part of it spent inside ``Engine.step()``. With OUT_OF_MEMORY, ERROR or DIVERGED, ``message`` says what
    went wrong in words for the person, and ``error`` is the exception (its traceback, for a bug report) when
    one ended the run; the engine's state is kept, so the iterates so far can still be read."""

    iterations_run: int
    stop_reason: StopReason
    pick_iteration: int | None
    peak_iteration: int | None
    peak_psnr: float | None
    seconds_per_iteration: float
    reports: list[StepReport] = field(default_factory=list)
    seconds: float = 0.0
    step_seconds: float = 0.0
    message: str = ""
    error: BaseException | None = None


class RunControl:
    """The outside's say over a running loop: stop, pause and resume, each safe from any thread.

    Flags (``threading.Event``) rather than messages, because the loop's thread is busy stepping and reads
    no queue; the loop checks them before every step, and a long step (``MID_STEP_STOP_S``) checks for a stop
    once more between its forward and backward passes, undoing itself when asked. A paused loop blocks on an
    event and takes no CPU. A stop wakes a paused loop, and a pause asked after a stop is ignored, so a stop is
    never lost.

    A time budget (``seconds``, or :meth:`set_time_limit`) is a wall-clock cap: the loop ends before the first
    step that would start after it, with StopReason.BUDGET, since a budget in minutes is the same promise as a
    budget in iterations; an engine that has not stepped yet still takes one, so there is a result to write.
    ``clock`` is injectable so that a test needs no real waiting."""

    def __init__(self, seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._clock = clock
        self._deadline: float | None = None
        if seconds is not None:
            self.set_time_limit(seconds)

    def set_time_limit(self, seconds: float | None) -> None:
        """End the run ``seconds`` from now (None: no limit). Pauses count: the promise is about the clock."""
        self._deadline = None if seconds is None else self._clock() + max(0.0, float(seconds))

    @property
    def time_up(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def stop(self) -> None:
        """End the run before its next step (the reason is USER)."""
        with self._lock:
            self._stop.set()
            self._running.set()

    def pause(self) -> None:
        """Hold the run before its next step, until ``resume()`` or ``stop()``."""
        with self._lock:
            if not self._stop.is_set():
                self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def pause_requested(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> None:
        self._running.wait()


class EventKind(StrEnum):
    """What happened in the loop since the last event."""

    STEP = "step"  # one optimisation step ran
    PAUSED = "paused"  # the loop is about to wait for resume (the last step's numbers were settled first)
    RESUMED = "resumed"  # the loop goes on after a pause
    SETTLED = "settled"  # the run has ended; the last step's numbers, settled by the final flush


@dataclass(frozen=True)
class RunEvent:
    """One event of :meth:`Engine.steps`. Every report of the run arrives in exactly one event: with
    ``overlap`` a STEP event carries the *previous* step's report (None after the first step), and a PAUSED
    or SETTLED event carries the report the flush settled, if any. ``iteration`` is the engine's count when
    the event was yielded, the iteration of the newest iterate ``Engine.image()`` would return."""

    kind: EventKind
    iteration: int
    report: StepReport | None = None


EventT = TypeVar("EventT")
ResultT = TypeVar("ResultT")


def drain(steps: Generator[EventT, None, ResultT], on_event: Callable[[EventT], None] | None = None) -> ResultT:
    """Run ``steps`` (:meth:`Engine.steps`, or a loop that itself drains it, such as a run on tiles) to its
    end, handing each event to ``on_event``; its result. One function, so that code wanting only the end
    consumes the engine's loop the same way whichever generator it holds."""
    while True:
        try:
            event = next(steps)
        except StopIteration as end:
            result: ResultT = end.value
            return result
        if on_event is not None:
            on_event(event)


def describe_error(exc: BaseException) -> str:
    """The words for the person: rwgui's own errors are written for them, anything else is named by type."""
    return str(exc) if isinstance(exc, RwguiError) else f"{type(exc).__name__}: {exc}"


def print_error(result: RunResult) -> None:
    """Print the traceback of a run that ended with an unexpected error (not one of rwgui's own)."""
    if result.error is not None and not isinstance(result.error, RwguiError):
        traceback.print_exception(result.error)


def _copy_into(dst: Any, src: Any) -> Any:
    """A deep copy of ``src`` (nested dicts, lists and tensors) that reuses ``dst``'s tensors where they match
    in shape, dtype and device: a snapshot taken again without allocating or walking Python's deepcopy."""
    if isinstance(src, torch.Tensor):
        if (
            isinstance(dst, torch.Tensor)
            and dst.shape == src.shape
            and dst.dtype == src.dtype
            and dst.device == src.device
            and dst is not src
        ):
            return dst.copy_(src.detach())
        return src.detach().clone()
    if isinstance(src, dict):
        old = dst if isinstance(dst, dict) else {}
        return {k: _copy_into(old.get(k), v) for k, v in src.items()}
    if isinstance(src, (list, tuple)):
        olds = dst if isinstance(dst, (list, tuple)) and len(dst) == len(src) else (None,) * len(src)
        return type(src)(_copy_into(a, b) for a, b in zip(olds, src))
    return copy.deepcopy(src)


def _tensors(obj: Any) -> Generator[torch.Tensor, None, None]:
    """Every tensor in nested dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


class Engine:
    """One run of Deep Image Prior on one problem."""

    def __init__(self, problem: Problem, config: RunConfig) -> None:
        self.config = cfg = config.validated()
        self.problem = problem
        self.device = resolve_device(cfg.device)
        #: the speed settings this run uses: ``cfg.speed`` with "auto" resolved (measured once per machine and
        #: photo size, then cached: rwgui.core.autotune); ``config`` keeps what the person asked for
        self.speed = resolve_speed(cfg, problem.size, self.device, channels=problem.channels)
        if self.device.type == "cpu":  # set here, in the thread that computes: a count set elsewhere may not bind
            torch.set_num_threads(self.speed.threads or default_threads())
        self._gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self._noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)

        c = problem.channels
        with rng.seeded(cfg.seed):  # weight init is drawn on the CPU, so it is the same on every device
            self.net = build_prior(
                cfg.prior,
                dict(cfg.prior_params),
                in_channels=input_channels(cfg.input_code, cfg.input_depth, c),
                out_channels=c,
            )
        mult = getattr(self.net, "size_multiple", 1)
        h, w = problem.size
        # at least two pixels at the deepest scale: BatchNorm needs more than one value per channel
        self.padded = padded_size((max(h, 2 * mult), max(w, 2 * mult)), mult)
        z = make_input(
            cfg.input_code,
            cfg.input_depth,
            self.padded,
            generator=self._gen,
            observed=problem.code_source,  # the photo; the flash photo for flash / no-flash
            image_size=(h, w),
            stride=input_stride(self.net),  # the Deep Decoder grows a small code: smaller by this per side
        )
        self._mem = torch.channels_last if self.speed.channels_last == "on" else torch.contiguous_format
        # Module.to accepts memory_format (it forwards it to every tensor), but torch's stubs omit the keyword
        self.net = self.net.to(self.device, memory_format=self._mem)  # type: ignore[call-overload]
        self.z = z.to(self.device).contiguous(memory_format=self._mem)
        self.y = problem.observed.to(self.device)
        self.gt = problem.ground_truth.to(self.device) if problem.ground_truth is not None else None
        # a copy: Module.to moves a module in place, and the caller (the studio) still owns this Problem
        self.operator = copy.deepcopy(problem.operator).to(self.device)
        self.autocast_dtype = self._pick_precision()
        self._set_backend_flags()
        self._check_memory()
        self._forward: Callable[[torch.Tensor], torch.Tensor] = self.net
        self._compile_pending = False  # the compiled forward has not yet run a training step
        if self.speed.compile:
            self._forward = self._try_compile()

        self.optimizer = self._make_optimizer()
        # float16's range loses MSE gradients (~1e-7 per pixel) to underflow: scale the loss, as torch.amp does;
        # bfloat16 has float32's range and needs none
        self._scaler = torch.amp.GradScaler(self.device.type) if self.autocast_dtype is torch.float16 else None
        self.loss_prior = build_loss_prior(
            cfg.loss_prior, dict(cfg.loss_prior_params), channels=c, seed=cfg.seed + 2, device=self.device
        )
        self.rule = build_rule(cfg.stop, dict(cfg.stop_params))

        self.iteration = 0
        self._out: torch.Tensor | None = None
        self._avg: torch.Tensor | None = None  # the running average, bias-corrected (see step)
        self._ema: torch.Tensor | None = None
        self._ema_decay = 1.0  # exp_weight ** iteration
        self._pick: tuple[int, torch.Tensor, torch.Tensor] | None = None
        self._peak: tuple[int, float] | None = None
        self._good: dict[str, Any] | None = None
        self._good_loss = float("inf")
        self._restores_in_a_row = 0  # restores since the guard last accepted a snapshot
        self._restored_through = 0  # the steps up to this one ran on weights the last restore replaced
        self._candidate: tuple[int, dict[str, Any]] | None = None  # a snapshot waiting for its loss
        self._spare: dict[str, Any] | None = None  # a snapshot no longer needed: the next one copies into it
        self._pending: _Pending | None = None
        self.overlap = overlaps(self.speed.overlap, self.device)
        # float64 keeps the stopping signal's small differences; MPS has none
        self._fetch_dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self._rule_fired = False  # the rule's last verdict said stop (auto stop decides whether the loop obeys)
        self._control: RunControl | None = None  # the running loop's, consulted inside a long step
        self._last_step_s = 0.0  # wall time of the last step() (what arms the check inside a step)
        self._diverged = False  # the loss went non-finite and the guard could not bring it back

    # ----- set-up helpers -----------------------------------------------------------------------
    def _pick_precision(self) -> torch.dtype | None:
        return precision_dtype(self.speed.precision, self.device)

    def _set_backend_flags(self) -> None:
        """CUDA: cuDNN may pick the fastest kernels for the run's shapes once (they never change within a run),
        and 'float32' means float32: cuDNN's TF32 convolutions keep only 10 bits of mantissa."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cudnn.allow_tf32 = self.config.speed.precision != "float32"
            torch.backends.cuda.matmul.allow_tf32 = self.config.speed.precision != "float32"

    def _check_memory(self) -> None:
        """Refuse, naming the working sizes that fit, a run that cannot fit (the same plan the CLI and the
        window offer as choices; checked above 512x512 only, where the probe pass is worth its cost). Planned
        with the speed settings this run resolved: its footprint depends on the precision it computes in."""
        from .working_size import plan_for_problem

        plan = plan_for_problem(self.problem, self.config.replace(speed=self.speed))
        if not plan.fits:
            raise OutOfMemoryError(
                plan.sentence + " (rwgui-restore --working-size, or the window's offer, runs at that size)"
            )

    def _make_optimizer(self) -> torch.optim.Adam:
        """Adam, fused where the setting asks and this torch and device have the kernel, else the plain loop."""
        params, lr = list(self.net.parameters()), self.config.lr
        if self.speed.fused_optimizer == "on" and fused_adam_device(self.device):
            try:
                return torch.optim.Adam(params, lr=lr, fused=True)
            except (RuntimeError, TypeError):  # an older torch without the kernel: the loop is always right
                pass
        return torch.optim.Adam(params, lr=lr)

    def _try_compile(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The compiled network; it compiles on the first training step, inside that step's fall-back to eager
        (a warm-up under no_grad would compile an inference graph and move BatchNorm's running statistics).

        The compile caches are reset first: each run builds a new module, and after a few recompiles torch
        silently runs eager. The default mode, never a CUDA-graph one: reports and picks keep step outputs,
        which a CUDA graph would overwrite on its next replay."""
        try:
            torch._dynamo.reset()
            compiled = torch.compile(self.net, mode="default")
            self._compile_pending = True
            return compiled
        except Exception:
            return self.net

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @property
    def device_name(self) -> str:
        return describe(self.device)

    # ----- one step ------------------------------------------------------------------------------
    def _generate(self, inp: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            full = self._forward(inp)
        h, w = self.problem.size
        return full[..., :h, :w].float()  # padding sits at the bottom and right

    @contextlib.contextmanager
    def forward_wrapped(
        self, wrap: Callable[[Callable[[torch.Tensor], torch.Tensor]], Callable[[torch.Tensor], torch.Tensor]]
    ) -> Generator[None, None, None]:
        """Inside the block the network's forward runs as ``wrap(forward)``; the forward it wrapped is put back
        after. The public seam for checks that inject a fault into a real run (``rwgui.bench.gpu_check``
        fills the device before each forward to see an out-of-memory end keep the state), so that no
        benchmark reaches into the engine's internals."""
        real = self._forward
        self._forward = wrap(real)
        try:
            yield
        finally:
            self._forward = real

    def step(self) -> StepReport | None:
        """One optimisation step; raises OutOfMemoryError when the device runs out anywhere in it, with the
        state kept (see ``_step`` for what a failed step leaves behind).

        Returns this step's report, or with ``overlap`` the previous step's (None after the first)."""
        t0 = time.perf_counter()
        try:
            pending: _Pending | None = self._step()
            self._last_step_s = time.perf_counter() - t0
            if self.overlap:
                pending, self._pending = self._pending, pending
            if pending is None:
                return None
            return self._settle(pending, time.perf_counter() - t0)
        except torch.OutOfMemoryError:
            pass  # handled after the except block: its traceback holds the failed step's frames and graph
        raise self._oom_error()

    def _step(self) -> _Pending:
        """The step's work, every allocation of it inside ``step``'s guard. A step that runs out of memory
        before its update changes nothing; one that runs out after it leaves the weights one update ahead and
        everything else consistent: the iteration counts the iterates, and it advances together with the
        iterate, its running average and the average's weight in one commit (so ``image()`` always has the
        iterate of ``iteration``), and a guard snapshot replaces the waiting one only once it is whole."""
        cfg = self.config
        control = self._control if self._last_step_s >= MID_STEP_STOP_S else None
        # a long step may be abandoned after its forward pass: what the forward changes (the input noise's
        # generator, BatchNorm's running statistics) is put back, so the step leaves no trace
        undo = (self._noise_gen.get_state(), [b.clone() for b in self.net.buffers()]) if control else None
        inp = self.z
        if cfg.reg_noise_std > 0:
            noise = torch.randn(self.z.shape, generator=self._noise_gen, device=self.device)
            inp = self.z + cfg.reg_noise_std * noise.contiguous(memory_format=self._mem)
        try:
            out, terms, loss = self._descend(inp, control)
        except _Abandoned:
            assert undo is not None
            self._noise_gen.set_state(undo[0])
            with torch.no_grad():
                for b, saved in zip(self.net.buffers(), undo[1]):
                    b.copy_(saved)
            raise
        with torch.no_grad():
            x = out.detach().clamp(0, 1)
            ema, decay, avg = self._averaged(x)
            self.iteration += 1
            self._out, self._avg, self._ema, self._ema_decay = x, avg, ema, decay
            snapshot_finite = self._capture()
            signal = self.rule.measure(
                Observation(
                    iteration=self.iteration,
                    output=x,
                    observed=self.y,
                    data_loss=terms["data"].detach(),
                    probe=self._probe if cfg.input_code == "observed" else None,
                    input_shape=tuple(self.z.shape),
                )
            )
            scalars = [loss.detach(), *(t.detach() for t in terms.values())]
            if self.gt is not None:
                scalars += [psnr_t(x, self.gt), psnr_t(avg, self.gt)]
            if signal is not None:
                scalars.append(signal)
            if snapshot_finite is not None:
                scalars.append(snapshot_finite)
            # to the engine's device: on MPS the rules keep their state on the CPU
            values = torch.stack([v.to(self.device, self._fetch_dtype) for v in scalars])
            return _Pending(
                self.iteration,
                tuple(terms),
                _Fetch(values),
                self.gt is not None,
                signal is not None,
                x,
                avg,
                snapshot_finite is not None,
            )

    def _descend(
        self, inp: torch.Tensor, control: RunControl | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Forward, backward, update. With ``torch.compile`` the first call compiles the training graphs
        (forward here, backward at ``backward()``) inside a fall-back: a compiler that fails puts the
        network's weights and buffers back as they were and the run goes on eager."""
        if not self._compile_pending:
            return self._descend_once(inp, control)
        before = _copy_into(None, self.net.state_dict())
        try:
            result = self._descend_once(inp, control)
        except (torch.OutOfMemoryError, _Abandoned):
            raise
        except Exception:
            self.net.load_state_dict(before)
            self.optimizer.zero_grad(set_to_none=True)
            self._forward = self.net
            result = self._descend_once(inp)
        self._compile_pending = False
        return result

    def _descend_once(
        self, inp: torch.Tensor, control: RunControl | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        cfg = self.config
        out = self._generate(inp)
        if control is not None and control.stop_requested:
            raise _Abandoned  # before the backward pass and the update: nothing of this step is kept
        ax = self.operator(out)
        terms = {"data": self.operator.data_loss(ax, self.y)}  # MSE for all but the pre-image's class term
        if self.loss_prior is not None:
            terms["prior"] = self.loss_prior(ax, self.y, self.iteration)
        if cfg.tv_weight > 0:
            terms["tv"] = cfg.tv_weight * total_variation(out)
        loss = torch.stack(list(terms.values())).sum()
        self.optimizer.zero_grad(set_to_none=True)
        if self._scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self._scaler.scale(loss).backward()
            self._scaler.step(self.optimizer)  # skipped when a gradient is inf or NaN; the scale then shrinks
            self._scaler.update()
        return out, terms, loss

    def _averaged(self, x: torch.Tensor) -> tuple[torch.Tensor, float, torch.Tensor]:
        """The running average's state after ``x``, as new tensors (committed by the caller): an exponential
        average started from zero and divided by (1 - w^t), as Adam does. The reference starts it at the first
        (grey, noisy) output, which then keeps weight w^t and spoils the average when the peak comes early
        (heavy noise: ~0.6-2 dB at iteration 300)."""
        w = self.config.exp_weight
        ema = self._ema * w if self._ema is not None else torch.zeros_like(x)
        ema.add_(x, alpha=1 - w)
        decay = self._ema_decay * w
        return ema, decay, self._corrected_average(x, ema, decay)

    def flush(self) -> StepReport | None:
        """Settle the step whose numbers are still on their way (``overlap``); None when there is none."""
        pending, self._pending = self._pending, None
        return self._settle(pending, 0.0) if pending is not None else None

    def _settle(self, p: _Pending, seconds: float) -> StepReport:
        """Read a step's numbers (the step's one wait for the device) and let the guard and the rule act."""
        values = p.values.tensor().tolist()
        n = len(p.names)
        total, term_values = values[0], dict(zip(p.names, values[1 : 1 + n]))
        p_raw = p_avg = None
        if p.has_psnr:
            p_raw, p_avg = values[1 + n], values[2 + n]
            if self._peak is None or p_raw > self._peak[1]:
                self._peak = (p.iteration, p_raw)
        signal = values[1 + n + 2 * p.has_psnr] if p.has_signal else None
        snapshot_finite = bool(values[-1]) if p.has_snapshot else True
        restored = self._guard(p.iteration, total, term_values["data"], snapshot_finite)
        verdict = self.rule.decide(p.iteration, signal)
        if verdict.new_pick:  # both are fresh tensors each step, never written in place: no copy needed
            self._pick = (p.iteration, p.output, p.average)
        self._rule_fired = verdict.stop
        return StepReport(
            p.iteration,
            total,
            term_values,
            p_raw,
            p_avg,
            verdict.signal,
            verdict.pick_iteration,
            seconds,
            restored,
            self.config.seed,
        )

    def _corrected_average(
        self, current: torch.Tensor, ema: torch.Tensor | None = None, decay: float | None = None
    ) -> torch.Tensor:
        """The running average (the engine's, or ``ema`` with ``decay``) as a fresh tensor (the pick keeps it
        without copying); with weight 0, or before the first step has started it, simply the current output."""
        ema = self._ema if ema is None else ema
        decay = self._ema_decay if decay is None else decay
        if self.config.exp_weight > 0 and ema is not None:
            return ema / (1.0 - decay)
        return current

    def _probe(self, b: torch.Tensor) -> torch.Tensor:
        """The generator's output for the un-jittered input plus ``b`` (SURE's divergence probe), in float32
        whatever the run's precision: the probe's perturbation (~1e-3) is below bfloat16's spacing at the first
        convolution, so under autocast the divergence it estimates would be rounding noise. Eager, so that a
        compiled network does not compile a second graph for it."""
        h, w = self.problem.size
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            full = self.net(self.z + b.to(self.z.dtype).contiguous(memory_format=self._mem))
        return full[..., :h, :w].float()

    def _capture(self) -> torch.Tensor | None:
        """Snapshot the weights, Adam's state and the average every GUARD_EVERY steps (device copies, queued
        like the step, into the memory of a snapshot no longer needed: a deep copy cost ~11 ms of Python on a
        small network); the snapshot becomes the guard's 'last good' once its step's loss is known *and* it is
        finite (an update can make the weights non-finite after a finite loss). Returns that finiteness as a
        device value to fetch with the step's numbers, or None when no snapshot was taken."""
        first = self._good is None and self._candidate is None
        if not (self.config.guard and (first or self.iteration % GUARD_EVERY == 0)):
            return None
        into, self._spare = self._spare, None
        if self._candidate is not None:  # never judged: its memory serves the new one, so it is dropped first
            into, self._candidate = self._candidate[1], None
        into = into or {}
        snapshot = {
            "net": _copy_into(into.get("net"), self.net.state_dict()),
            "opt": _copy_into(into.get("opt"), self.optimizer.state_dict()),
            "ema": _copy_into(into.get("ema"), self._ema) if self._ema is not None else None,
            "ema_decay": self._ema_decay,
        }
        floats = [t for t in _tensors(snapshot) if t.is_floating_point()]
        finite = torch.stack([torch.isfinite(t).all() for t in floats]).all()
        self._candidate = (self.iteration, snapshot)  # only once whole: a failed copy leaves no candidate
        return finite

    def _guard(self, iteration: int, total: float, data_loss: float, snapshot_finite: bool = True) -> bool:
        """Divergence guard: on a loss jump or a non-finite loss, restore the last good weights *and* Adam's
        state. True when it restored. Marks the run diverged when the loss is non-finite and nothing can bring
        it back (the guard is off, or no snapshot is good yet), or when restores keep failing
        (GUARD_RETRIES in a row without the guard accepting a new snapshot)."""
        cfg = self.config
        finite = math.isfinite(total) and math.isfinite(data_loss)
        if not cfg.guard:
            self._diverged = self._diverged or not finite
            return False
        good = self._good
        if not finite or (good is not None and data_loss > cfg.guard_ratio * self._good_loss):
            # a step computed before the last restore (overlap: it was in flight) is restored again, but it
            # says nothing of whether the restored weights work: only the steps after it count as retries
            retry = iteration > self._restored_through
            if good is None or (retry and self._restores_in_a_row >= GUARD_RETRIES):
                self._diverged = True
                return False
            self.net.load_state_dict(good["net"])  # copies into the parameters
            # copied into the optimiser's own tensors first: load_state_dict alone would adopt the snapshot's
            # tensors, and Adam's next steps would then change the snapshot a later restore relies on
            self.optimizer.load_state_dict(_copy_into(self.optimizer.state_dict(), good["opt"]))
            self._ema = good["ema"].clone()
            self._ema_decay = good["ema_decay"]
            if self._avg is not None:
                self._avg = self._corrected_average(self._avg)
            if self._candidate is not None:
                self._spare, self._candidate = self._candidate[1], None
            if retry:
                self._restores_in_a_row += 1
            self._restored_through = self.iteration
            return True
        if self._candidate is not None and self._candidate[0] == iteration:
            if not snapshot_finite:  # never the last good state: the next loss is non-finite and restores
                self._spare, self._candidate = self._candidate[1], None
                return False
            self._spare, self._good, self._good_loss = self._good, self._candidate[1], data_loss
            self._candidate = None
            self._restores_in_a_row = 0
        return False

    def _oom_error(self) -> OutOfMemoryError:
        """The words for running out of memory, after giving back what can be given: the gradients, and on
        CUDA the allocator's cache (called outside the ``except`` block, whose traceback would keep the failed
        step's graph alive)."""
        h, w = self.problem.size
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return OutOfMemoryError(
            f"the {w}x{h} run does not fit in the memory of {self.device_name}; "
            f"try a working size of about {w // 2}x{h // 2} (downscale the photo or crop around the damage), "
            "a smaller prior (fewer channels), or the CPU; the run so far is kept"
        )

    # ----- the loop ------------------------------------------------------------------------------
    def _ended(self, budget: int, control: RunControl) -> StopReason | None:
        """Why the run ends before its next step, or None to go on (the order settles ties)."""
        if self._diverged:
            return StopReason.DIVERGED
        if self._rule_fired and self.config.auto_stop:
            return StopReason.RULE
        if self.iteration >= budget or (control.time_up and self.iteration > 0):  # a time budget: one step at least
            return StopReason.BUDGET
        if control.stop_requested:
            return StopReason.USER
        return None

    def steps(
        self, control: RunControl | None = None, budget: int | None = None
    ) -> Generator[RunEvent, None, RunResult]:
        """The run as a generator: step until the budget (the iteration to stop at; the config's by default),
        a stop through ``control``, the rule (with auto stop), divergence, running out of memory or an error.

        Yields a :class:`RunEvent` after every step and around every pause, and returns the
        :class:`RunResult`. Errors inside a step end the run (OUT_OF_MEMORY, ERROR) instead of escaping, with
        the state kept: the consumer still reads the iterates so far. The last step's numbers are settled
        before the end (a SETTLED event). Closing the generator early leaves the last report unsettled."""
        control = control if control is not None else RunControl()
        budget = self.config.iterations if budget is None else budget
        reports: list[StepReport] = []
        message, error = "", None
        start, paused, step_seconds = self.iteration, 0.0, 0.0
        t0 = time.perf_counter()
        while True:
            ended = self._ended(budget, control)
            if ended is not None:
                reason = ended
                break
            if control.pause_requested:
                rep = self.flush()  # the person sees every step's numbers while the run waits
                if rep is not None:
                    reports.append(rep)
                yield RunEvent(EventKind.PAUSED, self.iteration, rep)
                tp = time.perf_counter()
                control.wait_while_paused()
                paused += time.perf_counter() - tp
                yield RunEvent(EventKind.RESUMED, self.iteration)
                continue
            ts = time.perf_counter()
            self._control = control  # only for this step: a step() called on its own never stops halfway
            try:
                rep = self.step()
            except _Abandoned:  # a stop asked inside a long step: the step was undone
                reason = StopReason.USER
                break
            except Exception as exc:  # the state is kept: the iterates so far stay readable
                out_of_memory = isinstance(exc, (OutOfMemoryError, torch.OutOfMemoryError))
                reason = StopReason.OUT_OF_MEMORY if out_of_memory else StopReason.ERROR
                message, error = describe_error(exc), exc
                break
            finally:
                self._control = None
                step_seconds += time.perf_counter() - ts
            if rep is not None:
                reports.append(rep)
            yield RunEvent(EventKind.STEP, self.iteration, rep)
        try:
            rep = self.flush()
        except Exception as exc:
            rep = None
            if error is None:
                if isinstance(exc, torch.OutOfMemoryError):
                    exc = self._oom_error()
                out_of_memory = isinstance(exc, OutOfMemoryError)
                reason = StopReason.OUT_OF_MEMORY if out_of_memory else StopReason.ERROR
                message, error = describe_error(exc), exc
        if rep is not None:
            reports.append(rep)
            if reason is StopReason.BUDGET and self._diverged:  # the last step, settled only now, went bad
                reason = StopReason.DIVERGED
            yield RunEvent(EventKind.SETTLED, self.iteration, rep)
        if reason is StopReason.DIVERGED and not message:
            message = (
                "the loss became non-finite and the divergence guard could not recover it; try a lower "
                "learning rate" + ("" if self.config.guard else " or turn the guard on")
            )
        n = self.iteration - start
        seconds = time.perf_counter() - t0 - paused
        peak_iteration, peak_psnr = self._peak if self._peak is not None else (None, None)
        return RunResult(
            iterations_run=n,
            stop_reason=reason,
            pick_iteration=self.pick_iteration,
            peak_iteration=peak_iteration,
            peak_psnr=peak_psnr,
            seconds_per_iteration=seconds / max(n, 1),
            reports=reports,
            seconds=seconds,
            step_seconds=step_seconds,
            message=message,
            error=error,
        )

    def run(
        self,
        on_report: Callable[[StepReport], None] | None = None,
        max_iterations: int | None = None,
        control: RunControl | None = None,
    ) -> RunResult:
        """:meth:`steps` drained, for code that wants the end only (``on_report`` sees every report)."""

        def on_event(event: RunEvent) -> None:
            if on_report is not None and event.report is not None:
                on_report(event.report)

        return drain(self.steps(control, max_iterations), on_event)

    # ----- images out ----------------------------------------------------------------------------
    @property
    def pick_iteration(self) -> int | None:
        return self._pick[0] if self._pick else None

    @property
    def peak(self) -> tuple[int, float] | None:
        """(iteration, PSNR) of the best raw iterate so far; only with ground truth."""
        return self._peak

    def tensor(self, which: Iterate = Iterate.RAW) -> torch.Tensor:
        """The iterate itself, 1xCxHxW on the device: no copy, so read it and never write into it (a stopping
        rule measured outside the engine observes it this way, without a trip through the host)."""
        which = Iterate(which)
        if self._out is None or self._avg is None:
            raise RwguiError("no iterate yet: run at least one step")
        if which is Iterate.RAW:
            return self._out
        if which is Iterate.AVERAGE:
            return self._avg
        if self._pick is None:
            return self._out if which is Iterate.PICK else self._avg
        return self._pick[1] if which is Iterate.PICK else self._pick[2]

    def image(self, which: Iterate = Iterate.RAW) -> np.ndarray:
        """An HxWxC float32 copy on the host of the raw iterate, the running average, or either at the pick;
        waits for the device (a loop that must not wait uses :meth:`request_image`). OutOfMemoryError (state
        kept) when the copy does not fit."""
        return self.request_image(which).array()

    def request_image(self, which: Iterate = Iterate.RAW) -> ImageFetch:
        """Start copying an iterate (as :meth:`image` returns it) to the host without waiting for the device
        (pinned memory and an event on CUDA): a loop that keeps iterates several times a second would otherwise
        wait for the whole queue of work each time. Its ``iteration`` is the iterate's own (the pick's for
        PICK and PICK_AVERAGE). OutOfMemoryError (state kept) when the copy does not fit."""
        which = Iterate(which)
        at_pick = which in (Iterate.PICK, Iterate.PICK_AVERAGE) and self._pick is not None
        iteration = self._pick[0] if at_pick and self._pick is not None else self.iteration
        try:
            with torch.no_grad():
                t = self.tensor(which).detach().float().clamp(0, 1)[0].permute(1, 2, 0).contiguous()
                return ImageFetch(iteration, t)
        except torch.OutOfMemoryError:
            pass  # see step(): the error is raised outside the except block
        raise self._oom_error()

    def result_image(self) -> np.ndarray:
        """The run's answer: the running average at the rule's pick (better than the raw pick; see README)."""
        return self.image(Iterate.PICK_AVERAGE)

    def frame(self, which: Iterate = Iterate.RAW) -> np.ndarray:
        """A contiguous HxWx4 RGBA uint8 copy for display (pyqtgraph's fastest path)."""
        return self.request_frame(which).array()

    def request_frame(self, which: Iterate = Iterate.RAW) -> FrameFetch:
        """Start copying a display frame of the newest iterate to the host without waiting for the device
        (pinned memory on CUDA); poll ``ready()`` and take ``array()``, an owned HxWx4 uint8 array.
        OutOfMemoryError (state kept) when the frame does not fit."""
        try:
            with torch.no_grad():
                t = self.tensor(which)[0]
                if t.shape[0] == 1:
                    t = t.expand(3, -1, -1)
                rgb = (t * 255.0).round_().to(torch.uint8)
                alpha = torch.full_like(rgb[:1], 255)
                return FrameFetch(self.iteration, torch.cat([rgb, alpha]).permute(1, 2, 0).contiguous())
        except torch.OutOfMemoryError:
            pass  # see step(): the error is raised outside the except block
        raise self._oom_error()
