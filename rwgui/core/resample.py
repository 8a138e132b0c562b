"""Resize and crop HxWxC float images (and inpainting masks) with OpenCV, keeping the [0, 1] convention.

Area averaging going down (no aliasing), bicubic going up; a downscaled mask keeps as a hole every pixel
that touches a hole, so the smaller run never treats damaged pixels as known.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["crop", "downscale", "upscale", "downscale_mask"]


def _resize(img: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    a = np.ascontiguousarray(img, dtype=np.float32)
    h, w = size
    out = cv2.resize(a, (w, h), interpolation=interpolation)
    if a.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[..., None]
    return out


def crop(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of ``img[y0:y1, x0:x1]`` (HxW or HxWxC)."""
    y0, y1, x0, x1 = box
    return np.array(img[y0:y1, x0:x1], copy=True)


def downscale(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` at (h, w) = ``size`` by area averaging."""
    return _resize(img, size, cv2.INTER_AREA)


def upscale(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` at (h, w) = ``size``, bicubic, clipped to [0, 1] (bicubic overshoots at edges)."""
    return np.clip(_resize(img, size, cv2.INTER_CUBIC), 0.0, 1.0)


def downscale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxW mask (1 = known, 0 = hole) at ``size``: a pixel is known only if every source pixel it covers is.

    Area averaging of the holes is exactly 0 where no hole contributes and positive wherever one does.
    """
    holes = (np.asarray(mask) < 0.5).astype(np.float32)
    if holes.ndim == 3:
        holes = holes[..., 0]
    return (_resize(holes, size, cv2.INTER_AREA) <= 0.0).astype(np.float32)
