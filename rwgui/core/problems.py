"""Problems: the observed photo y, its degradation operator A, the mask, and ground truth when known.

Arrays come in as HxWxC float32 in [0, 1] (what :mod:`rwgui.core.imageio` gives); tensors leave as
1xCxHxW float32 on the CPU. The engine moves them to its device.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .errors import ConfigError, MaskError, RwguiError
from .operators import Identity, LanczosDownsample, Operator, PixelMask
from .pixels import image_to_tensor, tensor_to_image
from .vocabulary import Task


@dataclass
class Problem:
    """What the engine fits: ``A(x) ≈ observed``; ``size`` is the (h, w) of the restored image."""

    task: Task
    observed: torch.Tensor
    operator: Operator
    size: tuple[int, int]
    mask: torch.Tensor | None = None
    ground_truth: torch.Tensor | None = None

    @property
    def channels(self) -> int:
        return int(self.observed.shape[1])

    def input_psnr(self) -> float | None:
        """PSNR of the naive answer (noisy photo, masked photo, bicubic upsampling) against ground truth."""
        if self.ground_truth is None:
            return None
        from .metrics import psnr

        return psnr(self.naive(), tensor_to_image(self.ground_truth))

    def naive(self) -> np.ndarray:
        """The baseline a restoration must beat, as HxWxC: y itself, or bicubic for super-resolution."""
        y = tensor_to_image(self.observed)
        if self.task == Task.SR:
            h, w = self.size
            up = cv2.resize(y, (w, h), interpolation=cv2.INTER_CUBIC)
            return np.clip(up.reshape(h, w, -1), 0, 1)
        return y


def _check_image(img: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise RwguiError(f"{what} must be an HxW or HxWx3 image; got shape {a.shape}")
    if min(a.shape[:2]) < 8:
        raise RwguiError(f"{what} is {a.shape[1]}x{a.shape[0]} pixels; rwgui needs at least 8x8")
    return a


def _check_gt(gt: np.ndarray | None, shape: tuple[int, ...]) -> torch.Tensor | None:
    """The one ground-truth rule, for the CLI and the studio alike.

    A ground truth only scores the result, so a colour one for a gray photo (or the reverse) is converted
    (the mean of R, G and B; gray repeated) rather than refused. One of another *size* is refused with a
    ConfigError: the person gave it to be told how close the result is, and silently scoring nothing would
    hide the mistake (say, the photo's size given for a super-resolution result)."""
    if gt is None:
        return None
    g = _check_image(gt, "the ground truth")
    if g.shape[2] != shape[2]:
        g = g.mean(axis=2, keepdims=True) if g.shape[2] == 3 else np.repeat(g, 3, axis=2)
    if g.shape[:2] != shape[:2]:
        raise ConfigError(
            f"the ground truth is {g.shape[1]}x{g.shape[0]} but the result will be "
            f"{shape[1]}x{shape[0]}; give a ground truth of the result's size, or none"
        )
    return image_to_tensor(g)


def make_problem(
    task: str,
    pixels: np.ndarray,
    *,
    factor: int = 1,
    mask: np.ndarray | None = None,
    ground_truth: np.ndarray | None = None,
) -> Problem:
    """The Problem for ``task`` from a photo's pixels: the one way the CLI, the studio, the samples and the
    working size build one, so that the same inputs give the same problem everywhere.

    ``mask`` (inpainting) is HxW with 1 = known; ``factor`` is the super-resolution factor (ignored
    otherwise); the pixels, mask and ground truth are copied, never shared with the caller."""
    try:
        t = Task(task)
    except ValueError:
        raise ConfigError(f"unknown task {task!r}; use one of {', '.join(Task)}") from None
    if t == Task.DENOISE:
        return denoise_problem(pixels, ground_truth)
    if t == Task.SR:
        return sr_problem(pixels, factor, ground_truth)
    if mask is None:
        raise MaskError("inpainting needs a mask (1 = known pixel, 0 = hole)")
    return inpaint_problem(pixels, mask, ground_truth)


def denoise_problem(noisy: np.ndarray, ground_truth: np.ndarray | None = None) -> Problem:
    y = _check_image(noisy, "the photo")
    return Problem(
        Task.DENOISE, image_to_tensor(y), Identity(), y.shape[:2], ground_truth=_check_gt(ground_truth, y.shape)
    )


def sr_problem(low_res: np.ndarray, factor: int, ground_truth: np.ndarray | None = None) -> Problem:
    """Super-resolution: the result is ``factor`` times the photo's size."""
    y = _check_image(low_res, "the photo")
    size = (y.shape[0] * factor, y.shape[1] * factor)
    gt = _check_gt(ground_truth, (*size, y.shape[2]))
    return Problem(Task.SR, image_to_tensor(y), LanczosDownsample(factor, y.shape[2]), size, ground_truth=gt)


def inpaint_problem(image: np.ndarray, mask: np.ndarray, ground_truth: np.ndarray | None = None) -> Problem:
    """Inpainting: ``mask`` is HxW with 1 = known pixel, 0 = hole (the GUI converts its painted holes)."""
    y = _check_image(image, "the photo")
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != y.shape[:2]:
        raise MaskError(
            f"the mask is {m.shape[1]}x{m.shape[0]} but the photo is {y.shape[1]}x{y.shape[0]}; "
            "paint or load a mask of the photo's size"
        )
    m = (m >= 0.5).astype(np.float32)
    if m.sum() == 0:
        raise MaskError("the mask marks every pixel as a hole; at least some pixels must be known (white)")
    mt = torch.from_numpy(m)[None, None].clone()
    return Problem(
        Task.INPAINT,
        image_to_tensor(y) * mt,
        PixelMask(mt),
        y.shape[:2],
        mask=mt,
        ground_truth=_check_gt(ground_truth, y.shape),
    )


# --- synthetic damage, for the bundled sample, the tests and the benchmarks -------------------------


def add_gaussian_noise(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """``img`` + N(0, sigma) clipped to [0, 1]; ``sigma`` in [0, 1] units (25/255 in the paper)."""
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0.0, sigma, img.shape), 0, 1).astype(np.float32)


def random_pixel_mask(hw: tuple[int, int], keep: float = 0.5, seed: int = 0) -> np.ndarray:
    """Bernoulli mask, 1 = known with probability ``keep`` (the paper's 50 % missing pixels)."""
    rng = np.random.default_rng(seed)
    return (rng.random(hw) < keep).astype(np.float32)


def downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """Low-resolution version made with the same Lanczos operator the engine inverts."""
    a = _check_image(img, "the image")
    h, w = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
    op = LanczosDownsample(factor, a.shape[2])
    with torch.no_grad():
        return tensor_to_image(op(image_to_tensor(a[:h, :w])))


def hole_fraction(mask: np.ndarray) -> float:
    return float(1.0 - np.mean(np.asarray(mask) >= 0.5))
