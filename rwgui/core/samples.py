"""The bundled sample photos (assets/, public domain and CC0) with synthetic damage and known ground truth.

A new user presses Start on the sample and sees PSNR climb; tests and benchmarks damage their photos with the
same :func:`damage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import imageio
from .errors import ImageReadError
from .problems import (
    Problem,
    add_gaussian_noise,
    blur,
    downsample,
    flash_pair,
    flash_truth,
    jpeg_compress,
    make_problem,
)
from .vocabulary import Task

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SAMPLES = ("astronaut", "chelsea", "coffee")
NOISE_SIGMA = 25 / 255  # the paper's denoising level


@dataclass
class Sample:
    """A damaged photo and what it was before: ``observed`` is what the person would open."""

    name: str
    task: Task
    observed: np.ndarray
    ground_truth: np.ndarray
    mask: np.ndarray | None = None  # 1 = known, for inpainting
    factor: int = 1
    second: np.ndarray | None = None  # flash / no-flash: the no-flash photo (``observed`` is the flash one)

    def problem(self) -> Problem:
        return make_problem(
            self.task,
            self.observed,
            factor=self.factor,
            mask=self.mask,
            ground_truth=self.ground_truth,
            second=self.second,
        )


def sample_path(name: str = "astronaut") -> Path:
    path = ASSETS / f"{name}.png"
    if not path.is_file():
        raise ImageReadError(f"the sample photo {path} is missing; reinstall rwgui or run from its source folder")
    return path


def scribble_mask(hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Hand-drawn-looking damage: a few thick random strokes (0 = hole), about 5-10 % of the photo."""
    rng = np.random.default_rng(seed)
    h, w = hw
    holes = np.zeros((h, w), np.uint8)
    thickness = max(2, min(h, w) // 40)
    for _ in range(6):
        pts = np.cumsum(rng.normal(0, min(h, w) / 10, (5, 2)), axis=0) + rng.uniform(0, 1, 2) * (w, h)
        cv2.polylines(holes, [pts.astype(np.int32).reshape(-1, 1, 2)], False, 255, thickness)
    return (holes == 0).astype(np.float32)


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` x ``size`` square of ``img`` (the whole side where the photo is shorter), as a copy."""
    h, w = img.shape[:2]
    s = min(size, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return np.ascontiguousarray(img[top : top + s, left : left + s])


def damage(
    img: np.ndarray,
    task: str,
    *,
    factor: int = 4,
    seed: int = 0,
    mask: np.ndarray | None = None,
    name: str = "",
) -> Sample:
    """``img`` (HxWxC float in [0, 1]) with ``task``'s synthetic damage, and itself as the ground truth.

    The one recipe for the bundled samples (what a new user opens), the tests and the benchmarks
    (:mod:`rwgui.bench.common`), so that a benchmark measures the damage the studio shows. ``seed`` draws the
    noise, the scribbles and the flash pair; ``factor`` is super-resolution's (the ground truth is cropped to a
    multiple of it); ``mask`` (1 = known) replaces inpainting's scribbles (the benchmarks drop pixels at random).
    """
    try:
        t = Task(task)
    except ValueError:
        raise ValueError(f"no synthetic damage for the unknown task {task!r}") from None
    if t in (Task.DENOISE, Task.REAL_NOISE):
        return Sample(name, t, add_gaussian_noise(img, NOISE_SIGMA, seed), img)
    if t == Task.SR:
        h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
        gt = np.ascontiguousarray(img[:h, :w])
        return Sample(name, t, downsample(gt, factor), gt, factor=factor)
    if t == Task.INPAINT:
        known = scribble_mask(img.shape[:2], seed) if mask is None else np.asarray(mask, np.float32)
        return Sample(name, t, img * known[..., None], img, mask=known)
    if t == Task.JPEG:
        return Sample(name, t, jpeg_compress(img, 10), img)
    if t == Task.DEBLUR:
        from .kernels import gaussian_kernel

        return Sample(name, t, blur(img, gaussian_kernel(2.0)), img)  # the deblur preset's kernel
    if t == Task.FLASH:
        flash, no_flash = flash_pair(img, seed)
        return Sample(name, t, flash, flash_truth(img), second=no_flash)
    if t == Task.PREIMAGE:  # the photo is what is inverted
        return Sample(name, t, np.ascontiguousarray(img), img)
    raise ValueError(f"no synthetic damage for task {t!r}")


def load_sample(
    task: str = "denoise", name: str = "astronaut", *, factor: int = 4, size: int | None = None, seed: int = 0
) -> Sample:
    """The sample ``name`` damaged for ``task`` (:func:`damage`); ``size`` centre-crops it square (tests use
    small crops)."""
    img = imageio.read(sample_path(name)).pixels
    if size is not None:
        img = centre_crop(img, size)
    return damage(img, task, factor=factor, seed=seed, name=name)
