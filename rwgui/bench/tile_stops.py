"""Do the tiles' stopping rules pick as well as the whole photo's? ``python -m rwgui.bench.tile_stops``.

A run on tiles gives every tile its own stopping rule. If a tile's rule stops further from the tile's own best
iterate than the whole photo's rule does from the photo's, the tiled result falls behind the untiled one for
that reason alone. This benchmark measures it: for each photo (σ = 25, its ``--size`` centre crop, enlarged
when the photo is smaller), the whole photo and each tile of the grid a memory budget for a ``--tile`` run gives
(:func:`~rwgui.bench.common.forced_tiles`, as :mod:`rwgui.bench.tiles`) run the same ``--iterations`` with the
rule's signal recorded but no early stop. Then, for each patience in ``--patience``, a fresh rule of the preset's
settings with that patience is replayed on the recorded signal (:func:`rwgui.bench.quality.rule_pick`) and the
running average's PSNR at its pick is compared with the run's best running average ('lost', dB).

Prints, per photo and patience, the whole photo's stop, pick and loss, and the tiles' (mean and worst over
the tiles); ``--json`` keeps every run's trace of PSNR and signal.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

import cv2
import numpy as np

from ..core.config import RunConfig, preset
from ..core.engine import Engine, StepReport, drain
from ..core.problems import add_gaussian_noise, denoise_problem
from ..core.tiles import run_tiled
from .common import crop, forced_tiles, photos, table, write_json
from .quality import rule_pick


def trace(reports: list[StepReport]) -> dict[str, list]:
    return {
        "psnr_average": [r.psnr_average for r in reports],
        "signal": [r.signal for r in reports],
    }


def judged(cfg: RunConfig, reports: list[StepReport], patience: int) -> dict[str, Any]:
    """Where the run's rule would stop and pick with ``patience``, and what its pick loses to the best average."""
    stop, pick = rule_pick(cfg.replace(stop_params={**cfg.stop_params, "patience": patience}), reports)
    average = {r.iteration: r.psnr_average for r in reports if r.psnr_average is not None}
    best = max(average, key=average.__getitem__)
    lost = average[best] - average[pick] if pick in average else math.nan
    return {"stop": stop if stop is not None else reports[-1].iteration, "pick": pick, "best": best, "lost": lost}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256, help="side of each photo's centre crop (resized when smaller)")
    ap.add_argument("--tile", type=int, default=160, help="the memory budget fits a run of this side")
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--preset", default="denoise-fast")
    ap.add_argument("--photos", default="astronaut,chelsea,coffee", help="comma-separated names from bench photos")
    ap.add_argument("--patience", default="250,500,1000,2000", help="comma-separated patiences to replay")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of each run (0: measured)")
    ap.add_argument("--json", help="write the traces and numbers here")
    args = ap.parse_args(argv)
    patiences = [int(p) for p in args.patience.split(",")]

    cfg = preset(args.preset, iterations=args.iterations).replace(auto_stop=False)
    if args.threads:
        cfg = cfg.replace(speed=dataclasses.replace(cfg.speed, threads=args.threads))
    out: dict[str, dict] = {}
    rows = []
    every = photos()
    for name in args.photos.split(","):
        img = crop(every[name], args.size)
        if img.shape[0] != args.size or img.shape[1] != args.size:
            img = cv2.resize(img, (args.size, args.size), interpolation=cv2.INTER_CUBIC)
        gt = np.clip(img, 0, 1).astype(np.float32)
        problem = denoise_problem(add_gaussian_noise(gt, 25 / 255, 0), gt)
        _, grid = forced_tiles(problem, cfg, args.tile)
        engine = Engine(problem, cfg)
        whole = drain(engine.steps()).reports
        del engine
        tiles = [r.reports for r in run_tiled(problem, cfg, grid).results]
        out[name] = {"grid": grid.describe(), "whole": trace(whole), "tiles": [trace(t) for t in tiles]}
        print(f"{name}: {grid.describe()}", flush=True)
        for p in patiences:
            w = judged(cfg, whole, p)
            ts = [judged(cfg, t, p) for t in tiles]
            lost = [float(t["lost"]) for t in ts]
            rows.append(
                [
                    name,
                    str(p),
                    f"{w['pick']} / {w['stop']} / {w['best']}",
                    f"{w['lost']:.2f}",
                    ", ".join(f"{t['pick']}/{t['best']}" for t in ts),
                    f"{np.mean(lost):.2f}",
                    f"{max(lost):.2f}",
                ]
            )
            out[name].setdefault("judged", {})[p] = {"whole": w, "tiles": ts}
    print(
        table(
            [
                "photo",
                "patience",
                "whole: pick / stop / best",
                "whole lost dB",
                "tiles: pick / best",
                "tiles lost dB (mean)",
                "(worst)",
            ],
            rows,
        )
    )
    write_json(args.json, {"args": vars(args), "photos": out})


if __name__ == "__main__":
    main()
