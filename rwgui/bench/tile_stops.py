"""Do the tiles' stopping rules pick as well as the whole photo's? ``python -m rwgui.bench.tile_stops``.

A run on tiles gives every tile its own stopping rule. If a tile's rule stops further from the tile's own best
iterate than the whole photo's rule does from the photo's, the tiled result falls behind the untiled one for
that reason alone. This benchmark measures it: for each photo (σ = 25, resized to ``--size``), the whole photo
and each tile of the grid a memory budget for a ``--tile`` run gives (as :mod:`rwgui.bench.tiles`) run the same
``--iterations`` with the rule's signal recorded but no early stop. Then, for each patience in
``--patience``, the rule is replayed on the recorded signal (:class:`~rwgui.core.stopping.MinimumRule`'s own
logic: the pick is the lowest signal so far, the run stops ``patience`` observations after it) and the
running average's PSNR at the pick is compared with the run's best running average ('lost', dB).

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

from ..core.config import preset
from ..core.device import resolve_device
from ..core.engine import Engine, StepReport, drain
from ..core.memory import MemoryModel, run_dtype
from ..core.problems import add_gaussian_noise, denoise_problem
from ..core.tiles import run_tiled
from ..core.vocabulary import WorkingMode
from ..core.working_size import choose_working, plan_for_problem
from .common import crop, photos, table, write_json


def replay(signal: list[float | None], patience: int, burn_in: int = 0) -> tuple[int | None, int]:
    """The rule's pick (an index into the trace) and the index it stops at, from a recorded signal: the same
    decisions as :meth:`rwgui.core.stopping.MinimumRule.decide` (the trace's last index when it never stops)."""
    best, pick, since = math.inf, None, 0
    for i, s in enumerate(signal):
        if s is not None and i + 1 > burn_in and s < best:
            best, pick, since = s, i, 0
        elif pick is not None:
            since += 1
        if pick is not None and since >= patience:
            return pick, i
    return pick, len(signal) - 1


def trace(reports: list[StepReport]) -> dict[str, list]:
    return {
        "psnr_average": [r.psnr_average for r in reports],
        "signal": [r.signal for r in reports],
    }


def judged(tr: dict[str, list], patience: int) -> dict[str, Any]:
    """Where the rule would stop and pick with ``patience``, and what its pick loses to the best average."""
    avg = np.array([np.nan if v is None else v for v in tr["psnr_average"]], np.float64)
    pick, stop = replay(tr["signal"], patience)
    best = int(np.nanargmax(avg))
    at = float(avg[pick]) if pick is not None else math.nan
    return {"stop": stop + 1, "pick": None if pick is None else pick + 1, "best": best + 1, "lost": avg[best] - at}


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
    device = resolve_device(cfg.device)
    out: dict[str, dict] = {}
    rows = []
    every = photos()
    for name in args.photos.split(","):
        img = crop(every[name], args.size)
        if img.shape[0] != args.size or img.shape[1] != args.size:
            img = cv2.resize(img, (args.size, args.size), interpolation=cv2.INTER_CUBIC)
        gt = np.clip(img, 0, 1).astype(np.float32)
        problem = denoise_problem(add_gaussian_noise(gt, 25 / 255, 0), gt)
        model = MemoryModel(cfg, 3, run_dtype(cfg, problem.size, device, 3), device.type)
        plan = plan_for_problem(problem, cfg, model.estimate((args.tile, args.tile)).total_bytes + 2**20)
        working = choose_working(plan, WorkingMode.AUTO)
        assert working.mode == WorkingMode.TILES and working.tiles is not None, plan.sentence
        engine = Engine(problem, cfg)
        whole = trace(drain(engine.steps()).reports)
        del engine
        tiled = run_tiled(problem, cfg, working.tiles)
        tiles = [trace(r.reports) for r in tiled.results]
        out[name] = {"grid": working.tiles.describe(), "whole": whole, "tiles": tiles}
        print(f"{name}: {working.tiles.describe()}", flush=True)
        for p in patiences:
            w = judged(whole, p)
            ts = [judged(t, p) for t in tiles]
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
