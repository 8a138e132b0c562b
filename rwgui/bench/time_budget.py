"""Does ``--time-budget`` keep its promise, and does a smaller network pay on a CPU?

Three measurements (``python -m rwgui.bench.time_budget --help``):

* ``budget`` (default): ``rwgui-restore denoise NOISY --time-budget MINUTES`` on 512x512 photos with σ = 25
  noise, run through the CLI's own code path in this process; the wall time of the whole command (loading,
  the short timing, the run, writing) against the budget, and the PSNR of the written result against the clean
  photo and of the noisy input. The photos are 512x512 crops that need no resizing (astronaut,
  immunohistochemistry and the centre of retina; coffee and chelsea are smaller than 512 px).
* ``networks``: the denoising preset's network against narrower ones (fewer channels) at one size, each given
  the same wall-clock time (or, with ``--iterations``, the same number of iterations): seconds per step, and the
  PSNR of the running average (what the CLI writes) at the rule's pick, at the end and at its best. A narrower
  network earns a preset if it reaches about the same PSNR in less time.
* ``curves``: what a time budget trades. For each working side (the 512x512 photo downscaled to it, as a
  budget's plan would), a preset and ``--set`` overrides, the PSNR of the running average *upscaled back to
  512x512* against the clean photo every 100 iterations, and the seconds a step took. PSNR against iterations
  does not depend on the host's load, so it can be measured on a busy machine; the seconds say how many
  iterations a budget buys at each side (time them on a quiet one).

Wall-clock figures depend on the host: the development machine is shared, so each row says what it measured.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ..core import imageio
from ..core.config import preset
from ..core.engine import Engine, RunControl, drain
from ..core.metrics import psnr
from ..core.problems import add_gaussian_noise, denoise_problem
from ..core.vocabulary import Iterate
from .common import crop, table, write_json


def photos_512() -> dict[str, np.ndarray]:
    from skimage import data

    out = {}
    for name in ("astronaut", "immunohistochemistry", "retina"):
        out[name] = crop(getattr(data, name)().astype(np.float32) / 255.0, 512)
    return out


def run_budget(minutes: float, names: list[str], sigma: float, extra: list[str]) -> list[dict]:
    from ..cli import run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, clean in photos_512().items():
            if names and name not in names:
                continue
            noisy = add_gaussian_noise(clean, sigma / 255, 0)
            src = Path(tmp) / f"{name}_noisy.png"
            imageio.write(str(src), noisy)
            noisy8 = imageio.read(str(src)).pixels  # what the CLI reads: 8-bit
            out, rep = Path(tmp) / f"{name}_out.png", Path(tmp) / f"{name}.json"
            t0 = time.perf_counter()
            code = run(["denoise", str(src), "-o", str(out), "--report", str(rep), "--quiet",
                        "--time-budget", str(minutes), *extra])  # fmt: skip
            wall = time.perf_counter() - t0
            if not out.exists():
                print({"photo": name, "exit": code, "wall_s": round(wall, 1), "written": False}, flush=True)
                continue
            restored = imageio.read(str(out)).pixels
            import json

            report = json.loads(rep.read_text())
            tb = report.get("time_budget", {})
            row = {
                "photo": name,
                "exit": code,
                "wall_s": round(wall, 1),
                "budget_s": minutes * 60,
                "ratio": round(wall / (minutes * 60), 3),
                "working": "x".join(str(s) for s in report["working_size"]["size"][::-1]),
                "iterations_run": report["iterations_run"],
                "stop": report["stop_reason"],
                "psnr_noisy": round(psnr(noisy8, clean), 2),
                "psnr_result": round(psnr(restored, clean), 2),
                "message": tb.get("message", ""),
            }
            row["gain_db"] = round(row["psnr_result"] - row["psnr_noisy"], 2)
            rows.append(row)
            print(row, flush=True)
    return rows


def run_networks(
    size: int, seconds: float, names: list[str], widths: list[int], sigma: float, iterations: int = 0
) -> list[dict]:
    from .common import photos

    rows = []
    for name, img in photos().items():
        if names and name not in names:
            continue
        clean = crop(img, size)
        problem = denoise_problem(add_gaussian_noise(clean, sigma / 255, 0), clean)
        for width in widths:
            params = {"channels_down": (width,), "channels_up": (width,)}
            cfg = preset("denoise", prior_params=params, iterations=iterations or 100_000)
            engine = Engine(problem, cfg)
            t0 = time.perf_counter()
            result = drain(engine.steps(RunControl(None if iterations else seconds)))
            wall = time.perf_counter() - t0
            reps = [r for r in result.reports if r.psnr_average is not None]
            best = max(reps, key=lambda r: r.psnr_average or 0.0)
            at_pick = psnr(engine.image(Iterate.PICK_AVERAGE), clean)
            row = {
                "photo": name,
                "channels": width,
                "s_per_step": round(wall / max(1, engine.iteration), 3),
                "iterations": engine.iteration,
                "psnr_noisy": round(problem.input_psnr() or 0.0, 2),
                "avg_at_pick": round(at_pick, 2),
                "pick": engine.pick_iteration,
                "avg_end": round(reps[-1].psnr_average or 0.0, 2),
                "avg_best": round(best.psnr_average or 0.0, 2),
                "avg_best_at": best.iteration,
            }
            rows.append(row)
            print(row, flush=True)
    return rows


def run_curves(
    sides: list[int], iterations: int, names: list[str], sigma: float, preset_name: str, overrides: dict
) -> list[dict]:
    """PSNR of the upscaled running average against iterations, per photo and working side (see the module)."""
    from ..core.resample import downscale, upscale

    rows = []
    for name, clean in photos_512().items():
        if names and name not in names:
            continue
        noisy = np.round(np.clip(add_gaussian_noise(clean, sigma / 255, 0), 0, 1) * 255) / 255  # 8-bit, as read
        full = clean.shape[:2]
        for side in sides:
            small = noisy if (side, side) == full else downscale(noisy, (side, side))
            cfg = preset(preset_name, iterations=iterations, stop="fixed", **overrides)
            engine = Engine(denoise_problem(small, None), cfg)
            curve: list[tuple[int, float]] = []
            t0 = time.perf_counter()
            for _ in engine.steps(RunControl(None)):
                it = engine.iteration
                if it % 100 == 0 and (not curve or curve[-1][0] != it):
                    avg = engine.image(Iterate.AVERAGE)
                    up = avg if (side, side) == full else upscale(avg, full)
                    curve.append((it, round(psnr(np.clip(up, 0, 1), clean), 2)))
            row = {
                "photo": name,
                "side": side,
                "preset": preset_name,
                "set": overrides,
                "s_per_step": round((time.perf_counter() - t0) / max(1, engine.iteration), 3),
                "psnr_noisy": round(psnr(noisy, clean), 2),
                "curve": curve,
            }
            rows.append(row)
            print(row, flush=True)
    return rows


def _overrides(pairs: list[str]) -> dict:
    import json

    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = json.loads(value)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", choices=("budget", "networks", "curves"), default="budget")
    ap.add_argument("--minutes", type=float, default=2.0, help="budget mode: the --time-budget")
    ap.add_argument("--images", default="", help="comma-separated photo names (default: all)")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--preset", default="", help="budget mode: pass --preset to the CLI")
    ap.add_argument(
        "--cli", default="", help="budget mode: more CLI flags, space-separated (e.g. '--channels-down 64')"
    )
    ap.add_argument("--size", type=int, default=256, help="networks mode: the crop's side")
    ap.add_argument("--seconds", type=float, default=120.0, help="networks mode: wall-clock time per network")
    ap.add_argument("--widths", default="128,64,32", help="networks mode: channels per scale")
    ap.add_argument(
        "--iterations", type=int, default=0, help="networks mode: run this many iterations each instead of --seconds"
    )
    ap.add_argument("--sides", default="256,320", help="curves mode: working sides to downscale the 512 px photo to")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON", help="curves mode: a RunConfig override (repeatable)"
    )
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    names = [n for n in args.images.split(",") if n]
    if args.mode == "curves":
        sides = [int(v) for v in args.sides.split(",")]
        preset_name = args.preset or "denoise-fast"
        rows = run_curves(sides, args.iterations or 1600, names, args.sigma, preset_name, _overrides(args.set))
        for r in rows:
            marks = ", ".join(f"{it}: {p}" for it, p in r["curve"] if it % 300 == 0 or it == r["curve"][-1][0])
            print(f"{r['photo']} {r['side']}px {r['s_per_step']} s/step (noisy {r['psnr_noisy']}): {marks}")
        write_json(args.json, rows)
        return
    if args.mode == "budget":
        extra = (["--preset", args.preset] if args.preset else []) + args.cli.split()
        rows = run_budget(args.minutes, names, args.sigma, extra)
        keys = ["photo", "working", "iterations_run", "stop", "wall_s", "ratio", "psnr_noisy", "psnr_result", "gain_db"]
    else:
        widths = [int(w) for w in args.widths.split(",")]
        rows = run_networks(args.size, args.seconds, names, widths, args.sigma, args.iterations)
        keys = list(rows[0]) if rows else []
    print(table(keys, [[r[k] for k in keys] for r in rows]))
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
