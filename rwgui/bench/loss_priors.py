"""Do random-weights loss priors help? ``python -m rwgui.bench.loss_priors``.

Each loss prior (and total variation) against none, on denoising, x4 super-resolution and inpainting crops,
at the same iteration budget and seeds: PSNR at the raw peak, at es-wmv's pick (raw and running average at
the pick), and the time per step relative to no prior.
"""

from __future__ import annotations

import argparse
import statistics

from ..core.config import preset
from ..core.engine import Engine
from ..core.lossprior import LOSS_PRIORS
from .common import crop, make_problem, photos, table, write_json

TASK_PRESETS = {"denoise": "denoise", "sr-x4": "sr-x4", "inpaint-pixels": "inpaint-pixels"}


def run(task: str, img, prior: str, weight: float, iterations: int, seed: int) -> dict:
    problem = make_problem(task, img)
    over: dict = {"iterations": iterations, "seed": seed, "stop": "es-wmv", "auto_stop": False}
    if prior == "tv":
        over["tv_weight"] = weight
    elif prior != "none":
        over.update(loss_prior=prior, loss_prior_params={"weight": weight})
    eng = Engine(problem, preset(TASK_PRESETS[task], **over))
    reps = eng.run().reports
    pick = eng.pick_iteration
    at_pick = next((r for r in reps if r.iteration == pick), reps[-1])
    return {
        "peak": max(r.psnr for r in reps if r.psnr is not None),  # all of them: the problem has ground truth
        "pick": at_pick.psnr,
        "pick_average": at_pick.psnr_average,
        "step": statistics.median(r.seconds for r in reps),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--iterations", type=int, default=800)
    ap.add_argument("--tasks", default=",".join(TASK_PRESETS))
    ap.add_argument("--priors", default="none," + ",".join(LOSS_PRIORS.names()) + ",tv")
    ap.add_argument("--weights", default="0.1", help="λ values to try (comma-separated)")
    ap.add_argument("--images", default="astronaut")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    imgs = photos()
    results = []
    for task in args.tasks.split(","):
        for prior in args.priors.split(","):
            weights = [0.0] if prior == "none" else [float(w) for w in args.weights.split(",")]
            for weight in weights:
                runs = [
                    run(task, crop(imgs[name], args.size), prior, weight, args.iterations, int(seed))
                    for name in args.images.split(",")
                    for seed in args.seeds.split(",")
                ]
                agg = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
                agg.update(task=task, prior=prior, weight=weight)
                results.append(agg)
                print(agg, flush=True)
    rows = []
    for r in results:
        base = next(b for b in results if b["task"] == r["task"] and b["prior"] == "none")
        rows.append(
            [
                r["task"],
                r["prior"],
                r["weight"],
                r["peak"],
                r["pick"],
                r["pick_average"],
                r["pick_average"] - base["pick_average"],
                r["step"] / base["step"],
            ]
        )
    print()
    print(
        table(
            [
                "task",
                "loss prior",
                "λ",
                "peak raw",
                "es-wmv pick raw",
                "avg at pick",
                "Δ avg at pick vs none",
                "time/step vs none",
            ],
            rows,
        )
    )
    write_json(args.json, results)


if __name__ == "__main__":
    main()
