"""The photo being restored: pixels, alpha, file metadata, optional ground truth, and what is shown of it.

Qt-free because the session model (:mod:`rwgui.core.session`) holds one and a saved session will write it;
the window snapshots it (with a copy of the painted mask) into an immutable Problem when Start is pressed, so
the worker never shares an array the GUI writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from . import imageio
from .imageio import ImageMeta
from .samples import load_sample, sample_path
from .vocabulary import Task

__all__ = ["Photo", "open_photo", "sample_photo", "with_ground_truth", "display_image"]


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
    second: np.ndarray | None = None  # a second photo that came with it: the flash sample's no-flash photo

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
    labels = {Task.DENOISE: "noisy", Task.SR: f"low-res ×{factor}", Task.INPAINT: "scratched"}
    labels.update({Task.REAL_NOISE: "noisy", Task.JPEG: "JPEG q10", Task.DEBLUR: "blurred", Task.FLASH: "flash"})
    label = labels.get(Task(task), str(task))
    gt = None if Task(task) == Task.PREIMAGE else s.ground_truth
    return Photo(f"sample: {name} ({label})", s.observed, None, meta, None, gt, name, s.mask, s.second)


def with_ground_truth(photo: Photo, path: str | Path) -> Photo:
    """The same photo with a ground truth read from ``path`` (checked against the result size at Start)."""
    return replace(photo, ground_truth=imageio.read(path).pixels)


def display_image(photo: Photo, task: str, factor: int) -> np.ndarray:
    """What the left view shows: the photo, or for super-resolution its bicubic ×factor enlargement, so that
    both views share coordinates and zoom together."""
    if task != Task.SR:
        return photo.pixels
    h, w = photo.pixels.shape[:2]
    up = cv2.resize(photo.pixels, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
    return np.clip(up.reshape(h * factor, w * factor, -1), 0, 1)
