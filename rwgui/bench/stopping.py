"""How close do the stopping rules land to the true peak? ``python -m rwgui.bench.stopping``.

One denoising run per (photo, noise level); every rule watches the same trajectory (rules only observe,
so this equals running each rule on its own with the same seed), and a rule's pick is frozen when it would
have stopped the run (auto stop). With ground truth we know the peak, so we can report the gap.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ..core.config import SpeedConfig, preset
from ..core.engine import Engine, EventKind, RunEvent, drain
from ..core.problems import add_gaussian_noise, denoise_problem
from ..core.stopping import Observation, build_rule
from ..core.vocabulary import Iterate
from .common import crop, photos, table, write_json

RULES = ("es-wmv", "es-emv")


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _gap(peak: float, pick: float | None) -> float:
    """Peak minus pick; a rule that picked nothing counts as missing the peak entirely."""
    return float("inf") if pick is None else peak - pick


def one_run(img: np.ndarray, sigma: float, iterations: int, seed: int) -> dict:
    noisy = add_gaussian_noise(img, sigma, seed)
    problem = denoise_problem(noisy, img)
    # overlap off: every rule here reads the iterate of the report in hand; the engine's own rule stays out of
    # the way (fixed, no auto stop) so that the run is the whole budget and each rule watches it from outside
    cfg = preset(
        "denoise", iterations=iterations, seed=seed, stop="fixed", auto_stop=False, speed=SpeedConfig(overlap="off")
    )
    eng = Engine(problem, cfg)
    rules = {name: build_rule(name) for name in RULES}
    picks: dict[str, dict] = {
        n: {"iteration": None, "psnr": None, "psnr_average": None, "stopped_at": None} for n in RULES
    }
    spent = dict.fromkeys(RULES, 0.0)

    def watch(event: RunEvent) -> None:
        rep = event.report
        if event.kind is not EventKind.STEP or rep is None:
            return
        for name, rule in rules.items():
            if picks[name]["stopped_at"] is not None:
                continue
            t0 = time.perf_counter()
            v = rule.observe(Observation(rep.iteration, eng.tensor(Iterate.RAW), eng.y, rep.loss_terms["data"]))
            spent[name] += time.perf_counter() - t0
            if v.new_pick:
                picks[name].update(iteration=rep.iteration, psnr=rep.psnr, psnr_average=rep.psnr_average)
            if v.stop:
                picks[name]["stopped_at"] = rep.iteration

    result = drain(eng.steps(), watch)
    reports = result.reports
    step_time = result.step_seconds
    peak = max(reports, key=lambda r: r.psnr)
    peak_avg = max(reports, key=lambda r: r.psnr_average)
    return {
        "input_psnr": problem.input_psnr(),
        "peak": {"iteration": peak.iteration, "psnr": peak.psnr},
        "peak_average": {"iteration": peak_avg.iteration, "psnr": peak_avg.psnr_average},
        "fixed": {"iteration": iterations, "psnr": reports[-1].psnr, "psnr_average": reports[-1].psnr_average},
        "rules": picks,
        "overhead_ms": {n: 1000 * spent[n] / iterations for n in RULES},
        "step_ms": 1000 * step_time / iterations,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=128, help="crop size (default 128; use 0 for full size on a GPU)")
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--sigmas", default="25,50", help="noise levels, in 0-255 units")
    ap.add_argument("--images", default="", help="comma-separated subset of the photos")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)
    imgs = photos()
    if args.images:
        imgs = {k: v for k, v in imgs.items() if k in args.images.split(",")}
    results = []
    for name, img in imgs.items():
        if img.shape[2] != 3:
            continue
        im = crop(img, args.size) if args.size else img
        for s in (float(x) for x in args.sigmas.split(",")):
            r = one_run(im, s / 255.0, args.iterations, seed=0)
            r.update(image=name, sigma=s)
            results.append(r)
            w = r["rules"]["es-wmv"]
            print(
                f"{name} sigma={s:g}: peak {r['peak']['psnr']:.2f}@{r['peak']['iteration']} "
                f"es-wmv {_f(w['psnr'])}@{w['iteration']} avg-at-pick {_f(w['psnr_average'])} "
                f"fixed {r['fixed']['psnr']:.2f}",
                flush=True,
            )
    rows = []
    for r in results:
        row: list[object] = [
            r["image"],
            int(r["sigma"]),
            r["input_psnr"],
            f"{r['peak']['psnr']:.2f} @{r['peak']['iteration']}",
            r["peak_average"]["psnr"],
            r["fixed"]["psnr"],
            r["fixed"]["psnr_average"],
        ]
        for n in RULES:
            p = r["rules"][n]
            row += [f"{_f(p['psnr'])} @{p['iteration']}", _f(p["psnr_average"]), _gap(r["peak"]["psnr"], p["psnr"])]
        rows.append(row)
    headers = ["photo", "σ", "input", "peak raw @it", "peak avg", f"fixed@{args.iterations} raw", "fixed avg"]
    for n in RULES:
        headers += [f"{n} pick @it", f"{n} avg at pick", f"{n} gap"]
    print()
    print(table(headers, rows))
    print()
    summary = []
    for n in RULES:
        gaps = [_gap(r["peak"]["psnr"], r["rules"][n]["psnr"]) for r in results]
        avg_gain = [
            r["rules"][n]["psnr_average"] - r["rules"][n]["psnr"] for r in results if r["rules"][n]["psnr"] is not None
        ] or [float("nan")]
        summary.append(
            [
                n,
                f"{sum(g <= 1.0 for g in gaps)}/{len(gaps)}",
                statistics.median(gaps),
                max(gaps),
                statistics.median(avg_gain),
                statistics.mean(r["overhead_ms"][n] for r in results),
                statistics.mean(r["step_ms"] for r in results),
            ]
        )
    fixed_gaps = [r["peak"]["psnr"] - r["fixed"]["psnr"] for r in results]
    summary.append(
        [
            "fixed",
            f"{sum(g <= 1.0 for g in fixed_gaps)}/{len(fixed_gaps)}",
            statistics.median(fixed_gaps),
            max(fixed_gaps),
            statistics.median([r["fixed"]["psnr_average"] - r["fixed"]["psnr"] for r in results]),
            0.0,
            statistics.mean(r["step_ms"] for r in results),
        ]
    )
    print(
        table(
            [
                "rule",
                "within 1 dB of peak",
                "median gap dB",
                "worst gap dB",
                "median gain of avg at pick dB",
                "rule ms/step",
                "step ms",
            ],
            summary,
        )
    )
    write_json(args.json, results)


if __name__ == "__main__":
    main()
