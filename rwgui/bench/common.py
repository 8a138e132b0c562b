"""Shared pieces of the benchmarks: test crops from several photos, table printing, timing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core import imageio
from ..core.kernels import gaussian_kernel
from ..core.problems import (
    Problem,
    add_gaussian_noise,
    blur,
    denoise_problem,
    downsample,
    flash_pair,
    flash_truth,
    inpaint_problem,
    jpeg_compress,
    random_pixel_mask,
    sr_problem,
)
from ..core.problems import make_problem as make_problem_for
from ..core.samples import scribble_mask
from ..core.vocabulary import Task

#: A folder with the Deep Image Prior repository's reference images, when the person has them; unset, the
#: benchmarks use scikit-image's photos only.
REFERENCE_DIR = os.environ.get("RWGUI_BENCH_PHOTOS", "")


def photos() -> dict[str, np.ndarray]:
    """Natural photos for measuring: the Deep Image Prior repository's reference images (F16, kate, zebra) when
    the folder ``RWGUI_BENCH_PHOTOS`` names holds them (they are research material: never shipped), plus
    scikit-image's public-domain/CC0 photos when scikit-image is installed."""
    out: dict[str, np.ndarray] = {}
    for name, file in (("F16", "denoising_F16_GT.png"), ("kate", "inpainting_kate.png"), ("zebra", "sr_zebra_GT.png")):
        path = Path(REFERENCE_DIR) / file
        if REFERENCE_DIR and path.is_file():
            out[name] = imageio.read(path).pixels
    try:
        from skimage import data
    except ImportError:
        data = None
    if data is not None:
        for name in ("astronaut", "chelsea", "coffee"):
            out[name] = getattr(data, name)().astype(np.float32) / 255.0
    if not out:
        raise SystemExit("no benchmark photos: install scikit-image (pip install scikit-image)")
    return out


def crop(img: np.ndarray, size: int) -> np.ndarray:
    """Centre crop, ``size`` x ``size`` (or the whole photo when smaller)."""
    h, w = img.shape[:2]
    s = min(size, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return np.ascontiguousarray(img[top : top + s, left : left + s])


def make_problem(task: str, img: np.ndarray) -> Problem:
    """Synthetic damage with known ground truth, named by the preset that restores it."""
    if task == Task.DENOISE:
        return denoise_problem(add_gaussian_noise(img, 25 / 255, 0), img)
    if task == "inpaint-pixels":
        mask = random_pixel_mask(img.shape[:2], 0.5, 0)
        return inpaint_problem(img * mask[..., None], mask, img)
    if task == Task.INPAINT:
        mask = scribble_mask(img.shape[:2], 0)
        return inpaint_problem(img * mask[..., None], mask, img)
    # the tasks beyond the paper's three, damaged as tests/test_tasks.py damages them
    if task == Task.JPEG:
        return make_problem_for(task, jpeg_compress(img, 10), ground_truth=img)
    if task == Task.DEBLUR:
        return make_problem_for(task, blur(img, gaussian_kernel(2.0)), ground_truth=img, task_params={"sigma": 2.0})
    if task == Task.REAL_NOISE:
        return make_problem_for(task, add_gaussian_noise(img, 25 / 255, 0), ground_truth=img)
    if task == Task.FLASH:
        flash, no_flash = flash_pair(img, 0)
        return make_problem_for(task, flash, second=no_flash, ground_truth=flash_truth(img))
    if task.startswith("sr-x"):
        factor = int(task[4:])
        return sr_problem(downsample(img, factor), factor, img)
    raise ValueError(f"no synthetic damage for {task!r}")


def write_json(path: str | None, data: object) -> None:
    """Raw results for later tables (the README's are pasted from the printed ones)."""
    if path:
        import json

        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table (pastes straight into the README)."""

    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
