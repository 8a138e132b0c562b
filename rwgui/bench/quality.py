"""Does rwgui reproduce the paper? ``python -m rwgui.bench.quality``.

For each task and photo crop: PSNR of the naive answer (the noisy photo, the masked photo, bicubic
upsampling), the raw output's peak, the final raw output, and the running average (peak and final).
``--priors skip,deep-decoder`` runs each task with each named prior in turn: the task's own preset for that
prior where there is one (``denoise-dd`` for the Deep Decoder on denoising, with its fixed input code), else
the task's preset with the prior at its own defaults. ``--sigma 25,50`` sets the noise of denoising and real
noise (one row per level).

Every run is the whole budget (``--iterations``; 0: each preset's own) with es-wmv watching but not stopping,
so one run gives both answers a person can get: *with automatic stopping*, the running average at the
iteration es-wmv would have stopped at (its pick when it fired: the CLI's and the studio's result), and
*without*, the running average at the end of the fixed budget. A rule that never fired within the budget
picks at the end, as the run would have.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..core.config import PRESETS, RunConfig, preset
from ..core.engine import Engine, StepReport
from ..core.problems import Problem, add_gaussian_noise
from ..core.problems import make_problem as make_problem_for
from ..core.stopping import build_rule
from .common import crop, make_problem, photos, table, write_json

TASKS = {
    "denoise": "denoise (σ={sigma:g})",
    "inpaint-pixels": "inpaint (50 % pixels missing)",
    "sr-x4": "super-resolution x4",
    "jpeg": "JPEG artefacts (quality 10)",
    "deblur": "deblur (Gaussian σ=2)",
    "flash": "flash / no-flash (synthetic pair)",
    "real-noise": "real noise (σ={sigma:g}, estimated)",
}
#: The tasks whose damage is Gaussian noise of ``--sigma``.
NOISY = ("denoise", "real-noise")
#: The rule whose pick is the "with automatic stopping" answer: the denoising presets' rule.
RULE = "es-wmv"
HEADERS = [
    "task",
    "photo",
    "preset, prior",
    "iterations",
    "input / baseline",
    "peak raw @it",
    "final raw",
    "peak average @it",
    f"{RULE} stop @it (pick)",
    f"average at {RULE}'s pick",
    "final average (fixed budget)",
]


def task_problem(task: str, img: np.ndarray, sigma: float) -> Problem:
    """The synthetic damage of ``task`` (a preset name) on ``img``; ``sigma`` (of 255) for the noisy tasks."""
    if task in NOISY:
        return make_problem_for(task, add_gaussian_noise(img, sigma / 255, 0), ground_truth=img)
    return make_problem(task, img)


def preset_for(task: str, prior: str) -> str:
    """The preset that runs ``prior`` on ``task``'s task: the task's own when it already uses it (or no prior
    is named), else another preset of the same task made for that prior (``denoise-dd``), else the task's."""
    own = preset(task)
    if not prior or prior == own.prior:
        return task
    for name, values in PRESETS.items():
        if values.get("task") == own.task and values.get("prior") == prior:
            return name
    return task


def run_config(task: str, prior: str, iterations: int, lr: float | None, reg_noise_std: float | None) -> RunConfig:
    """The settings of one run: the preset for (task, prior), the whole budget with ``RULE`` only watching."""
    name = preset_for(task, prior)
    base = preset(name)
    over: dict[str, Any] = {"auto_stop": False}
    if iterations > 0:
        over["iterations"] = iterations
    if base.stop != RULE:
        over.update(stop=RULE, stop_params={})
    if lr:
        over["lr"] = lr
    if reg_noise_std is not None:
        over["reg_noise_std"] = reg_noise_std
    if prior and prior != base.prior:  # no preset of its own: its defaults, the preset's knobs are for its prior
        over.update(prior=prior, prior_params={})
    return preset(name, **over)


def rule_pick(cfg: RunConfig, reports: list[StepReport]) -> tuple[int | None, int | None]:
    """(the iteration the rule would have stopped the run at, its pick then), replayed from the run's signals
    with a fresh rule of the same settings; (None, the last pick) when it never fired within the budget."""
    rule = build_rule(cfg.stop, dict(cfg.stop_params))
    pick = None
    for rep in reports:
        verdict = rule.decide(rep.iteration, rep.signal)
        pick = verdict.pick_iteration
        if verdict.stop:
            return rep.iteration, pick
    return None, pick


def measure(task: str, name: str, img: np.ndarray, sigma: float, cfg: RunConfig) -> dict[str, Any]:
    """One run of ``cfg`` on ``task``'s damage of ``img``: the PSNRs the table reports."""
    problem = task_problem(task, img, sigma)
    reps = Engine(problem, cfg).run().reports
    by_it = {r.iteration: r for r in reps}
    peak = max(reps, key=lambda r: r.psnr or -np.inf)
    peak_avg = max(reps, key=lambda r: r.psnr_average or -np.inf)
    stop_it, pick_it = rule_pick(cfg, reps)
    picked = by_it.get(pick_it) if pick_it is not None else None
    return {
        "task": task,
        "sigma": sigma if task in NOISY else None,
        "image": name,
        "preset": cfg.preset,
        "prior": cfg.prior,
        "reg_noise_std": cfg.reg_noise_std,
        "iterations": cfg.iterations,
        "input": problem.input_psnr(),
        "peak": peak.psnr,
        "peak_iteration": peak.iteration,
        "final": reps[-1].psnr,
        "peak_average": peak_avg.psnr_average,
        "peak_average_iteration": peak_avg.iteration,
        "final_average": reps[-1].psnr_average,
        "rule": cfg.stop,
        "rule_stop_iteration": stop_it,
        "rule_pick_iteration": pick_it,
        # no pick at all (the window never filled): the run's answer is the last iterate's average
        "rule_pick_average": (picked if picked is not None else reps[-1]).psnr_average,
        "seconds_per_iteration": sum(r.seconds for r in reps) / len(reps),
    }


def row(task: str, m: dict[str, Any]) -> list[object]:
    stop = "never" if m["rule_stop_iteration"] is None else str(m["rule_stop_iteration"])
    return [
        TASKS[task].format(sigma=m["sigma"] or 0),
        m["image"],
        f"{m['preset']}, {m['prior']}" + (" (no jitter)" if m["reg_noise_std"] == 0 else ""),
        m["iterations"],
        m["input"],
        f"{m['peak']:.2f} @{m['peak_iteration']}",
        m["final"],
        f"{m['peak_average']:.2f} @{m['peak_average_iteration']}",
        f"{stop} ({'no pick' if m['rule_pick_iteration'] is None else m['rule_pick_iteration']})",
        m["rule_pick_average"],
        m["final_average"],
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=1500, help="the budget of every run (0: each preset's own)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--images", default="F16,astronaut")
    ap.add_argument("--sigma", default="25", help="noise levels (of 255) for denoise and real-noise, e.g. 25,50")
    ap.add_argument("--lr", type=float, help="override the presets' learning rate")
    ap.add_argument("--reg-noise-std", type=float, help="override the presets' input jitter (0: none)")
    ap.add_argument("--priors", default="", help="comma-separated priors to compare (default: the preset's)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    imgs = photos()
    sigmas = [float(v) for v in args.sigma.split(",")]
    rows, raw = [], []
    runs = [
        (task, sigma, name, prior)
        for task in args.tasks.split(",")
        for sigma in (sigmas if task in NOISY else [0.0])
        for name in args.images.split(",")
        for prior in (args.priors.split(",") if args.priors else [""])
    ]
    for task, sigma, name, prior in runs:
        cfg = run_config(task, prior, args.iterations, args.lr, args.reg_noise_std)
        m = measure(task, name, crop(imgs[name], args.size), sigma, cfg)
        r = row(task, m)
        print(" ".join(str(v) for v in r), flush=True)
        rows.append(r)
        raw.append(m)
    print()
    print(table(HEADERS, rows))
    write_json(args.json, raw)


if __name__ == "__main__":
    main()
