"""The bundled sample photos (assets/, public domain and CC0) with synthetic damage and known ground truth.

A new user presses Start on the sample and sees PSNR climb; tests and benchmarks use the same builders.
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


def load_sample(
    task: str = "denoise", name: str = "astronaut", *, factor: int = 4, size: int | None = None, seed: int = 0
) -> Sample:
    """The sample ``name`` damaged for ``task``; ``size`` centre-crops it square (tests use small crops)."""
    img = imageio.read(sample_path(name)).pixels
    if size is not None:
        h, w = img.shape[:2]
        s = min(size, h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = img[top : top + s, left : left + s]
    if task == Task.DENOISE:
        return Sample(name, Task.DENOISE, add_gaussian_noise(img, NOISE_SIGMA, seed), img)
    if task == Task.SR:
        h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
        gt = np.ascontiguousarray(img[:h, :w])
        return Sample(name, Task.SR, downsample(gt, factor), gt, factor=factor)
    if task == Task.INPAINT:
        mask = scribble_mask(img.shape[:2], seed)
        return Sample(name, Task.INPAINT, img * mask[..., None], img, mask=mask)
    # the new tasks' synthetic damage, as the tests and the benchmark make it (rwgui.core.problems)
    if task == Task.REAL_NOISE:
        return Sample(name, Task.REAL_NOISE, add_gaussian_noise(img, NOISE_SIGMA, seed), img)
    if task == Task.JPEG:
        return Sample(name, Task.JPEG, jpeg_compress(img, 10), img)
    if task == Task.DEBLUR:
        from .kernels import gaussian_kernel

        return Sample(name, Task.DEBLUR, blur(img, gaussian_kernel(2.0)), img)  # the deblur preset's kernel
    if task == Task.FLASH:
        flash, no_flash = flash_pair(img, seed)
        return Sample(name, Task.FLASH, flash, flash_truth(img), second=no_flash)
    if task == Task.PREIMAGE:
        return Sample(name, Task.PREIMAGE, np.ascontiguousarray(img), img)
    raise ValueError(f"unknown task {task!r}")
