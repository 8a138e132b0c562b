"""Does tiling show? ``python -m rwgui.bench.tiles``.

Denoises one large photo (scikit-image's astronaut, σ = 25, resized to ``--size`` when asked) twice with the
same settings, seed and iteration budget: untiled, and on tiles, with a memory budget just large enough for a
``--tile`` x ``--tile`` run so that the working-size plan (:func:`~rwgui.core.working_size.plan_for_problem`)
offers tiles and ``choose_working(plan, 'auto')`` takes them. It prints:

* **PSNR** of each result against the undamaged photo, and the difference (tiled − untiled);
* **seam gradients**: the mean absolute difference between neighbouring pixels across each line of the
  image, averaged over the lines inside the tiles' blending ramps ('seam') and over all other lines
  ('elsewhere'), and the worst single line inside a ramp ('seam max'), for both results on the *same* lines.
  The untiled run has no seam, so its numbers say what the photo's own content gives on those lines; a seam
  shows as the tiled run's seam numbers rising above the untiled run's while 'elsewhere' stays equal. The
  same numbers for a hard paste of the same tiles (each tile pasted over the previous ones, no blending)
  show what a visible seam measures.

``--out DIR`` writes both results and a crop around the centre seam crossing, side by side, as PNG.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import cv2
import numpy as np

from ..core import imageio
from ..core.config import preset
from ..core.engine import Engine, drain
from ..core.metrics import psnr
from ..core.problems import add_gaussian_noise, denoise_problem
from ..core.tiles import TileEvent, TileGrid, run_tiled, seam_gradients
from .common import forced_tiles, table, write_json


def photo(size: int) -> np.ndarray:
    from skimage import data

    img = data.astronaut().astype(np.float32) / 255.0
    if size != img.shape[0]:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC if size > img.shape[0] else cv2.INTER_AREA)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def hard_paste(images: list[np.ndarray], grid: TileGrid) -> np.ndarray:
    """The tiles pasted in order, each over the previous ones: what a tiling without a blend would write."""
    out = np.zeros((*grid.size, images[0].shape[2]), np.float32)
    for (y0, y1, x0, x1), img in zip(grid.boxes, images):
        out[y0:y1, x0:x1] = img
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="side of the photo (astronaut is 512; resized otherwise)")
    ap.add_argument("--tile", type=int, default=288, help="the memory budget fits a run of this side")
    ap.add_argument("--iterations", type=int, default=240)
    ap.add_argument("--preset", default="denoise", help="the run's preset (both runs)")
    ap.add_argument(
        "--channels", type=int, default=32, help="hourglass channels (denoise preset: 128; 0: the preset's)"
    )
    ap.add_argument("--overlap", type=int, default=0, help="tile overlap in px (0 = the default rule)")
    ap.add_argument(
        "--stop",
        help="the stopping rule of every run (default: the preset's); 'fixed' runs the whole photo and every "
        "tile for exactly --iterations, so the two are compared at the same iterations",
    )
    ap.add_argument(
        "--threads", type=int, default=0, help="CPU threads of each run (0: measured); 1 for two --part processes"
    )
    ap.add_argument(
        "--part",
        choices=("both", "untiled", "tiled", "compare"),
        default="both",
        help="run one of the two (needs --out; each saves its result there, and the comparison is printed "
        "once both are): two processes on two cores instead of one after the other, for a large photo; "
        "'compare': no run, the comparison of the two results saved in --out",
    )
    ap.add_argument("--crop", type=int, default=128, help="side of each image in the seam-crossing crop")
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--out", help="a folder for the two results and a side-by-side crop at a seam crossing")
    args = ap.parse_args(argv)

    gt = photo(args.size)
    problem = denoise_problem(add_gaussian_noise(gt, 25 / 255, 0), gt)
    ch = (args.channels,)
    widths = {"channels_down": ch, "channels_up": ch} if args.channels else {}
    cfg = preset(args.preset, iterations=args.iterations)
    cfg = cfg.replace(prior_params={**cfg.prior_params, **widths})
    if args.stop:
        cfg = cfg.replace(stop=args.stop, stop_params={})
    if args.threads:
        cfg = cfg.replace(speed=dataclasses.replace(cfg.speed, threads=args.threads))
    plan, grid = forced_tiles(problem, cfg, args.tile, args.overlap)
    print(f"{plan.sentence}\nworking at full size on {grid.describe()}", flush=True)

    from pathlib import Path

    out = Path(args.out) if args.out else None
    if args.part != "both" and out is None:
        ap.error("--part needs --out")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if args.part in ("both", "untiled"):
        t0 = time.perf_counter()
        engine = Engine(problem, cfg)
        whole = drain(engine.steps())
        untiled = engine.result_image()
        t_untiled = time.perf_counter() - t0
        del engine
        print(f"untiled: {whole.iterations_run} iterations, {whole.stop_reason}, {t_untiled:.0f} s", flush=True)
        if out is not None:
            np.savez(
                out / "untiled.npz",
                image=untiled,
                seconds=t_untiled,
                iterations=whole.iterations_run,
                grid=grid.describe(),
            )
    if args.part in ("both", "tiled"):
        last = [-1]

        def on_event(ev: TileEvent) -> None:
            if ev.index != last[0]:
                last[0] = ev.index
                print(f"tile {ev.index + 1} of {ev.count} ({100 * ev.fraction:.0f} % of the photo)", flush=True)

        t0 = time.perf_counter()
        tiled_run = run_tiled(problem, cfg, grid, on_event=on_event)
        t_tiled = time.perf_counter() - t0
        assert tiled_run.run is not None
        stops = ", ".join(f"{r.stop_reason}@{r.iterations_run}" for r in tiled_run.results)
        print(f"tiled: {stops}, {t_tiled:.0f} s", flush=True)
        tiled_image, tile_images = tiled_run.image, tiled_run.images
        if out is not None:
            np.savez(
                out / "tiled.npz", *tile_images, image=tiled_image, seconds=t_tiled, grid=grid.describe()
            )  # arr_0, ...
    if args.part != "both":  # the other part's result, if it has been saved
        assert out is not None
        if not ((out / "untiled.npz").exists() and (out / "tiled.npz").exists()):
            return
        with np.load(out / "untiled.npz") as u, np.load(out / "tiled.npz") as t:
            for name, saved in (("untiled", u), ("tiled", t)):  # the two parts must have planned the same grid
                if str(saved["grid"]) != grid.describe():
                    raise SystemExit(f"{name}.npz was made for {saved['grid']}, this command plans {grid.describe()}")
            untiled, t_untiled = u["image"], float(u["seconds"])
            tiled_image, t_tiled = t["image"], float(t["seconds"])
            tile_images = [t[f"arr_{i}"] for i in range(grid.count)]

    pasted = hard_paste(tile_images, grid)
    rows = []
    numbers: dict[str, dict[str, float]] = {}
    for name, img, secs in (
        ("untiled", untiled, t_untiled),
        ("tiles, blended", tiled_image, t_tiled),
        ("tiles, hard paste", pasted, t_tiled),
    ):
        s = seam_gradients(img, grid)
        p = psnr(img, gt)
        numbers[name] = {"psnr": p, "seconds": secs, **s}
        rows.append(
            [name, f"{p:.2f}", f"{255 * s['seam']:.2f}", f"{255 * s['seam_max']:.2f}", f"{255 * s['elsewhere']:.2f}"]
        )
    print(
        table(["result", "PSNR dB", "seam (8-bit levels)", "seam max", "elsewhere"], rows)
        + f"\n\nPSNR tiled - untiled: {numbers['tiles, blended']['psnr'] - numbers['untiled']['psnr']:+.2f} dB; "
        f"input {psnr(problem.naive(), gt):.2f} dB; {args.iterations} iterations; {grid.describe()}; "
        f"untiled {t_untiled:.0f} s, tiled {t_tiled:.0f} s"
    )
    write_json(args.json, {"args": vars(args), "grid": grid.describe(), "results": numbers})
    if out is not None:
        imageio.write(str(out / "untiled.png"), untiled)
        imageio.write(str(out / "tiled.png"), tiled_image)
        (ry, _), (rx, _) = grid.seams()[0][0], grid.seams()[1][0]
        cy, cx, half = ry + grid.ramp // 2, rx + grid.ramp // 2, args.crop // 2
        y0, x0 = max(0, cy - half), max(0, cx - half)
        side = np.concatenate(
            [im[y0 : y0 + 2 * half, x0 : x0 + 2 * half] for im in (untiled, tiled_image, pasted)], axis=1
        )
        imageio.write(str(out / "seam_crop.png"), side)


if __name__ == "__main__":
    main()
