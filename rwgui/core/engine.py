"""The optimisation loop: fit f_θ(z) so that A(f_θ(z)) matches the observed photo.

No threads, no Qt. ``step()`` does one step and returns a small report (one host-device sync per step,
for all scalars together); images leave only when asked (``image()``, ``frame()``). ``cancel()`` may be
called from any thread; ``run()`` checks it before every step.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .config import RunConfig
from .device import cpu_has_native_bf16, describe, resolve_device
from .errors import OutOfMemoryError, RwguiError
from .lossprior import build_loss_prior, total_variation
from .metrics import psnr_t
from .priors import build_prior, input_channels, make_input, padded_size
from .problems import Problem, to_array
from .stopping import Observation, build_rule

GUARD_EVERY = 50  # steps between snapshots of the last good weights and optimiser state


@dataclass(frozen=True)
class StepReport:
    """What one step tells the outside world; small, plain, safe to send across threads."""

    iteration: int
    loss: float
    loss_terms: dict[str, float]
    psnr: float | None
    psnr_average: float | None
    signal: float | None
    best_iteration: int | None
    seconds: float
    restored: bool = False
    seed: int = 0


@dataclass
class RunResult:
    """The end of a run: why it stopped, the rule's pick, the peak when ground truth was known."""

    iterations_run: int
    stop_reason: str
    pick_iteration: int | None
    peak_iteration: int | None
    peak_psnr: float | None
    seconds_per_iteration: float
    reports: list[StepReport] = field(default_factory=list)


class Engine:
    """One run of Deep Image Prior on one problem."""

    def __init__(self, problem: Problem, config: RunConfig) -> None:
        self.config = cfg = config.validated()
        self.problem = problem
        self.device = resolve_device(cfg.device)
        if cfg.speed.threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(cfg.speed.threads)
        torch.manual_seed(cfg.seed)  # weight init is drawn on the CPU, so it is the same on every device
        self._gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self._noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)

        c = problem.channels
        self.net = build_prior(cfg.prior, cfg.prior_params,
                               in_channels=input_channels(cfg.input_code, cfg.input_depth, c), out_channels=c)
        mult = getattr(self.net, "size_multiple", 1)
        h, w = problem.size
        # at least two pixels at the deepest scale: BatchNorm needs more than one value per channel
        self.padded = padded_size((max(h, 2 * mult), max(w, 2 * mult)), mult)
        z = make_input(cfg.input_code, cfg.input_depth, self.padded, generator=self._gen,
                       observed=problem.observed, image_size=(h, w))
        self._mem = torch.channels_last if cfg.speed.channels_last else torch.contiguous_format
        self.net = self.net.to(self.device, memory_format=self._mem)
        self.z = z.to(self.device).contiguous(memory_format=self._mem)
        self.y = problem.observed.to(self.device)
        self.gt = problem.ground_truth.to(self.device) if problem.ground_truth is not None else None
        self.operator = problem.operator.to(self.device)
        self.autocast_dtype = self._pick_precision()
        self._check_memory()
        self._forward: Callable[[torch.Tensor], torch.Tensor] = self.net
        if cfg.speed.compile:
            self._forward = self._try_compile()

        fused = {"fused": True} if self.device.type == "cuda" else {}
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, **fused)
        self.loss_prior = build_loss_prior(cfg.loss_prior, dict(cfg.loss_prior_params), channels=c,
                                           seed=cfg.seed + 2, device=self.device)
        self.rule = build_rule(cfg.stop, dict(cfg.stop_params))

        self.iteration = 0
        self._cancel = threading.Event()
        self._out: torch.Tensor | None = None
        self._avg: torch.Tensor | None = None  # the running average, bias-corrected (see step)
        self._ema: torch.Tensor | None = None
        self._ema_decay = 1.0  # exp_weight ** iteration
        self._pick: tuple[int, torch.Tensor, torch.Tensor] | None = None
        self._peak: tuple[int, float] | None = None
        self._good: dict[str, Any] | None = None
        self._good_loss = float("inf")
        self.stop_requested = False  # the rule asked to stop (auto stop decides whether run() obeys)

    # ----- set-up helpers -----------------------------------------------------------------------
    def _pick_precision(self) -> torch.dtype | None:
        p = self.config.speed.precision
        if p == "float32":
            return None
        if p == "bfloat16":
            return torch.bfloat16
        if p == "float16":
            return torch.float16 if self.device.type != "cpu" else torch.bfloat16
        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        if self.device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return None

    def _check_memory(self) -> None:
        """Refuse, with a working size to try, a run that cannot fit (checked above 512x512 only: the probe
        costs a small forward/backward pass, and smaller runs fit any machine rwgui runs on)."""
        h, w = self.problem.size
        if h * w <= 512 * 512:
            return
        from .memory import available_bytes, estimate_memory, fitting_size

        free = available_bytes(self.device)
        if free is None:
            return
        c = self.problem.channels
        est = estimate_memory(self.config, (h, w), c, self.autocast_dtype, self.device.type)
        if est.total_bytes > 0.9 * free:
            fh, fw = fitting_size(self.config, (h, w), c, int(0.9 * free), self.autocast_dtype, self.device.type)
            raise OutOfMemoryError(
                f"restoring {w}x{h} needs about {est.total_mb:.0f} MB but {self.device_name} has "
                f"{free / 2**20:.0f} MB free; a working size of about {fw}x{fh} fits (downscale the photo, or "
                "crop around the damage), or choose a prior with fewer channels")

    def _try_compile(self) -> Callable[[torch.Tensor], torch.Tensor]:
        try:
            compiled = torch.compile(self.net)
            with torch.no_grad(), self._autocast():
                compiled(self.z)
            return compiled  # type: ignore[return-value]
        except Exception:  # noqa: BLE001 - any backend failure falls back to eager, which is always correct
            return self.net

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @property
    def device_name(self) -> str:
        return describe(self.device)

    # ----- the loop ------------------------------------------------------------------------------
    def _generate(self, inp: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            full = self._forward(inp)
        h, w = self.problem.size
        return full[..., :h, :w].float()  # padding sits at the bottom and right

    def step(self) -> StepReport:
        """One optimisation step; raises OutOfMemoryError (state kept) when the device runs out."""
        t0 = time.perf_counter()
        cfg = self.config
        try:
            inp = self.z
            if cfg.reg_noise_std > 0:
                noise = torch.randn(self.z.shape, generator=self._noise_gen, device=self.device)
                inp = self.z + cfg.reg_noise_std * noise.contiguous(memory_format=self._mem)
            out = self._generate(inp)
            ax = self.operator(out)
            terms = {"data": F.mse_loss(ax, self.y)}
            if self.loss_prior is not None:
                terms["prior"] = self.loss_prior(ax, self.y, self.iteration)
            if cfg.tv_weight > 0:
                terms["tv"] = cfg.tv_weight * total_variation(out)
            loss = torch.stack(list(terms.values())).sum()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        except torch.OutOfMemoryError as exc:
            self.optimizer.zero_grad(set_to_none=True)
            raise self._oom_error() from exc
        self.iteration += 1
        with torch.no_grad():
            x = out.detach().clamp(0, 1)
            w = cfg.exp_weight
            # An exponential average started from zero and divided by (1 - w^t), as Adam does: the
            # reference starts it at the first (grey, noisy) output, which then keeps weight w^t and
            # spoils the average when the peak comes early (heavy noise: ~0.6-2 dB at iteration 300).
            if self._ema is None:
                self._ema = torch.zeros_like(x)
            self._ema.mul_(w).add_(x, alpha=1 - w)
            self._ema_decay *= w
            self._avg = self._corrected_average(x)
            self._out = x
            scalars = [loss.detach().float(), *(t.detach().float() for t in terms.values())]
            if self.gt is not None:
                scalars += [psnr_t(x, self.gt), psnr_t(self._avg, self.gt)]
            values = torch.stack(scalars).tolist()  # the step's one host-device sync
        total = values[0]
        term_values = dict(zip(terms, values[1:1 + len(terms)]))
        p_raw = p_avg = None
        if self.gt is not None:
            p_raw, p_avg = values[-2], values[-1]
            if self._peak is None or p_raw > self._peak[1]:
                self._peak = (self.iteration, p_raw)
        restored = self._guard(term_values["data"])
        verdict = self.rule.observe(Observation(
            iteration=self.iteration, output=x, observed=self.y, data_loss=term_values["data"],
            probe=self._probe if cfg.input_code == "observed" else None, input_shape=tuple(self.z.shape)))
        if verdict.new_best:  # both are fresh tensors each step, never written in place: no copy needed
            self._pick = (self.iteration, x, self._avg)
        self.stop_requested = bool(verdict.stop)
        return StepReport(self.iteration, total, term_values, p_raw, p_avg, verdict.signal,
                          verdict.best_iteration, time.perf_counter() - t0, restored, cfg.seed)

    def _corrected_average(self, current: torch.Tensor) -> torch.Tensor:
        """The running average as a fresh tensor (the pick keeps it without copying); with weight 0 it is
        simply the current output."""
        return self._ema / (1.0 - self._ema_decay) if self.config.exp_weight > 0 else current

    def _probe(self, b: torch.Tensor) -> torch.Tensor:
        """The generator's output for the un-jittered input plus ``b`` (SURE's divergence probe)."""
        with torch.no_grad():
            return self._generate(self.z + b.to(self.z.dtype).contiguous(memory_format=self._mem))

    def _guard(self, data_loss: float) -> bool:
        """Divergence guard: on a loss jump, restore the last good weights *and* Adam's state."""
        cfg = self.config
        if not cfg.guard:
            return False
        if self._good is not None and data_loss > cfg.guard_ratio * self._good_loss:
            self.net.load_state_dict(self._good["net"])
            self.optimizer.load_state_dict(self._good["opt"])
            self._ema = self._good["ema"].clone()
            self._ema_decay = self._good["ema_decay"]
            self._avg = self._corrected_average(self._avg)
            return True
        if self._good is None or self.iteration % GUARD_EVERY == 0:
            self._good = {
                "net": copy.deepcopy(self.net.state_dict()),
                "opt": copy.deepcopy(self.optimizer.state_dict()),
                "ema": self._ema.clone() if self._ema is not None else None,
                "ema_decay": self._ema_decay,
            }
            self._good_loss = data_loss
        return False

    def _oom_error(self) -> OutOfMemoryError:
        h, w = self.problem.size
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return OutOfMemoryError(
            f"the {w}x{h} run does not fit in the memory of {self.device_name}; "
            f"try a working size of about {w // 2}x{h // 2} (downscale the photo or crop around the damage), "
            "a smaller prior (fewer channels), or the CPU; the run so far is kept"
        )

    def run(self, on_report: Callable[[StepReport], None] | None = None,
            max_iterations: int | None = None) -> RunResult:
        """Step until the budget, a cancel, or (with auto stop) the stopping rule."""
        budget = self.config.iterations if max_iterations is None else max_iterations
        reports: list[StepReport] = []
        reason = "completed"
        t0 = time.perf_counter()
        start = self.iteration
        while self.iteration < budget:
            if self._cancel.is_set():
                reason = "cancelled"
                break
            rep = self.step()
            reports.append(rep)
            if on_report is not None:
                on_report(rep)
            if self.stop_requested and self.config.auto_stop:
                reason = "rule"
                break
        n = self.iteration - start
        return RunResult(n, reason, self.pick_iteration,
                         *(self._peak if self._peak else (None, None)),
                         (time.perf_counter() - t0) / max(n, 1), reports)

    # ----- control -------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask ``run()`` to stop before its next step; safe from any thread."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def reset_cancel(self) -> None:
        self._cancel.clear()

    # ----- images out ----------------------------------------------------------------------------
    @property
    def pick_iteration(self) -> int | None:
        return self._pick[0] if self._pick else None

    @property
    def peak(self) -> tuple[int, float] | None:
        """(iteration, PSNR) of the best raw iterate so far; only with ground truth."""
        return self._peak

    def _tensor(self, which: str) -> torch.Tensor:
        if self._out is None or self._avg is None:
            raise RwguiError("no iterate yet: run at least one step")
        if which == "raw":
            return self._out
        if which == "average":
            return self._avg
        if which in ("pick", "pick_average"):
            if self._pick is None:
                return self._out if which == "pick" else self._avg
            return self._pick[1] if which == "pick" else self._pick[2]
        raise ValueError(f"unknown image {which!r}")

    def image(self, which: str = "raw") -> np.ndarray:
        """An HxWxC float32 copy on the host: 'raw', 'average', 'pick' or 'pick_average'."""
        return to_array(self._tensor(which))

    def average_image(self) -> np.ndarray:
        return self.image("average")

    def result_image(self) -> np.ndarray:
        """The run's answer: the running average at the rule's pick (better than the raw pick; see README)."""
        return self.image("pick_average")

    def frame(self, which: str = "raw") -> np.ndarray:
        """A contiguous HxWx4 RGBA uint8 copy for display (pyqtgraph's fastest path)."""
        with torch.no_grad():
            t = self._tensor(which)[0]
            if t.shape[0] == 1:
                t = t.expand(3, -1, -1)
            rgb = (t * 255.0).round_().to(torch.uint8)
            alpha = torch.full_like(rgb[:1], 255)
            return torch.cat([rgb, alpha]).permute(1, 2, 0).contiguous().cpu().numpy()
