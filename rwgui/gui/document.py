"""The photo being restored: pixels, alpha, file metadata, optional ground truth; and the Problem it makes.

Qt-free on purpose: the window keeps one :class:`Photo` and snapshots it (with a copy of the painted mask)
into an immutable Problem when Start is pressed, so the worker never shares an array the GUI writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..core import imageio
from ..core.errors import MaskError, RwguiError
from ..core.imageio import ImageMeta
from ..core.problems import Problem, denoise_problem, inpaint_problem, sr_problem
from ..core.samples import load_sample, sample_path

__all__ = ["Photo", "open_photo", "sample_photo", "build_problem", "display_image", "result_alpha"]


@dataclass(frozen=True)
class Photo:
    """What the person opened. ``pixels`` HxWxC float32 in [0, 1]; ``ground_truth`` only when known."""

    name: str
    pixels: np.ndarray
    alpha: np.ndarray | None
    meta: ImageMeta
    path: str | None = None
    ground_truth: np.ndarray | None = None
    sample: str | None = None  # the bundled sample's name (its damage is synthetic and re-made per task)
    mask: np.ndarray | None = None  # a mask that came with the photo (1 = known), e.g. the inpainting sample

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def open_photo(path: str | Path) -> Photo:
    """Read a photo file (RwguiError with a readable message when it cannot be read)."""
    img = imageio.read(path)
    return Photo(Path(path).name, img.pixels, img.alpha, img.meta, str(path))


def sample_photo(task: str = "denoise", name: str = "astronaut", factor: int = 4, size: int | None = None) -> Photo:
    """A bundled photo with synthetic damage for ``task`` and its ground truth known."""
    s = load_sample(task, name, factor=factor, size=size)
    meta = ImageMeta(str(sample_path(name)), 8, 3, False, 1, "png")
    label = {"denoise": "noisy", "sr": f"low-res ×{factor}", "inpaint": "scratched"}[task]
    return Photo(f"sample: {name} ({label})", s.observed, None, meta, None, s.ground_truth, name, s.mask)


def with_ground_truth(photo: Photo, path: str | Path) -> Photo:
    """The same photo with a ground truth read from ``path`` (checked against the result size at Start)."""
    return replace(photo, ground_truth=imageio.read(path).pixels)


def build_problem(photo: Photo, task: str, factor: int, mask: np.ndarray | None) -> Problem:
    """An immutable Problem from copies: ``mask`` is 1 = known (the canvas's own convention)."""
    y = np.array(photo.pixels, dtype=np.float32, copy=True)
    gt = photo.ground_truth
    gt = None if gt is None else np.array(gt, dtype=np.float32, copy=True)
    if gt is not None and gt.shape[2] != y.shape[2]:
        gt = None  # a colour ground truth for a gray photo (or the reverse) cannot be scored
    if task == "denoise":
        return denoise_problem(y, gt if gt is not None and gt.shape == y.shape else None)
    if task == "sr":
        want = (y.shape[0] * factor, y.shape[1] * factor)
        return sr_problem(y, factor, gt if gt is not None and gt.shape[:2] == want else None)
    if task == "inpaint":
        if mask is None:
            raise MaskError("paint the damaged areas (or load a mask) before starting an inpainting run")
        m = np.array(mask, dtype=np.float32, copy=True)
        if m.min() >= 0.5:
            raise MaskError(
                "the mask has no hole: paint over the damaged areas with the brush "
                "(or load a mask) before starting an inpainting run"
            )
        return inpaint_problem(y, m, gt if gt is not None and gt.shape == y.shape else None)
    raise RwguiError(f"unknown task {task!r}")


def display_image(photo: Photo, task: str, factor: int) -> np.ndarray:
    """What the left view shows: the photo, or for super-resolution its bicubic ×factor enlargement, so that
    both views share coordinates and zoom together."""
    if task != "sr":
        return photo.pixels
    h, w = photo.pixels.shape[:2]
    up = cv2.resize(photo.pixels, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
    return np.clip(up.reshape(h * factor, w * factor, -1), 0, 1)


def result_alpha(photo: Photo, shape_hw: tuple[int, int]) -> np.ndarray | None:
    """The photo's alpha at the result's size (resized for super-resolution), or None."""
    if photo.alpha is None:
        return None
    a = photo.alpha
    if a.shape[:2] == tuple(shape_hw):
        return a
    h, w = shape_hw
    return np.clip(cv2.resize(np.asarray(a, np.float32), (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
