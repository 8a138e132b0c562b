"""How close do the stopping rules land to the true peak? ``python -m rwgui.bench.stopping``.

One run per (task, photo[, noise level]) with the task's preset; every rule watches the same trajectory (rules
only observe, so this equals running each rule on its own with the same seed), and a rule's pick is frozen when
it would have stopped the run (auto stop). With ground truth we know the peak, so we can report the gap.

What is compared is the *result* a person gets: the running average at the rule's pick (the default result),
and for inpainting that average pasted into the photo's holes (the known pixels are the photo's own, so only the
holes count; a hard paste, which equals the written result wherever no seam applies). The oracle is the best
such result over the run; ``fixed`` is the result at the end of the budget. ``sure`` is left out: it needs the
photo as the network's input (another trajectory) and Gaussian noise, and no preset runs that way.

``--tasks`` picks presets (``denoise`` loops over ``--sigmas``; the others use the synthetic damage of
:func:`~rwgui.bench.common.make_problem`); ``--iterations`` caps each preset's own budget (0: the preset's).
``--from-json`` prints the tables of earlier runs (several files merge), so runs split over processes can be
reported together; ``--patience`` re-reads the saved signals with another patience, without running again.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import numpy as np
import torch

from ..core.config import PRESETS, SpeedConfig, preset
from ..core.engine import Engine, EventKind, RunEvent, drain
from ..core.metrics import psnr_t
from ..core.problems import Problem, add_gaussian_noise, denoise_problem
from ..core.stopping import Observation, build_rule
from ..core.vocabulary import Iterate, Task
from .common import crop, make_problem, photos, table, write_json

RULES = ("es-wmv", "es-emv")


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _gap(peak: float, pick: float | None) -> float:
    """Peak minus pick; a rule that picked nothing counts as missing the peak entirely."""
    return float("inf") if pick is None else peak - pick


def one_run(problem: Problem, name: str, iterations: int, seed: int = 0, threads: int = 0) -> dict[str, Any]:
    """One run of preset ``name`` for ``iterations`` steps, watched by every rule in ``RULES``.

    Per step it keeps the raw PSNR, the result's PSNR (see the module's docstring) and each rule's signal, so
    that a rule's pick under another patience can be read off later (:func:`repick`)."""
    # overlap off: every rule here reads the iterate of the report in hand; the engine's own rule stays out of
    # the way (fixed, no auto stop) so that the run is the whole budget and each rule watches it from outside
    cfg = preset(
        name,
        iterations=iterations,
        seed=seed,
        stop="fixed",
        auto_stop=False,
        speed=SpeedConfig(overlap="off", threads=threads),
    )
    eng = Engine(problem, cfg)
    rules = {n: build_rule(n) for n in RULES}
    stopped: dict[str, int | None] = dict.fromkeys(RULES, None)
    signals: dict[str, list[float | None]] = {n: [] for n in RULES}
    spent = dict.fromkeys(RULES, 0.0)
    raw: list[float] = []
    result: list[float] = []
    holes = None
    if problem.task == Task.INPAINT and problem.mask is not None:
        holes = (problem.mask < 0.5).float()

    def watch(event: RunEvent) -> None:
        rep = event.report
        if event.kind is not EventKind.STEP or rep is None or rep.psnr is None or rep.psnr_average is None:
            return
        raw.append(rep.psnr)
        if holes is None:
            result.append(rep.psnr_average)
        else:  # the average in the holes, the (noise-free) photo elsewhere
            gt = eng.gt
            assert gt is not None
            avg = eng.tensor(Iterate.AVERAGE)
            h = holes.to(avg.device)
            result.append(float(psnr_t(avg * h + gt * (1 - h), gt)))
        for n, rule in rules.items():
            t0 = time.perf_counter()
            v = rule.observe(Observation(rep.iteration, eng.tensor(Iterate.RAW), eng.y, rep.loss_terms["data"]))
            spent[n] += time.perf_counter() - t0
            signals[n].append(v.signal)
            if v.stop and stopped[n] is None:
                stopped[n] = rep.iteration

    run = drain(eng.steps(), watch)
    steps = len(result)
    return {
        "preset": name,
        "input_psnr": problem.input_psnr(),
        "iterations": steps,
        "raw": raw,
        "result": result,
        "signals": signals,
        "stopped_live": stopped,  # what the rules said during the run; ``repick`` with their patience agrees
        "overhead_ms": {n: 1000 * spent[n] / max(steps, 1) for n in RULES},
        "step_ms": 1000 * run.step_seconds / max(steps, 1),
    }


def repick(signal: list[float | None], patience: int, burn_in: int) -> tuple[int | None, int | None]:
    """(pick, stopped at) of a minimum rule from its saved signal: the same bookkeeping as
    :class:`~rwgui.core.stopping.MinimumRule` (a new pick on a strictly lower signal after ``burn_in``; stop
    once ``patience`` observations pass without one), 1-based iterations; stopped at is None when it never
    stopped within the run."""
    best, pick = math.inf, None
    for i, s in enumerate(signal, start=1):
        if s is not None and i > burn_in and s < best:
            best, pick = s, i
        if pick is not None and i - pick >= patience:
            return pick, i
    return pick, None


def summarise(r: dict[str, Any], patience: int | None = None) -> dict[str, Any]:
    """The oracle, the fixed budget's result and each rule's pick, result at the pick, gap and stop."""
    res = r["result"]
    peak_i = int(np.argmax(res))
    out: dict[str, Any] = {
        "peak": (peak_i + 1, res[peak_i]),
        "raw_peak": max(r["raw"]),
        "fixed": res[-1],
        "rules": {},
    }
    for n in RULES:
        defaults = build_rule(n)
        burn_in = int(getattr(defaults, "burn_in", 0))
        pat = patience if patience is not None else int(getattr(defaults, "patience", 1000))
        pick, stop = repick(r["signals"][n], pat, burn_in)
        value = res[pick - 1] if pick is not None else None
        out["rules"][n] = {
            "pick": pick,
            "result": value,
            "gap": _gap(res[peak_i], value),
            "stopped_at": stop,
            "saved": (r["iterations"] - stop) if stop is not None else 0,
        }
    return out


def _problems(
    tasks: list[str], sigmas: list[float], images: list[str], size: int
) -> list[tuple[str, str, float | None, Problem]]:
    imgs = photos()
    if images:
        imgs = {k: v for k, v in imgs.items() if k in images}
    out: list[tuple[str, str, float | None, Problem]] = []
    for task in tasks:
        for name, img in imgs.items():
            if img.ndim != 3 or img.shape[2] != 3:
                continue
            im = crop(img, size) if size else img
            if task == "denoise":
                for s in sigmas:
                    out.append((task, name, s, denoise_problem(add_gaussian_noise(im, s / 255.0, 0), im)))
            else:
                out.append((task, name, None, make_problem(task, im)))
    return out


def report(results: list[dict[str, Any]], patience: int | None = None) -> str:
    """The per-run table and the per-task summary, as Markdown."""
    rows: list[list[object]] = []
    by_task: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for r in results:
        s = summarise(r, patience)
        by_task.setdefault(r["task"], []).append((r, s))
        row: list[object] = [
            r["task"],
            r["image"],
            "" if r.get("sigma") is None else int(r["sigma"]),
            _f(r["input_psnr"]),
            r["iterations"],
            f"{s['peak'][1]:.2f} @{s['peak'][0]}",
            s["fixed"],
        ]
        for n in RULES:
            p = s["rules"][n]
            stop = f"@{p['stopped_at']}" if p["stopped_at"] else "no"
            row += [
                f"{_f(p['result'])} @{p['pick']}",
                p["gap"],
                p["result"] - s["fixed"] if p["result"] is not None else "n/a",
                stop,
            ]
        rows.append(row)
    headers = ["task", "photo", "σ", "input", "its", "peak @it", "fixed"]
    for n in RULES:
        headers += [f"{n} @pick", "gap", "− fixed", "stopped"]
    summary = []
    for task, runs in by_task.items():
        fixed_gaps = [s["peak"][1] - s["fixed"] for _, s in runs]
        summary.append([task, "fixed", f"{len(runs)}", statistics.median(fixed_gaps), max(fixed_gaps), 0.0, "0", "0"])
        for n in RULES:
            ps = [s["rules"][n] for _, s in runs]
            vs_fixed = [p["result"] - s["fixed"] for p, (_, s) in zip(ps, runs) if p["result"] is not None]
            saved = [p["saved"] for p in ps]
            summary.append(
                [
                    task,
                    n,
                    f"{len(runs)}",
                    statistics.median(p["gap"] for p in ps),
                    max(p["gap"] for p in ps),
                    statistics.median(vs_fixed) if vs_fixed else float("nan"),
                    f"{sum(p['stopped_at'] is not None for p in ps)}/{len(ps)}",
                    f"{statistics.median(saved):.0f} ({min(saved)}–{max(saved)})",
                ]
            )
    lines = [
        table(headers, rows),
        "",
        table(
            [
                "task",
                "rule",
                "runs",
                "median gap dB",
                "worst gap dB",
                "median − fixed dB",
                "stopped early",
                "its saved",
            ],
            summary,
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="denoise", help="comma-separated presets (default denoise)")
    ap.add_argument("--size", type=int, default=128, help="crop size (default 128; use 0 for full size on a GPU)")
    ap.add_argument("--iterations", type=int, default=0, help="cap on each preset's budget (0: the preset's own)")
    ap.add_argument("--sigmas", default="25,50", help="denoising noise levels, in 0-255 units")
    ap.add_argument("--images", default="", help="comma-separated subset of the photos")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per run (0: the engine's default)")
    ap.add_argument("--json", help="also write the raw results (per-step PSNR and signals) here")
    ap.add_argument("--from-json", help="comma-separated result files to report instead of running")
    ap.add_argument("--patience", type=int, help="re-read the picks with this patience (default: each rule's)")
    args = ap.parse_args(argv)
    if args.from_json:
        results = []
        for path in args.from_json.split(","):
            with open(path, encoding="utf-8") as f:
                results += json.load(f)
        print(report(results, args.patience))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown presets: {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    sigmas = [float(x) for x in args.sigmas.split(",")]
    images = [x for x in args.images.split(",") if x]
    results = []
    for task, name, sigma, problem in _problems(tasks, sigmas, images, args.size):
        budget = int(PRESETS[task].get("iterations", preset(task).iterations))
        its = min(budget, args.iterations) if args.iterations else budget
        r = one_run(problem, task, its, seed=0, threads=args.threads)
        r.update(task=task, image=name, sigma=sigma, budget=budget, size=args.size)
        results.append(r)
        write_json(args.json, results)  # after every run: a long benchmark interrupted keeps what it measured
        s = summarise(r, args.patience)
        picks = " ".join(f"{n} {_f(p['result'])}@{p['pick']} stop {p['stopped_at']}" for n, p in s["rules"].items())
        print(
            f"{task} {name}{'' if sigma is None else f' sigma={sigma:g}'}: peak {s['peak'][1]:.2f}@{s['peak'][0]} "
            f"fixed@{its} {s['fixed']:.2f} {picks} ({r['step_ms']:.0f} ms/step)",
            flush=True,
        )
    print()
    print(report(results, args.patience))


if __name__ == "__main__":
    main()
