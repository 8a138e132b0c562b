"""How wide should the keep-known seam be? ``python -m rwgui.bench.seam``.

Inpaints several photos (the bundled samples in ``assets/`` and scikit-image's) under two kinds of hole, a
painted brush stroke and bold text, with the ``inpaint`` preset, then scores the run's result (the running
average at the end) against the undamaged photo in two ways:

* **PSNR** of the whole image: the network's output as it is ("network"), and the keep-known composite
  (:func:`rwgui.core.compositing.keep_known`) at each seam width;
* **edge RMS**: the root-mean-square error of the horizontal and vertical pixel differences (the image's
  gradient, against the undamaged photo's) over the pairs of neighbours that lie within 6 px of a hole; this is
  the step a viewer sees at a hole's edge, which a seam exists to soften and PSNR does not see.

The holes get the network's pixels at every seam width, so the columns differ only on the known side of the
holes' edges.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from ..core import imageio
from ..core.compositing import keep_known
from ..core.config import preset
from ..core.engine import Engine
from ..core.metrics import psnr
from ..core.problems import inpaint_problem
from ..core.samples import sample_path
from .common import crop, table, write_json

SEAMS = (0, 1, 2, 3, 5)
BAND_PX = 6


def stroke_mask(size: int, seed: int) -> np.ndarray:
    """A few brush strokes as a person paints them over a blemish: size/16 px thick (0 = hole)."""
    rng = np.random.default_rng(seed)
    holes = np.zeros((size, size), np.uint8)
    for _ in range(3):
        pts = np.cumsum(rng.normal(0, size / 8, (4, 2)), axis=0) + rng.uniform(0.25, 0.75, 2) * size
        cv2.polylines(holes, [pts.astype(np.int32).reshape(-1, 1, 2)], False, 255, max(3, size // 16))
    return (holes == 0).astype(np.float32)


def text_mask(size: int) -> np.ndarray:
    """Bold text written over the photo, like the paper's text mask (0 = hole)."""
    holes = np.zeros((size, size), np.uint8)
    scale, thick = size / 200, max(2, size // 28)
    for i, line in enumerate(("rwgui DIP", "keep known", "pixels 42")):
        y = int(size * (0.28 + 0.3 * i))
        cv2.putText(holes, line, (size // 20, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_8)
    return (holes == 0).astype(np.float32)


def test_photos(size: int) -> dict[str, np.ndarray]:
    out = {name: crop(imageio.read(sample_path(name)).pixels, size) for name in ("astronaut", "chelsea", "coffee")}
    from skimage import data

    out["camera"] = crop(data.camera().astype(np.float32)[..., None] / 255.0, size)
    out["rocket"] = crop(data.rocket().astype(np.float32) / 255.0, size)
    return out


def edge_rms(img: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """RMS error (in 8-bit levels) of neighbour differences within ``BAND_PX`` of a hole."""
    holes = (mask < 0.5).astype(np.uint8)
    near = cv2.distanceTransform(1 - holes, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= BAND_PX
    errs = []
    for axis in (0, 1):
        e = np.diff(img, axis=axis) - np.diff(gt, axis=axis)
        both = near[:-1, :] & near[1:, :] if axis == 0 else near[:, :-1] & near[:, 1:]
        errs.append(e[both].ravel())
    all_e = np.concatenate(errs) * 255.0
    return float(np.sqrt(np.mean(all_e**2)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--photos", default="astronaut,chelsea,coffee,camera,rocket")
    ap.add_argument("--masks", default="stroke,text")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    imgs = test_photos(args.size)
    rows: list[list[object]] = []
    raw: list[dict[str, object]] = []
    sums: dict[str, list[float]] = {}
    for mask_name in args.masks.split(","):
        for i, name in enumerate(args.photos.split(",")):
            gt = imgs[name]
            mask = stroke_mask(args.size, i) if mask_name == "stroke" else text_mask(args.size)
            problem = inpaint_problem(gt * mask[..., None], mask, gt)
            t0 = time.perf_counter()
            eng = Engine(problem, preset("inpaint", iterations=args.iterations, stop="fixed"))
            eng.run()
            net = eng.result_image()
            observed = gt * mask[..., None]
            scores = {"network": (psnr(net, gt), edge_rms(net, gt, mask))}
            for s in SEAMS:
                out = keep_known(net, observed, mask, s)
                scores[f"seam {s}"] = (psnr(out, gt), edge_rms(out, gt, mask))
            row: list[object] = [mask_name, name, f"{100 * float(np.mean(mask < 0.5)):.1f}"]
            for key, (p, e) in scores.items():
                row.append(f"{p:.2f} / {e:.1f}")
                sums.setdefault(key, [0.0, 0.0])
                sums[key][0] += p
                sums[key][1] += e
            rows.append(row)
            raw.append({"mask": mask_name, "photo": name, "seconds": time.perf_counter() - t0, "scores": scores})
            print(" ".join(str(v) for v in row), f"({time.perf_counter() - t0:.0f} s)", flush=True)
    n = len(rows)
    rows.append(["mean", "", "", *[f"{p / n:.2f} / {e / n:.1f}" for p, e in sums.values()]])
    print()
    print(table(["mask", "photo", "hole %", *(f"{k}: PSNR / edge RMS" for k in sums)], rows))
    write_json(args.json, raw)


if __name__ == "__main__":
    main()
