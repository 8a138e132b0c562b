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

``--presets inpaint-large,inpaint`` runs each named preset (of the task's kind) on each task's damage instead
of the task's own preset, so two presets meet the same holes. ``inpaint-large`` is a large hole: a centred
square a third of the crop's side (11 % of the pixels), the kind of hole the paper fills with the hourglass
preset. Inpainting rows also get a second table, of what a person gets: PSNR inside the hole alone, and of the
written result (the known pixels kept, :func:`~rwgui.core.compositing.problem_result`), both for the final
running average; the whole-image PSNR of the network's output is mostly its reconstruction of known pixels.

``preimage`` inverts a classifier whose weights no one may download here: an AlexNet of torchvision's layout
(:func:`rwgui.core.classifiers.alexnet`) with PyTorch's default initialisation under a fixed seed, saved to a
temporary file and loaded back as a person's file is. Its weights are *random*, so the table measures the
inversion machinery (does the network prior drive the features of its output to the photo's?), not the paper's
figure made with a trained network: the feature distance (the data term, the mean squared difference of the
layer's activations) of the network's first output, of a plain-noise image and of the result (the final
running average), and the result's PSNR against the photo for context.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.compositing import problem_result
from ..core.config import PRESETS, RunConfig, preset
from ..core.engine import Engine, StepReport
from ..core.metrics import psnr
from ..core.pixels import image_to_tensor, tensor_to_image
from ..core.problems import Problem, add_gaussian_noise, inpaint_problem
from ..core.problems import make_problem as make_problem_for
from ..core.stopping import build_rule
from ..core.vocabulary import Iterate, Task
from .common import crop, make_problem, photos, table, write_json

TASKS = {
    "denoise": "denoise (σ={sigma:g})",
    "inpaint-pixels": "inpaint (50 % pixels missing)",
    "sr-x4": "super-resolution x4",
    "jpeg": "JPEG artefacts (quality 10)",
    "deblur": "deblur (Gaussian σ=2)",
    "flash": "flash / no-flash (synthetic pair)",
    "real-noise": "real noise (σ={sigma:g}, estimated)",
    "inpaint-large": "inpaint (large hole, 11 %)",
    "preimage": "pre-image (AlexNet layout, random weights)",
}
#: The seed of the pre-image's random classifier: every run inverts the same network.
CLASSIFIER_SEED = 0
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


PREIMAGE_HEADERS = [
    "photo",
    "layer",
    "iterations",
    "distance: first output",
    "distance: plain noise",
    "distance: result",
    "result / noise",
    "result PSNR to the photo",
]
HOLE_HEADERS = ["photo", "preset", "iterations", "hole: masked input", "hole: final average", "written"]


def large_hole_mask(hw: tuple[int, int]) -> np.ndarray:
    """HxW, 1 = known: one centred square hole a third of each side, the kind of large hole nothing around it
    fills by copying nearby pixels."""
    h, w = hw
    mask = np.ones((h, w), np.float32)
    mask[h // 3 : h - h // 3, w // 3 : w - w // 3] = 0.0
    return mask


_classifier_file: str | None = None


def random_classifier() -> str:
    """The path of an AlexNet-layout state dict with PyTorch's default initialisation under ``CLASSIFIER_SEED``,
    written once per process to a temporary folder removed at exit."""
    global _classifier_file
    if _classifier_file is None:
        import torch

        from ..core.classifiers import alexnet

        folder = tempfile.mkdtemp(prefix="rwgui-bench-")
        atexit.register(shutil.rmtree, folder, True)
        torch.manual_seed(CLASSIFIER_SEED)
        path = Path(folder) / "alexnet-random.pth"
        torch.save(alexnet().state_dict(), path)
        _classifier_file = str(path)
    return _classifier_file


def task_problem(task: str, img: np.ndarray, sigma: float, layer: str = "") -> Problem:
    """The synthetic damage of ``task`` (a preset name) on ``img``; ``sigma`` (of 255) for the noisy tasks;
    ``layer`` the pre-image's layer (empty: its default)."""
    if task in NOISY:
        return make_problem_for(task, add_gaussian_noise(img, sigma / 255, 0), ground_truth=img)
    if task == "inpaint-large":
        mask = large_hole_mask(img.shape[:2])
        return inpaint_problem(img * mask[..., None], mask, img)
    if task == Task.PREIMAGE:
        return make_problem_for(task, img, task_params={"weights": random_classifier(), "layer": layer})
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


def run_config(
    task: str,
    prior: str,
    iterations: int,
    lr: float | None,
    reg_noise_std: float | None,
    name: str = "",
) -> RunConfig:
    """The settings of one run: preset ``name`` (else the preset for (task, prior)), the whole budget with
    ``RULE`` only watching. A preset of another task than ``task``'s is refused: it would not fit the damage."""
    if name:
        if preset(name).task != preset(task).task:
            raise SystemExit(f"preset {name} is for {preset(name).task}, not for {task}'s {preset(task).task}")
    else:
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
    engine = Engine(problem, cfg)
    reps = engine.run().reports
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
        **(hole_measures(problem, engine, cfg) if problem.mask is not None else {}),
    }


def hole_measures(problem: Problem, engine: Engine, cfg: RunConfig) -> dict[str, float]:
    """Inpainting: PSNR inside the holes alone (of the masked input and of the final running average) and of
    the written result (known pixels kept under ``cfg``'s seam), each against the undamaged crop."""
    assert problem.mask is not None and problem.ground_truth is not None
    hole = problem.mask[0, 0].numpy() < 0.5
    gt = tensor_to_image(problem.ground_truth)
    average = engine.image(Iterate.AVERAGE)
    return {
        "hole_input": psnr(tensor_to_image(problem.observed)[hole], gt[hole]),
        "hole_final_average": psnr(average[hole], gt[hole]),
        "written_final_average": psnr(problem_result(average, problem, cfg), gt),
    }


def measure_preimage(name: str, img: np.ndarray, cfg: RunConfig, layer: str) -> dict[str, Any]:
    """One pre-image run of ``cfg`` on ``img`` (the random classifier, ``layer``): the feature distances of the
    network's first output, of a plain-noise image (uniform, fixed seed) and of the result, the final running
    average (the preset's fixed budget is its stop)."""
    import torch

    from ..core.operators import Features

    problem = task_problem(Task.PREIMAGE, img, 0.0, layer)
    op = problem.operator
    assert isinstance(op, Features)
    engine = Engine(problem, cfg)
    reps = engine.run().reports
    noise = np.random.default_rng(0).random(img.shape, dtype=np.float32)

    def distance(x: np.ndarray) -> float:
        with torch.no_grad():
            return float(op.data_loss(op(image_to_tensor(x)), problem.observed))

    result = engine.image(Iterate.AVERAGE)
    return {
        "task": "preimage",
        "image": name,
        "layer": op.net.layer,
        "iterations": cfg.iterations,
        "first": reps[0].loss_terms["data"],
        "noise": distance(noise),
        "result": distance(result),
        "final_raw": distance(engine.image(Iterate.RAW)),
        "psnr_to_photo": psnr(result, img),
        "seconds_per_iteration": sum(r.seconds for r in reps) / len(reps),
    }


def preimage_row(m: dict[str, Any]) -> list[object]:
    return [
        m["image"],
        m["layer"],
        m["iterations"],
        f"{m['first']:.3g}",
        f"{m['noise']:.3g}",
        f"{m['result']:.3g}",
        f"{m['result'] / m['noise']:.3g}",
        m["psnr_to_photo"],
    ]


def hole_row(m: dict[str, Any]) -> list[object]:
    keys = ("image", "preset", "iterations", "hole_input", "hole_final_average", "written_final_average")
    return [m[k] for k in keys]


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
    ap.add_argument(
        "--presets", default="", help="comma-separated presets to run on each task's damage (default: the task's)"
    )
    ap.add_argument("--layers", default="", help="pre-image: comma-separated layers to invert (default: its default)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    imgs = photos()
    sigmas = [float(v) for v in args.sigma.split(",")]
    rows, holes, inversions, raw = [], [], [], []
    runs = [
        (task, sigma, name, prior, named)
        for task in args.tasks.split(",")
        for sigma in (sigmas if task in NOISY else [0.0])
        for name in args.images.split(",")
        for prior in (args.priors.split(",") if args.priors else [""])
        for named in (args.presets.split(",") if args.presets else [""])
    ]
    for task, sigma, name, prior, named in runs:
        cfg = run_config(task, prior, args.iterations, args.lr, args.reg_noise_std, named)
        img = crop(imgs[name], args.size)
        if task == Task.PREIMAGE:
            for layer in args.layers.split(",") if args.layers else [""]:
                m = measure_preimage(name, img, cfg, layer)
                r = preimage_row(m)
                print(" ".join(str(v) for v in r), flush=True)
                inversions.append(r)
                raw.append(m)
            continue
        m = measure(task, name, img, sigma, cfg)
        r = row(task, m)
        print(" ".join(str(v) for v in r), flush=True)
        rows.append(r)
        if "hole_input" in m:
            holes.append(hole_row(m))
        raw.append(m)
    for headers, found in ((HEADERS, rows), (HOLE_HEADERS, holes), (PREIMAGE_HEADERS, inversions)):
        if found:
            print()
            print(table(headers, found))
    write_json(args.json, raw)


if __name__ == "__main__":
    main()
