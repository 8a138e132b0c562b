"""``rwgui-restore``: the engine, headless, with a progress line and a JSON report.

Every flag beyond the fixed ones is generated from the registries' parameter specs: prior parameters
by name (``--num-scales``), stopping-rule parameters as ``--stop-NAME``, loss-prior parameters as
``--loss-prior-NAME``, run settings by name (``--lr``), what to do when the run does not fit in memory
(``--working-size``, ``--memory-budget``, ``--crop-margin``, from :mod:`rwgui.core.working_size`).
A user error prints one line and exits 2; every file the run reads or writes is checked before its first step
(:func:`check_destinations`, :mod:`rwgui.core.paths`). Ctrl+C writes the result so far and exits 130.

``--working-size downscale`` writes denoising and super-resolution results at the working size (upscaling
would add blur, not detail) and inpainting results at full size (the holes of the full photo are filled from
the upscaled result); ``crop`` always writes the full photo with the restored crop pasted in.

An inpainting result keeps the photo's known pixels at every working size (the network's output fills the
holes, blended in across a ``--seam-px`` seam; :mod:`rwgui.core.compositing`); ``--no-keep-known`` writes the
network's output as it is. The report's ``written`` entry and the last line say which was written.

With a ground truth the report's ``final``, ``peak``, ``peak_average`` and ``stop`` PSNRs are the network's
output's at the working size (the engine's steps' figures, as the trace and the progress line give them);
``written.psnr`` is the written result's, at the photo's size: for inpainting the known pixels kept, often
several dB higher (:func:`build_report`). The batch summary's PSNR is the written file's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .batch import Inputs, add_batch_flags, is_batch, run_batch
from .core import imageio
from .core.atomic import atomic_file
from .core.compositing import describe_result, result_seam
from .core.config import (
    PRESETS,
    RUN_PARAMS,
    SPEED_PARAMS,
    SR_FACTORS,
    TASKS,
    RunConfig,
    SpeedConfig,
    preset,
    preset_name,
)
from .core.engine import Engine, RunControl, RunResult
from .core.errors import ConfigError, OutOfMemoryError, OutputPathError, RwguiError, WeightsError
from .core.estimate import FIXED_SIZE, TimePlan, estimate_run, plan_preview, plan_time_budget
from .core.kernels import parse_kernel_spec
from .core.metrics import psnr
from .core.noise_estimate import NoiseEstimate
from .core.params import Param, Registry
from .core.paths import check_output_path, check_writable, default_output_name, same_file
from .core.pixels import tensor_to_image
from .core.problems import Problem, hole_fraction, make_problem
from .core.tasks import TASK_SPECS, all_task_params, presets_table, task_spec
from .core.vocabulary import Iterate, StopReason, Task, WorkingMode
from .core.working_size import (
    WORKING_PARAMS,
    Working,
    WorkingPlan,
    choose_working,
    plan_for_problem,
    to_full,
    working_problem,
)


def _registries() -> list[tuple[str, Registry[Any], str]]:
    """(config field, registry, flag prefix) for every kind of variant."""
    from .core.lossprior import LOSS_PRIORS
    from .core.priors import PRIORS
    from .core.stopping import STOPPING_RULES

    return [("prior", PRIORS, ""), ("stop", STOPPING_RULES, "stop-"), ("loss_prior", LOSS_PRIORS, "loss-prior-")]


def _dest(prefix: str, name: str) -> str:
    return "p_" + (prefix + name).replace("-", "_")


def _add_param_flag(group: argparse._ArgumentGroup, p: Param, prefix: str, seen: set[str]) -> None:
    flag = "--" + prefix + p.name.replace("_", "-")
    if flag in seen:
        return
    seen.add(flag)
    kw: dict[str, Any] = {"dest": _dest(prefix, p.name), "default": None, "help": p.help}
    if p.kind == "bool":
        kw["action"] = argparse.BooleanOptionalAction
    elif p.choices:
        kw["choices"] = p.choices
        if p.kind in ("int", "float"):
            kw["type"] = int if p.kind == "int" else float
    else:
        kw["metavar"] = {"int": "N", "float": "X", "ints": "N[,N...]"}.get(p.kind, "VALUE")
    group.add_argument(flag, **kw)


#: ``--result``: the words on the command line for the iterates at the rule's pick it can write
RESULT_ITERATES = {"average": Iterate.PICK_AVERAGE, "raw": Iterate.PICK}


def build_parser() -> argparse.ArgumentParser:
    """Every flag whose value is a setting comes from a Param (RunConfig's fields, the registries' variants,
    the working-size options); a flag not given is None, so the preset (or --config) supplies the default."""
    registries = _registries()
    names = {field: ", ".join(reg.names()) for field, reg, _ in registries}
    ap = argparse.ArgumentParser(
        prog="rwgui-restore",
        description="Restore a photo with Deep Image Prior (an untrained network fitted to this one photo).",
    )
    ap.add_argument("task", choices=TASKS, help=", ".join(f"{t.task} ({t.label})" for t in TASK_SPECS.values()))
    ap.add_argument(
        "input",
        nargs="+",
        action=Inputs,
        help="the damaged photo (PNG, JPEG, TIFF, BMP, WebP; 8 or 16 bit); several photos or a folder: a batch",
    )
    ap.add_argument(
        "-o", "--output", help="where to write the result (default: INPUT_restored.png); a batch: the output folder"
    )
    ap.add_argument("--overwrite", action="store_true", help="allow -o to name the input photo and replace it")
    ap.add_argument("--mask", help="inpainting mask PNG: 255 (white) = known pixel, 0 = hole")
    ap.add_argument("--no-flash", help="flash: the no-flash photo of the same scene (INPUT is the flash photo)")
    ap.add_argument(
        "--kernel", help="deblur: the blur kernel, gaussian:SIGMA, motion:LENGTH,ANGLE (degrees) or a grey kernel image"
    )
    ap.add_argument("--presets", action="store_true", help="print every task's preset as a table and exit")
    ap.add_argument(
        "--factor",
        type=int,
        choices=SR_FACTORS,
        default=RunConfig.factor,
        help="super-resolution factor (default %(default)s)",
    )
    ap.add_argument("--ground-truth", help="the undamaged photo, to report PSNR (benchmarks, synthetic damage)")
    ap.add_argument("--config", help="a settings JSON (from the GUI's Export settings or --save-config)")
    ap.add_argument("--save-config", help="write the run's full settings as JSON here")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="start from this preset instead of the task's")
    ap.add_argument(
        "--prior",
        help=f"generator architecture: {names['prior']} (default: the preset's; for deep-decoder give "
        "--reg-noise-std 0 or use --preset denoise-dd: the other priors' input jitter costs it 5-10 dB)",
    )
    ap.add_argument("--stop", help=f"stopping rule: {names['stop']} (default: the preset's)")
    ap.add_argument("--no-auto-stop", action="store_true", help="let the rule only mark its pick, run the budget")
    ap.add_argument(
        "--loss-prior", help=f"random-weights loss prior: none, {names['loss_prior']} (default: the preset's)"
    )
    ap.add_argument(
        "--result",
        choices=tuple(RESULT_ITERATES),
        default="average",
        help="write the running average at the rule's pick (default) or the raw iterate there",
    )
    ap.add_argument("--report", help="write a JSON report (settings, trace, peak, stop) here")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    ap.add_argument(
        "--retune",
        action="store_true",
        help="forget the speed settings measured on this machine and measure again before the run "
        "(speed settings left at 'auto' are measured once per photo size and network, then remembered)",
    )
    ap.add_argument(
        "--estimate",
        action="store_true",
        help="print the expected seconds per step (a few steps timed at a small size), the total time and the "
        "memory, and exit without running",
    )
    ap.add_argument(
        "--time-budget",
        type=float,
        metavar="MINUTES",
        help="end in about this many minutes with the best result: a smaller working size (the result upscaled "
        "back; inpainting: the crop around the damage; the pre-image keeps its size) and fewer iterations where "
        "needed, and a wall-clock cap",
    )
    ap.add_argument(
        "--preview",
        action="store_true",
        help="a first look in under a minute: a small working size (at most 128 px a side) and few iterations",
    )
    add_batch_flags(ap)
    seen: set[str] = set()
    speed = ap.add_argument_group("speed (each speed-up can be turned off)")
    for p in SPEED_PARAMS:
        _add_param_flag(speed, p, "", seen)
    run = ap.add_argument_group("run settings (default: the preset's, or the --config file's)")
    for p in RUN_PARAMS:
        _add_param_flag(run, p, "", seen)
    task_group = ap.add_argument_group("task parameters (pre-image; deblur takes --kernel)")
    for p in all_task_params():
        if p.name not in _KERNEL_PARAMS:
            _add_param_flag(task_group, p, "", seen)
    task_group.add_argument("--class", dest=_dest("", "class_index"), type=int, help="the same as --class-index")
    fit = ap.add_argument_group("working size (when the run does not fit in memory)")
    for p in WORKING_PARAMS:
        _add_param_flag(fit, p, "", seen)
    for _, reg, prefix in registries:
        group = ap.add_argument_group(f"{reg.kind} parameters ({', '.join(reg.names())})")
        for variant in reg:
            for p in variant.params:  # one flag per name: its help gives each variant's meaning
                _add_param_flag(group, replace(p, help=reg.flag_help(p.name)), prefix, seen)
    return ap


def _variant_overrides(args: argparse.Namespace, reg: Registry[Any], prefix: str, name: str) -> dict[str, Any]:
    """The flags given for parameters of registry ``reg``; an error if ``name`` has no such parameter."""
    given: dict[str, Any] = {}
    for variant in reg:
        for p in variant.params:
            value = getattr(args, _dest(prefix, p.name), None)
            if value is not None:
                given[p.name] = value
    if name == "none" and given:
        raise ConfigError(f"--{prefix}{next(iter(given)).replace('_', '-')} given but no {reg.kind} is selected")
    if given and name != "none":
        variant = reg.get(name)
        for key in given:
            variant.param(key)  # raises ConfigError naming the variant's real parameters
    return given


#: The deblur task's parameters, which ``--kernel SPEC`` sets together (rwgui.core.kernels).
_KERNEL_PARAMS = ("kernel", "sigma", "length", "angle", "kernel_file")


def task_params(args: argparse.Namespace) -> dict[str, Any]:
    """The task's parameters: the --config file's (for the same task), overlaid with --kernel and the task
    parameter flags given; resolved against the task's spec (ConfigError, or KernelError, names a bad one)."""
    base: dict[str, Any] = {}
    if getattr(args, "config", None):
        cfg = RunConfig.load(args.config)
        if cfg.task == args.task:
            base = dict(cfg.task_params)
    spec = task_spec(args.task)
    names = {p.name for p in spec.params}
    if getattr(args, "kernel", None):
        if args.task != Task.DEBLUR:
            raise ConfigError("--kernel is for the deblur task")
        base.update(parse_kernel_spec(args.kernel))
    for p in all_task_params():
        if p.name in _KERNEL_PARAMS:
            continue
        value = getattr(args, _dest("", p.name), None)
        if value is not None:
            if p.name not in names:
                raise ConfigError(f"{p.flag} is not a parameter of the {args.task} task")
            base[p.name] = value
    return spec.resolve(base)


def make_config(args: argparse.Namespace, problem_hint: float | None) -> RunConfig:
    """Preset (or --config file) overlaid with the flags the person gave."""
    if args.config:
        cfg = RunConfig.load(args.config)
        if cfg.task != args.task:
            raise ConfigError(f"the settings file is for task '{cfg.task}' but the command asks for '{args.task}'")
        cfg = cfg.replace(factor=args.factor) if args.task == Task.SR and args.factor != cfg.factor else cfg
    else:
        name = args.preset or preset_name(args.task, args.factor, problem_hint)
        cfg = preset(name, factor=args.factor) if args.task == Task.SR else preset(name)
    changes: dict[str, Any] = {}
    for p in RUN_PARAMS:
        value = getattr(args, _dest("", p.name), None)
        if value is not None:
            changes[p.name] = value
    for field, reg, prefix in _registries():
        chosen = getattr(args, field) or getattr(cfg, field)
        over = _variant_overrides(args, reg, prefix, chosen)
        if chosen != getattr(cfg, field):
            changes[field] = chosen
            base: dict[str, Any] = dict(getattr(cfg, field + "_params")) if field == "prior" else {}
            if field == "prior":  # keep the preset's shared knobs the new prior also has
                base = {k: v for k, v in base.items() if k in reg.get(chosen).defaults()}
            changes[field + "_params"] = {**base, **over}
        elif over:
            changes[field + "_params"] = {**dict(getattr(cfg, field + "_params")), **over}
    if args.no_auto_stop:
        changes["auto_stop"] = False
    changes["task_params"] = task_params(args)
    speed = {
        p.name: getattr(args, _dest("", p.name)) for p in SPEED_PARAMS if getattr(args, _dest("", p.name)) is not None
    }
    if speed:
        changes["speed"] = SpeedConfig(**{**cfg.speed.__dict__, **speed})
    return cfg.replace(**changes).validated()


def prior_note(args: argparse.Namespace, cfg: RunConfig) -> str | None:
    """A word when ``--prior deep-decoder`` keeps a preset's input jitter: the setting is the person's to
    change (it is never changed behind their back), but a run that loses 5-10 dB to it should say so."""
    given = getattr(args, _dest("", "reg_noise_std"), None) is not None
    if cfg.prior != "deep-decoder" or cfg.reg_noise_std == 0 or given:
        return None
    return (
        "the deep-decoder prior runs on a fixed input code; this run keeps an input jitter "
        f"(--reg-noise-std {cfg.reg_noise_std:.3g}), which cost it 5-10 dB when measured: give --reg-noise-std 0 "
        "or --preset denoise-dd"
    )


def load_problem(args: argparse.Namespace) -> tuple[Problem, imageio.Image]:
    """The photo and its Problem, built by the same :func:`make_problem` as the studio's."""
    params = task_params(args)  # before the photo: a bad --kernel or a missing --weights fails first
    if args.task == Task.PREIMAGE and not params["weights"]:
        raise WeightsError(
            "the preimage task needs --weights PATH (a torchvision AlexNet or VGG state dict, loaded with "
            "weights_only=True); rwgui never downloads weights"
        )
    if args.task == Task.FLASH and not getattr(args, "no_flash", None):
        raise ConfigError("flash needs --no-flash PATH: the no-flash photo of the same scene (INPUT is the flash one)")
    photo = imageio.read(args.input)
    gt = imageio.read(args.ground_truth).pixels if args.ground_truth else None
    second = imageio.read(args.no_flash).pixels if args.task == Task.FLASH else None
    mask = None
    if args.task == Task.INPAINT:
        if not args.mask:
            raise ConfigError("inpainting needs --mask PATH (a PNG: 255 = known pixel, 0 = hole)")
        mask = imageio.read_mask(args.mask, photo.pixels.shape[:2])
    problem = make_problem(
        args.task, photo.pixels, factor=args.factor, mask=mask, ground_truth=gt, task_params=params, second=second
    )
    return problem, photo


class Progress:
    """Progress on stderr: a self-rewriting bar at most 10x a second on a terminal, else a line per 10 %."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.tty = total, enabled, sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._shown = -1  # the iteration of the line last written
        self._every = max(1, total // 10)

    def update(self, rep: Any, final: bool = False, where: str = "") -> None:
        """Show ``rep`` (an engine report, its iteration counted over the whole job); ``where`` names the part
        of the job running (a run on tiles: which tile)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty and not final and now - self._last < 0.1:
            return
        if not self.tty and not final and rep.iteration % self._every:
            return
        if not self.tty and final and rep.iteration == self._shown:
            return  # that line is already in the log
        self._last, self._shown = now, rep.iteration
        rate = rep.iteration / max(now - self.t0, 1e-9)
        eta = (self.total - rep.iteration) / max(rate, 1e-9)
        filled = int(24 * rep.iteration / max(self.total, 1))
        bar = "#" * filled + "-" * (24 - filled)
        extra = f" psnr {rep.psnr:6.2f} avg {rep.psnr_average:6.2f}" if rep.psnr is not None else ""
        line = f"[{bar}] {rep.iteration}/{self.total}{where} loss {rep.loss:.5f}{extra}"
        line += f" {rate:5.2f} it/s eta {eta:5.0f}s"
        sys.stderr.write(("\r" + line + " " + ("\n" if final else "")) if self.tty else line + "\n")
        sys.stderr.flush()


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 6)


def written_psnr(result: np.ndarray, problem: Problem) -> float | None:
    """PSNR of ``result``, the pixels written (at the photo's size, known pixels kept for inpainting), against
    ``problem``'s ground truth, as the studio's "Saved result PSNR" measures Save result's pixels; None without
    a ground truth, or when the result is written at another size (a downscaled working size)."""
    if problem.ground_truth is None:
        return None
    gt = tensor_to_image(problem.ground_truth)
    return _finite(psnr(result, gt)) if result.shape == gt.shape else None


def written_entry(
    result: np.ndarray,
    problem: Problem,
    iterate: Iterate,
    iteration: int,
    seam: int | None,
    description: str | None,
) -> dict[str, Any]:
    """The report's ``written`` entry: which iterate was written (``iterate``, ``iteration``); for inpainting
    whether the known pixels were kept (``keep_known``, ``seam_px``, ``description``); with a ground truth
    ``psnr``, the written result's (:func:`written_psnr`; the file's own differs only by its 8- or 16-bit
    rounding)."""
    out: dict[str, Any] = {"iterate": str(iterate), "iteration": iteration}
    if description is not None:
        out.update(keep_known=seam is not None, seam_px=seam, description=description)
    if problem.ground_truth is not None:
        out["psnr"] = written_psnr(result, problem)
    return out


def build_report(args: argparse.Namespace, cfg: RunConfig, engine: Engine, result: RunResult, problem: Problem) -> dict:
    """The JSON report: settings, why the run ended, its trace (at most ~5000 rows), and with ground truth the
    peak and the PSNR at the rule's pick.

    Which PSNR is which (with a ground truth): ``input_psnr`` is the damaged photo's; ``trace``'s, ``final``
    (the last step), ``peak`` (the best raw iterate), ``peak_average`` (the best running average) and ``stop``
    (the raw iterate and the running average at the rule's pick) are all the *network's output* at the working
    size, what the engine measures every step. None of them is the file written: for inpainting the written
    result keeps the photo's known pixels (:mod:`rwgui.core.compositing`), and a crop or downscale is put back
    at the photo's size. :func:`restore` adds ``written`` (:func:`written_entry`), whose ``psnr`` is the
    written result's, the number the studio shows as "Saved result PSNR" and the batch summary lists."""
    reports = result.reports
    k = max(1, math.ceil(len(reports) / 5000)) if len(reports) > 5000 else 1
    trace = []
    for r in reports[::k]:
        row: dict[str, Any] = {
            "iteration": r.iteration,
            "loss": _finite(r.loss),
            "loss_terms": {n: _finite(v) for n, v in r.loss_terms.items()},
        }
        if r.psnr is not None:
            row["psnr"], row["psnr_average"] = _finite(r.psnr), _finite(r.psnr_average)
        if r.signal is not None:
            row["signal"] = _finite(r.signal)
        trace.append(row)
    out: dict[str, Any] = {
        "task": args.task,
        "config": cfg.to_dict(),
        "device": engine.device_name,
        "seed": cfg.seed,
        "iterations_run": engine.iteration,
        "stop_reason": result.stop_reason,
        **({"message": result.message} if result.message else {}),
        "seconds_per_iteration": result.seconds_per_iteration,
        "loss_prior": cfg.loss_prior,
        **({"noise_sigma": _finite(problem.noise_sigma)} if problem.noise_sigma is not None else {}),
        **(
            {"feature_distance": {"first": trace[0]["loss"], "last": trace[-1]["loss"]}}
            if problem.task == Task.PREIMAGE and trace
            else {}
        ),
        "trace": trace,
    }
    stop: dict[str, Any] = {"rule": cfg.stop, "iteration": engine.pick_iteration}
    if problem.ground_truth is not None and reports:
        gt = tensor_to_image(problem.ground_truth)
        out["input_psnr"] = _finite(problem.input_psnr())
        out["final"] = {"psnr": _finite(reports[-1].psnr), "psnr_average": _finite(reports[-1].psnr_average)}
        if engine.peak is not None:
            out["peak"] = {"iteration": engine.peak[0], "psnr": _finite(engine.peak[1])}
        best_avg = max(reports, key=lambda r: r.psnr_average or -1.0)
        out["peak_average"] = {"iteration": best_avg.iteration, "psnr": _finite(best_avg.psnr_average)}
        stop["psnr"] = _finite(psnr(engine.image(Iterate.PICK), gt))
        stop["psnr_average"] = _finite(psnr(engine.image(Iterate.PICK_AVERAGE), gt))
    out["stop"] = stop
    return out


def _working_options(args: argparse.Namespace) -> dict[str, Any]:
    """The working-size flags, coerced against their specs (defaults where not given)."""
    out = {}
    for p in WORKING_PARAMS:
        value = getattr(args, _dest("", p.name), None)
        out[p.name] = p.default if value is None else p.coerce(value)
    return out


def fit_to_memory(args: argparse.Namespace, problem: Problem, cfg: RunConfig) -> tuple[Working, WorkingPlan]:
    """Plan the run against the memory budget and pick the working size --working-size asks for.

    A refusal names the flag values that would work, so the one-line error says what to type next.
    """
    opts = _working_options(args)
    budget: int | str = int(opts["memory_budget"] * 2**20) if opts["memory_budget"] > 0 else "auto"
    plan = plan_for_problem(problem, cfg, budget, opts["crop_margin"], opts["tile_overlap"])
    try:
        return choose_working(plan, opts["working_size"]), plan
    except OutOfMemoryError as exc:
        offers = (
            (WorkingMode.CROP, plan.crop_box),
            (WorkingMode.TILES, plan.tiles),
            (WorkingMode.DOWNSCALE, plan.downscale_size),
        )
        ways = [m for m, offer in offers if offer is not None]
        if not ways:
            raise
        hint = " or ".join(f"--working-size {m}" for m in ([*ways, WorkingMode.AUTO] if len(ways) == 2 else ways))
        raise type(exc)(f"{exc}; run again with {hint}") from None


def fit_to_time(
    args: argparse.Namespace, problem: Problem, cfg: RunConfig, working: Working, plan: WorkingPlan
) -> TimePlan | None:
    """``--time-budget`` or ``--preview``: the working size and iterations that end in about that time
    (:mod:`rwgui.core.estimate`), within what fits in memory; None when neither was asked."""
    if not args.time_budget and not args.preview:
        return None
    if args.time_budget is not None and args.time_budget <= 0:
        raise ConfigError(f"--time-budget must be a positive number of minutes; got {args.time_budget}")
    max_side = None
    if working.mode != WorkingMode.FULL and problem.task in FIXED_SIZE:  # the plan keeps the photo's size: it won't fit
        raise ConfigError(
            f"{plan.sentence}; a time budget keeps the {problem.task} task at the photo's size "
            f"({FIXED_SIZE[problem.task]}): free memory or give a smaller photo"
        )
    if working.mode != WorkingMode.FULL:  # memory allows less than the whole photo: at most the downscale that fits
        if plan.downscale_size is None:
            raise ConfigError(
                f"{plan.sentence}; a time budget needs a downscaled working size that fits, and none does"
            )
        max_side = max(plan.downscale_size)
    if args.preview:
        return plan_preview(problem, cfg)
    return plan_time_budget(problem, cfg, 60.0 * args.time_budget, max_side=max_side)


def print_estimate(args: argparse.Namespace) -> int:
    """``--estimate``: seconds per step, the total time and the memory on stdout, three lines; nothing runs
    and nothing is written (so no destination is checked). With ``--time-budget`` or ``--preview`` the estimate
    is for the working size and iterations they choose, and a fourth line says what was reduced."""
    if is_batch(args):
        raise ConfigError("--estimate takes one photo")
    problem, _photo = load_problem(args)
    hint = hole_fraction(problem.mask[0, 0].numpy()) if problem.mask is not None else None
    cfg = make_config(args, hint)
    working, plan = fit_to_memory(args, problem, cfg)
    timed = fit_to_time(args, problem, cfg, working, plan)
    if timed is not None:
        working, cfg = timed.working, timed.config(cfg)
    est = estimate_run(problem, cfg, working)
    lines = est.lines() + ([f"time budget: {timed.message}"] if timed is not None else [])
    print("\n".join(lines))
    return 0


def _write_result(path: str, img: np.ndarray, photo: imageio.Image) -> None:
    """Write like the photo (depth, resized alpha): the same helper as the studio's Save result."""
    imageio.write_result(path, img, photo.meta, photo.alpha)


def check_destinations(args: argparse.Namespace) -> str:
    """Check every file the run will write before anything costly happens, and return the output path.

    A run can take hours; a folder that does not exist, a read-only one or an unknown format found only when
    the result is saved loses all of it. So: the output (-o, or INPUT_restored.png) has a known format, a folder
    that takes new files and is not the input photo unless --overwrite; the report and the saved settings have
    folders that take new files and replace neither the input nor the output. Each failure is an
    OutputPathError (one line, exit 2). Only paths are looked at: no photo is decoded, no engine is built.
    """
    out_path = args.output or str(Path(args.input).with_name(default_output_name(args.input)))
    check_output_path(out_path, args.input, args.overwrite)
    others = [(args.report, "--report", "the report"), (args.save_config, "--save-config", "the settings")]
    given = [(path, flag, what) for path, flag, what in others if path]
    for path, flag, what in given:
        for taken, name in ((args.input, "the input photo"), (out_path, "the output (-o)")):
            if same_file(path, taken):
                raise OutputPathError(f"{flag} '{path}' is {name}; give {what} a name of its own")
        check_writable(path, what)
    if len(given) == 2 and same_file(given[0][0], given[1][0]):
        raise OutputPathError(f"--report and --save-config both name '{given[0][0]}'; give each its own file")
    return out_path


def run(argv: Sequence[str] | None = None) -> int:
    """One restoration, or a batch when several photos or a folder are given (:mod:`rwgui.batch`). One photo:
    every check first (destinations, then the photo, mask, ground truth and settings), then :func:`restore`.
    Returns the exit status: 0 when the run ended as asked, 130 when Ctrl+C stopped it (the result so far is
    written); user errors raise RwguiError (exit 2 in main)."""
    if "--presets" in (sys.argv[1:] if argv is None else list(argv)):  # needs no TASK or INPUT
        print(presets_table())
        return 0
    args = build_parser().parse_args(argv)
    if args.retune:
        from .core import autotune

        autotune.forget()
    if args.estimate:
        return print_estimate(args)
    if is_batch(args):
        return run_batch(args)
    return _fail(restore(args, check_destinations(args)).result)


@dataclass
class Outcome:
    """How one photo's restoration ended: what the batch summary lists, and the engine's result, which
    :func:`_fail` turns into an exit status or the error that ended the run."""

    output: str
    written: bool
    iterations: int
    stop_iteration: int | None
    stop_reason: str
    message: str | None
    result: RunResult

    @classmethod
    def of(cls, out_path: str, engine: Engine, result: RunResult, written: bool) -> Outcome:
        return cls(
            out_path, written, engine.iteration, engine.pick_iteration, str(result.stop_reason), result.message, result
        )


def restore(args: argparse.Namespace, out_path: str, control: RunControl | None = None) -> Outcome:
    """Restore ``args.input`` (one photo, with ``args.mask`` and ``args.ground_truth``) into ``out_path``, already
    checked, and write ``args.report`` if given: the whole single-photo path after its checks, shared by the
    one-photo command and every photo of a batch so that both restore alike. Errors before the loop raise.
    ``control`` lets a caller on another thread (the studio's Lab on a folder) stop the run, as Ctrl+C does."""
    started = time.monotonic()  # a time budget counts from here: loading and the short timing are part of it
    problem, photo = load_problem(args)
    if problem.noise_sigma is not None and not args.quiet:
        print(f"rwgui-restore: {NoiseEstimate(problem.noise_sigma).describe()}", file=sys.stderr)
    hint = hole_fraction(problem.mask[0, 0].numpy()) if problem.mask is not None else None
    cfg = make_config(args, hint)
    note = prior_note(args, cfg)
    if note and not args.quiet:
        print(f"rwgui-restore: {note}", file=sys.stderr)
    if args.save_config:
        try:
            cfg.save(args.save_config)
        except OSError as exc:
            raise OutputPathError(f"cannot write the settings to '{args.save_config}': {exc.strerror or exc}") from None
    working, plan = fit_to_memory(args, problem, cfg)
    timed = fit_to_time(args, problem, cfg, working, plan)
    if timed is not None:
        working, cfg = timed.working, timed.config(cfg)
        print(f"rwgui-restore: {timed.message}", file=sys.stderr)
    full_problem, problem = problem, working_problem(problem, working)
    if working.mode != WorkingMode.FULL and timed is None:
        how = {WorkingMode.CROP: "pasted back into the full photo", WorkingMode.TILES: "blended at full size"}.get(
            working.mode,
            "upscaled into the holes of the full photo" if working.writes_full_size else "written at that size",
        )
        print(
            f"rwgui-restore: {plan.sentence}; working at {working.describe()} (the result is {how})",
            file=sys.stderr,
        )
    if working.mode == WorkingMode.TILES:
        return _restore_tiles(args, cfg, problem, photo, working, plan, out_path, control)
    engine = Engine(problem, cfg)
    progress = Progress(cfg.iterations, not args.quiet)
    control = control if control is not None else RunControl()
    if timed is not None:  # the wall-clock cap: a machine that slows down mid-run still ends on time
        control.set_time_limit(timed.seconds - (time.monotonic() - started))
    with _ctrl_c_stops(control):
        result = engine.run(on_report=progress.update, control=control)
    if result.reports:
        progress.update(result.reports[-1], final=True)
    if engine.iteration == 0:  # out of memory (or an error, or Ctrl+C) at the first step: nothing to write
        if result.stop_reason is StopReason.USER:
            print(f"rwgui-restore: stopped before the first step; nothing written to {out_path}", file=sys.stderr)
        return Outcome.of(out_path, engine, result, written=False)
    fetch = engine.request_image(RESULT_ITERATES[args.result])
    restored = fetch.array()
    mask = None if full_problem.mask is None else full_problem.mask[0, 0].numpy()
    seam = result_seam(cfg) if mask is not None else None  # inpainting: known pixels kept (compositing.py)
    restored = to_full(restored, working, photo.pixels, mask, seam)
    _write_result(out_path, restored, photo)
    written = describe_result(seam) if mask is not None else None
    if args.report:
        report = build_report(args, cfg, engine, result, problem)
        report["working_size"] = {**working.to_dict(), "needed_mb": plan.needed_mb, "budget_mb": plan.budget_mb}
        if timed is not None:
            report["time_budget"] = {
                "seconds": timed.seconds,
                "preview": bool(args.preview),
                "iterations": timed.iterations,
                "estimated_seconds_per_step": round(timed.step_seconds, 4),
                "reduced": timed.reduced,
                "message": timed.message,
                "wall_seconds": round(time.monotonic() - started, 2),
            }
        report["written"] = written_entry(
            restored, full_problem, RESULT_ITERATES[args.result], fetch.iteration, seam, written
        )
        _write_json(args.report, report)
    if not args.quiet:
        print(
            f"wrote {out_path} ({engine.iteration} iterations, stop: {result.stop_reason}, "
            f"pick: {engine.pick_iteration}{'' if written is None else '; ' + written})",
            file=sys.stderr,
        )
    return Outcome.of(out_path, engine, result, written=True)


def _restore_tiles(
    args: argparse.Namespace,
    cfg: RunConfig,
    problem: Problem,
    photo: imageio.Image,
    working: Working,
    plan: WorkingPlan,
    out_path: str,
    control: RunControl | None = None,
) -> Outcome:
    """``--working-size tiles``: each tile its own run of the engine's loop (:mod:`rwgui.core.tiles`), one
    progress bar for the whole photo, the blend written at full size (also after Ctrl+C: tiles not yet run
    keep the naive answer)."""
    from .core.tiles import TileEvent, run_tiled

    assert working.tiles is not None
    grid, budget = working.tiles, cfg.iterations
    progress = Progress(budget * grid.count, not args.quiet)
    last, where = None, ""

    def on_event(ev: TileEvent) -> None:
        nonlocal last, where
        if ev.event.report is not None:
            last = replace(ev.event.report, iteration=ev.index * budget + ev.event.report.iteration)
            where = f" tile {ev.index + 1}/{ev.count}"
            progress.update(last, where=where)

    control = control if control is not None else RunControl()
    with _ctrl_c_stops(control):
        tiled = run_tiled(problem, cfg, grid, control, on_event, RESULT_ITERATES[args.result])
    result = tiled.run
    assert result is not None
    if last is not None:
        progress.update(last, final=True, where=where)
    written = any(r.iterations_run > 0 for r in tiled.results)
    if written:
        _write_result(out_path, tiled.image, photo)
    if args.report:
        report: dict[str, Any] = {
            "task": args.task,
            "config": cfg.to_dict(),
            "seed": cfg.seed,
            "iterations_run": result.iterations_run,
            "stop_reason": result.stop_reason,
            **({"message": result.message} if result.message else {}),
            "working_size": {**working.to_dict(), "needed_mb": plan.needed_mb, "budget_mb": plan.budget_mb},
            "tiles": [
                {
                    "box": list(box),
                    "iterations_run": r.iterations_run,
                    "stop_reason": r.stop_reason,
                    "pick_iteration": r.pick_iteration,
                    "seconds": round(r.seconds, 3),
                }
                for box, r in zip(grid.boxes, tiled.results)
            ],
            **({} if tiled.psnr is None else {"written": {"psnr": _finite(tiled.psnr)}}),
        }
        _write_json(args.report, report)
    if not args.quiet and written:
        print(f"wrote {out_path} ({grid.describe()}, stop: {result.stop_reason})", file=sys.stderr)
    return Outcome(
        out_path, written, result.iterations_run, None, str(result.stop_reason), result.message or None, result
    )


#: The exit status after Ctrl+C, as shells report a process ended by SIGINT (128 + 2), so scripts can tell a
#: stopped run (result so far written) from a finished one.
EXIT_INTERRUPTED = 130


def _fail(result: RunResult) -> int:
    """0 for a run that ended as asked (budget, rule), 130 for one Ctrl+C stopped; otherwise raise what ended
    it, after the caller wrote what the run found: out of memory and divergence as one-line errors (exit 2),
    anything else as itself, with its traceback."""
    if result.stop_reason is StopReason.USER:
        return EXIT_INTERRUPTED
    if result.stop_reason is StopReason.ERROR and result.error is not None:
        raise result.error
    if result.stop_reason is StopReason.OUT_OF_MEMORY:
        raise OutOfMemoryError(result.message)
    if result.stop_reason is StopReason.DIVERGED:
        raise RwguiError(result.message)
    return 0


@contextlib.contextmanager
def _ctrl_c_stops(control: RunControl) -> Iterator[None]:
    """Ctrl+C asks the loop to stop after its step (StopReason.USER), like Stop in the studio, so the run so far
    is written; a second Ctrl+C interrupts at once. Only the main thread may set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # installed from C: restore Python's default
        previous = signal.default_int_handler

    def on_ctrl_c(signum: int, frame: Any) -> None:
        control.stop()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_json(path: str, data: dict) -> None:
    try:
        with atomic_file(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=1) + "\n")
    except OSError as exc:
        raise RwguiError(f"cannot write the report {path}: {exc.strerror}") from None


def main(argv: Iterable[str] | None = None) -> None:
    try:
        code = run(list(argv) if argv is not None else None)
        sys.stdout.flush()  # a closed pipe fails here, inside the handler below, not in the exit's own flush
    except RwguiError as exc:
        print(f"rwgui-restore: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:  # Ctrl+C before the run started, or a second one during it: no result to write
        print("rwgui-restore: interrupted (Ctrl+C)", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader closed stdout early (`--estimate | head -1`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
