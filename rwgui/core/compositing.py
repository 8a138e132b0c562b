"""Inpainting keeps what is known: the network's output goes into the holes, the photo stays everywhere else.

Deep Image Prior fits a network to the whole photo, so its output also *reconstructs* the known pixels, and
not exactly (levels off on average, and by much more at fine detail). A person who paints holes expects only
the holes to change, so what rwgui writes and shows as an inpainting result is :func:`keep_known`'s composite:

* **inside a hole**: the network's output;
* **outside the holes**: the photo's own pixels, bit for bit, except
* **a seam** of ``seam_px`` pixels on the known side of each *wide* hole's edge, where the network's output is
  blended into the photo with a raised-cosine weight that falls from 1 in the hole to 0 at ``seam_px``.

Why the seam lies on the known side: inside a hole the photo holds nothing worth keeping (black, a scratch,
text), so blending there would blend the damage back in; on the known side both images are plausible and the
blend hides the step where the fill's tone differs slightly from its surroundings.

Why only around wide holes: a hole a few pixels across (scattered missing pixels, a thin scratch) leaves no
visible step to hide, while a seam around every one of them would touch nearly every known pixel (with 50 %
of the pixels missing, every known pixel is next to a hole). A hole part is *wide* when a disk of
:data:`WIDE_HOLE_PX` (7) pixels across, 33 pixels, fits inside it (a morphological opening); the seam is measured
from those parts only, and narrower holes are pasted hard. With 50 % of the pixels missing at random, such a disk
fits at a given spot with probability 2**-33 (once in about 8.6e9 spots; a 24-megapixel photo has 2.4e7), so in
practice every known pixel is kept.

The precise promise, which the tests check: every known pixel whose distance (Euclidean, between pixel
centres) to the nearest hole pixel exceeds ``seam_px`` equals the photo's pixel exactly, in the photo's own
type (uint8, uint16 or float); with ``seam_px`` 0 every known pixel does, and every hole pixel is the
network's (a hard paste). The mask's convention is rwgui's: 1 (>= 0.5) = known, 0 = hole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from .config import RunConfig
from .pixels import as_float, float_to_u8, float_to_u16, tensor_to_image

if TYPE_CHECKING:
    from .problems import Problem

__all__ = [
    "WIDE_HOLE_PX",
    "keep_known",
    "seam_weights",
    "result_seam",
    "describe_result",
    "problem_result",
    "result_psnr",
]

#: A hole part gets a seam when a disk this many pixels across fits inside it (see the module's docstring).
WIDE_HOLE_PX = 7


def _holes(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"the mask must be HxW or HxWx1; got shape {m.shape}")
    holes: np.ndarray = m < 0.5
    return holes


def seam_weights(mask: np.ndarray, seam_px: int) -> np.ndarray:
    """HxW float32 weight of the network's output in :func:`keep_known`'s composite (``mask``: 1 = known).

    1 in every hole, 0 at every known pixel farther than ``seam_px`` from a wide hole (so at every known pixel
    farther than ``seam_px`` from any hole), and a raised cosine between: at distance d (1 <= d <= seam_px)
    from a wide hole the weight is 0.5 + 0.5 cos(pi d / (seam_px + 1)), e.g. 0.5 next to it at a 1 px seam."""
    holes = _holes(mask)
    w = holes.astype(np.float32)
    seam = int(seam_px)
    if seam <= 0 or not holes.any() or holes.all():
        return w
    k = WIDE_HOLE_PX
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    # pixels outside the photo count as hole-free, so a hole at the border is not widened by it
    wide = cv2.morphologyEx(
        holes.astype(np.uint8), cv2.MORPH_OPEN, disk, borderType=cv2.BORDER_CONSTANT, borderValue=0
    ).astype(bool)
    if not wide.any():
        return w
    # distance of every pixel to the nearest wide-hole pixel (0 inside one)
    d = cv2.distanceTransform((~wide).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    band = ~holes & (d <= seam)
    w[band] = 0.5 + 0.5 * np.cos(np.pi * d[band] / (seam + 1))
    return w


def _like(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """[0, 1] floats in the photo's type (rounded for integers; clipped like every writer)."""
    if dtype == np.uint8:
        return float_to_u8(pixels)
    if dtype == np.uint16:
        return float_to_u16(pixels)
    return np.asarray(pixels, dtype=dtype)


def keep_known(restored: np.ndarray, photo: np.ndarray, mask: np.ndarray, seam_px: int) -> np.ndarray:
    """The inpainting result: ``restored`` (the network's output) in the holes, ``photo`` outside them,
    blended across a ``seam_px`` seam on the known side of each wide hole (see the module's docstring).

    ``restored`` and ``photo`` are HxWxC (or HxW) images of the same shape, each float in [0, 1], uint8 or
    uint16 (they need not share a type); ``mask`` is HxW (or HxWx1), 1 = known. The result is a new array of
    the photo's type and shape; where the network's weight is 0 its pixels are the photo's, copied."""
    ph = np.asarray(photo)
    net = np.asarray(restored)
    if net.shape != ph.shape:
        raise ValueError(f"the restored image is {net.shape} but the photo is {ph.shape}")
    w = seam_weights(mask, seam_px)
    if w.shape == ph.shape[:2]:
        # a soft mask edge (feather, a soft brush: known pixels with 0 < mask < 1) blends the network's output in
        # by 1 - mask; a binary mask (0 or 1) changes nothing here
        m = np.asarray(mask, dtype=np.float32).reshape(w.shape)
        w = np.maximum(w, np.clip(1.0 - m, 0.0, 1.0))
    if w.shape != ph.shape[:2]:
        raise ValueError(f"the mask is {w.shape[1]}x{w.shape[0]} but the photo is {ph.shape[1]}x{ph.shape[0]}")
    if ph.ndim == 3:
        w = w[..., None]
    if not np.issubdtype(ph.dtype, np.floating) and ph.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"pixels must be float in [0, 1], uint8 or uint16, not {ph.dtype}")
    net_f = as_float(net).astype(np.float32, copy=False)
    photo_f = as_float(ph).astype(np.float32, copy=False)
    blended = _like(w * net_f + (1.0 - w) * photo_f, ph.dtype)
    filled = _like(net_f, ph.dtype)
    out: np.ndarray = np.where(w >= 1.0, filled, np.where(w <= 0.0, ph, blended))
    return out


def result_seam(config: RunConfig) -> int | None:
    """The seam an inpainting result is composed with under ``config``: its ``seam_px`` when ``keep_known`` is
    on, None when the result is the network's output as it is."""
    return int(config.seam_px) if config.keep_known else None


def problem_result(restored: np.ndarray, problem: Problem, config: RunConfig) -> np.ndarray:
    """What a person gets from ``restored`` (the network's output for ``problem``, at its size, HxWxC float):
    for inpainting :func:`keep_known`'s composite with the problem's known pixels under ``config``'s seam (as
    the CLI and Save result write it), else ``restored`` itself."""
    seam = result_seam(config)
    if problem.mask is None or seam is None:
        return restored

    mask = problem.mask[0, 0].detach().cpu().numpy()
    return keep_known(restored, tensor_to_image(problem.observed), mask, seam)


def result_psnr(restored: np.ndarray, problem: Problem, config: RunConfig) -> float | None:
    """PSNR against ``problem``'s ground truth of :func:`problem_result`, what is written, not the network's
    output (None without a ground truth). A comparison of inpainting variants (the Lab) must score this: the
    network's reconstruction of the known pixels is never written, and its error there would rank the
    variants by pixels the person never gets."""
    if problem.ground_truth is None:
        return None
    from .metrics import psnr

    return float(psnr(problem_result(restored, problem, config), tensor_to_image(problem.ground_truth)))


def describe_result(seam_px: int | None) -> str:
    """The words the report and the status line use for which inpainting result was written (``seam_px`` as
    :func:`result_seam` gives it)."""
    if seam_px is None:
        return "the network's output, known pixels not kept"
    if int(seam_px) <= 0:
        return "known pixels kept, no seam"
    return f"known pixels kept, {int(seam_px)} px seam"
