"""``rwgui-restore``: the engine, headless, with a progress line and a JSON report.

Every flag beyond the fixed ones is generated from the registries' parameter specs: prior parameters
by name (``--num-scales``), stopping-rule parameters as ``--stop-NAME``, loss-prior parameters as
``--loss-prior-NAME``, run settings by name (``--lr``), what to do when the run does not fit in memory
(``--working-size``, ``--memory-budget``, ``--crop-margin``, from :mod:`rwgui.core.working_size`).
A user error prints one line and exits 2.

``--working-size downscale`` writes denoising and super-resolution results at the working size (upscaling
would add blur, not detail) and inpainting results at full size (the holes of the full photo are filled from
the upscaled result); ``crop`` always writes the full photo with the restored crop pasted in.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .core import imageio
from .core.config import PRESETS, RUN_PARAMS, SPEED_PARAMS, TASKS, RunConfig, SpeedConfig, preset, preset_name
from .core.errors import ConfigError, OutOfMemoryError, RwguiError
from .core.metrics import psnr
from .core.params import Param, Registry
from .core.problems import Problem, denoise_problem, hole_fraction, inpaint_problem, sr_problem, to_array
from .core.working_size import (
    WORKING_PARAMS,
    Working,
    WorkingPlan,
    choose_working,
    plan_for_problem,
    to_full,
    working_problem,
)

FIXED = ("iterations", "seed", "device")  # run params with their own hand-written flags below


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
    elif p.kind == "choice":
        kw["choices"] = p.choices
    else:
        kw["metavar"] = {"int": "N", "float": "X", "ints": "N[,N...]"}.get(p.kind, "VALUE")
    group.add_argument(flag, **kw)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="rwgui-restore",
        description="Restore a photo with Deep Image Prior (an untrained network fitted to this one photo).",
    )
    ap.add_argument("task", choices=TASKS, help="denoise, sr (super-resolution) or inpaint")
    ap.add_argument("input", help="the damaged photo (PNG, JPEG, TIFF, BMP, WebP; 8 or 16 bit)")
    ap.add_argument("-o", "--output", help="where to write the result (default: INPUT_restored.png)")
    ap.add_argument("--mask", help="inpainting mask PNG: 255 (white) = known pixel, 0 = hole")
    ap.add_argument("--factor", type=int, choices=(2, 4, 8), default=4, help="super-resolution factor")
    ap.add_argument("--ground-truth", help="the undamaged photo, to report PSNR (benchmarks, synthetic damage)")
    ap.add_argument("--config", help="a settings JSON (from the GUI's Export settings or --save-config)")
    ap.add_argument("--save-config", help="write the run's full settings as JSON here")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="start from this preset instead of the task's")
    ap.add_argument("--iterations", type=int, help="optimisation steps (default: the preset's)")
    ap.add_argument("--seed", type=int, help="random seed (default 0)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="compute device (default auto)")
    ap.add_argument("--prior", help="generator architecture (prior variant)")
    ap.add_argument("--stop", help="stopping rule: fixed, es-wmv, es-emv, sure")
    ap.add_argument("--no-auto-stop", action="store_true", help="let the rule only mark its pick, run the budget")
    ap.add_argument("--loss-prior", help="random-weights loss prior (none, cdc, inn, ...)")
    ap.add_argument(
        "--result",
        choices=("average", "raw"),
        default="average",
        help="write the running average at the rule's pick (default) or the raw iterate there",
    )
    ap.add_argument("--report", help="write a JSON report (settings, trace, peak, stop) here")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    seen: set[str] = set()
    speed = ap.add_argument_group("speed (each speed-up can be turned off)")
    for p in SPEED_PARAMS:
        _add_param_flag(speed, p, "", seen)
    run = ap.add_argument_group("run settings")
    for p in RUN_PARAMS:
        if p.name not in FIXED:
            _add_param_flag(run, p, "", seen)
    fit = ap.add_argument_group("working size (when the run does not fit in memory)")
    for p in WORKING_PARAMS:
        _add_param_flag(fit, p, "", seen)
    for _, reg, prefix in _registries():
        group = ap.add_argument_group(f"{reg.kind} parameters ({', '.join(reg.names())})")
        for variant in reg:
            for p in variant.params:
                _add_param_flag(group, p, prefix, seen)
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


def make_config(args: argparse.Namespace, problem_hint: float | None) -> RunConfig:
    """Preset (or --config file) overlaid with the flags the person gave."""
    if args.config:
        cfg = RunConfig.load(args.config)
        if cfg.task != args.task:
            raise ConfigError(f"the settings file is for task {cfg.task!r} but the command asks for {args.task!r}")
        cfg = cfg.replace(factor=args.factor) if args.task == "sr" and args.factor != cfg.factor else cfg
    else:
        name = args.preset or preset_name(args.task, args.factor, problem_hint)
        cfg = preset(name, factor=args.factor) if args.task == "sr" else preset(name)
    changes: dict[str, Any] = {}
    for p in RUN_PARAMS:
        value = getattr(args, p.name if p.name in FIXED else _dest("", p.name), None)
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
    speed = {
        p.name: getattr(args, _dest("", p.name)) for p in SPEED_PARAMS if getattr(args, _dest("", p.name)) is not None
    }
    if speed:
        changes["speed"] = SpeedConfig(**{**cfg.speed.__dict__, **speed})
    return cfg.replace(**changes).validated()


def load_problem(args: argparse.Namespace) -> tuple[Problem, imageio.Image]:
    photo = imageio.read(args.input)
    gt = imageio.read(args.ground_truth).pixels if args.ground_truth else None
    if gt is not None and gt.shape[2] != photo.pixels.shape[2]:
        gt = gt.mean(axis=2, keepdims=True) if gt.shape[2] == 3 else np.repeat(gt, 3, axis=2)
    if args.task == "denoise":
        return denoise_problem(photo.pixels, gt), photo
    if args.task == "sr":
        return sr_problem(photo.pixels, args.factor, gt), photo
    if not args.mask:
        raise ConfigError("inpainting needs --mask PATH (a PNG: 255 = known pixel, 0 = hole)")
    mask = imageio.read_mask(args.mask, photo.pixels.shape[:2])
    return inpaint_problem(photo.pixels, mask, gt), photo


class Progress:
    """Progress on stderr: a self-rewriting bar at most 10x a second on a terminal, else a line per 10 %."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.tty = total, enabled, sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._every = max(1, total // 10)

    def update(self, rep: Any, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty and not final and now - self._last < 0.1:
            return
        if not self.tty and not final and rep.iteration % self._every:
            return
        self._last = now
        rate = rep.iteration / max(now - self.t0, 1e-9)
        eta = (self.total - rep.iteration) / max(rate, 1e-9)
        filled = int(24 * rep.iteration / max(self.total, 1))
        bar = "#" * filled + "-" * (24 - filled)
        extra = f" psnr {rep.psnr:6.2f} avg {rep.psnr_average:6.2f}" if rep.psnr is not None else ""
        line = f"[{bar}] {rep.iteration}/{self.total} loss {rep.loss:.5f}{extra} {rate:5.2f} it/s eta {eta:5.0f}s"
        sys.stderr.write(("\r" + line + " " + ("\n" if final else "")) if self.tty else line + "\n")
        sys.stderr.flush()


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 6)


def build_report(args: argparse.Namespace, cfg: RunConfig, engine: Any, result: Any, problem: Problem) -> dict:
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
        "seconds_per_iteration": result.seconds_per_iteration,
        "loss_prior": cfg.loss_prior,
        "trace": trace,
    }
    stop: dict[str, Any] = {"rule": cfg.stop, "iteration": engine.pick_iteration}
    if problem.ground_truth is not None and reports:
        gt = to_array(problem.ground_truth)
        out["input_psnr"] = _finite(problem.input_psnr())
        out["final"] = {"psnr": _finite(reports[-1].psnr), "psnr_average": _finite(reports[-1].psnr_average)}
        if engine.peak is not None:
            out["peak"] = {"iteration": engine.peak[0], "psnr": _finite(engine.peak[1])}
        best_avg = max(reports, key=lambda r: r.psnr_average or -1.0)
        out["peak_average"] = {"iteration": best_avg.iteration, "psnr": _finite(best_avg.psnr_average)}
        stop["psnr"] = _finite(psnr(engine.image("pick"), gt))
        stop["psnr_average"] = _finite(psnr(engine.image("pick_average"), gt))
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
    plan = plan_for_problem(problem, cfg, budget, opts["crop_margin"])
    try:
        return choose_working(plan, opts["working_size"]), plan
    except OutOfMemoryError as exc:
        ways = [
            m for m, ok in (("crop", plan.crop_box is not None), ("downscale", plan.downscale_size is not None)) if ok
        ]
        if not ways:
            raise
        hint = " or ".join(f"--working-size {m}" for m in ([*ways, "auto"] if len(ways) == 2 else ways))
        raise type(exc)(f"{exc}; run again with {hint}") from None


def _write_result(path: str, img: np.ndarray, photo: imageio.Image, size: tuple[int, int]) -> None:
    alpha = photo.alpha
    if alpha is not None and alpha.shape != size:
        alpha = cv2.resize(alpha, (size[1], size[0]), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    imageio.write_like(path, img, photo.meta, alpha=alpha)


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .core.engine import Engine, RunResult

    problem, photo = load_problem(args)
    hint = hole_fraction(problem.mask[0, 0].numpy()) if problem.mask is not None else None
    cfg = make_config(args, hint)
    out_path = args.output or str(Path(args.input).with_name(Path(args.input).stem + "_restored.png"))
    if Path(out_path).suffix.lower().lstrip(".") not in {e.lstrip(".") for e in imageio.WRITE_EXTENSIONS}:
        raise ConfigError(f"cannot write {out_path}: use one of {', '.join(imageio.WRITE_EXTENSIONS)}")
    if args.save_config:
        cfg.save(args.save_config)
    working, plan = fit_to_memory(args, problem, cfg)
    full_problem, problem = problem, working_problem(problem, working)
    if working.mode != "full":
        written = {"crop": "pasted back into the full photo"}.get(
            working.mode,
            "upscaled into the holes of the full photo" if working.writes_full_size else "written at that size",
        )
        print(
            f"rwgui-restore: {plan.sentence}; working at {working.describe()} (the result is {written})",
            file=sys.stderr,
        )
    engine = Engine(problem, cfg)
    progress = Progress(cfg.iterations, not args.quiet)
    seen: list[Any] = []

    def on_report(rep: Any) -> None:
        seen.append(rep)
        progress.update(rep)

    t0 = time.perf_counter()
    try:
        result = engine.run(on_report=on_report)
    except KeyboardInterrupt:  # Ctrl+C: keep what the run found so far, like Stop in the GUI
        last = engine.flush()  # the step whose numbers were still on their way (overlap)
        if last is not None:
            seen.append(last)
        result = RunResult(
            engine.iteration,
            "interrupted",
            engine.pick_iteration,
            *(engine.peak or (None, None)),
            (time.perf_counter() - t0) / max(len(seen), 1),
            seen,
        )
    if result.reports:
        progress.update(result.reports[-1], final=True)
    restored = engine.image("pick_average" if args.result == "average" else "pick")
    mask = None if full_problem.mask is None else full_problem.mask[0, 0].numpy()
    restored = to_full(restored, working, photo.pixels, mask)
    _write_result(out_path, restored, photo, restored.shape[:2])
    if args.report:
        report = build_report(args, cfg, engine, result, problem)
        report["working_size"] = {**working.to_dict(), "needed_mb": plan.needed_mb, "budget_mb": plan.budget_mb}
        _write_json(args.report, report)
    if not args.quiet:
        print(
            f"wrote {out_path} ({engine.iteration} iterations, stop: {result.stop_reason}, "
            f"pick: {engine.pick_iteration})",
            file=sys.stderr,
        )
    return 0


def _write_json(path: str, data: dict) -> None:
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RwguiError(f"cannot write the report {path}: {exc.strerror}") from None


def main(argv: Iterable[str] | None = None) -> None:
    try:
        code = run(list(argv) if argv is not None else None)
    except RwguiError as exc:
        print(f"rwgui-restore: error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
