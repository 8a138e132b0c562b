"""Problems: the observed photo y, its degradation operator A, the mask, and ground truth when known.

Arrays come in as HxWxC float32 in [0, 1] (what :mod:`rwgui.core.imageio` gives); tensors leave as
1xCxHxW float32 on the CPU. The engine moves them to its device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from .errors import ConfigError, MaskError, RwguiError
from .operators import Blur, Features, Identity, LanczosDownsample, Operator, PixelMask
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
    #: the image the "observed" input code is made of, when it is not ``observed`` itself: the flash photo
    #: (flash / no-flash), the photo whose features are matched (pre-image)
    code_image: torch.Tensor | None = None
    #: the restored image's channels, when the observation has others (the pre-image's features)
    image_channels: int | None = None
    #: the real-noise task's estimate of the photo's noise level, in [0, 1] units
    noise_sigma: float | None = None
    #: the task's parameters it was built from, resolved (deblur's kernel, the pre-image's weights and layer),
    #: so that a working size or a tile (:func:`remake`) builds the same problem on part of the photo
    task_params: Mapping[str, Any] | None = None

    @property
    def channels(self) -> int:
        return self.image_channels if self.image_channels is not None else int(self.observed.shape[1])

    @property
    def code_source(self) -> torch.Tensor:
        """What the "observed" input code is made of (and what the photo view shows): the photo itself for
        every task but flash / no-flash (the flash photo) and the pre-image (the photo, not its features)."""
        return self.code_image if self.code_image is not None else self.observed

    def input_psnr(self) -> float | None:
        """PSNR of the naive answer (noisy photo, masked photo, bicubic upsampling) against ground truth."""
        if self.ground_truth is None:
            return None
        from .metrics import psnr

        return psnr(self.naive(), tensor_to_image(self.ground_truth))

    def naive(self) -> np.ndarray:
        """The baseline a restoration must beat, as HxWxC: y itself, or bicubic for super-resolution."""
        y = tensor_to_image(self.code_source if self.task == Task.PREIMAGE else self.observed)
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
    task_params: Mapping[str, Any] | None = None,
    second: np.ndarray | None = None,
) -> Problem:
    """The Problem for ``task`` from a photo's pixels: the one way the CLI, the studio, the samples and the
    working size build one, so that the same inputs give the same problem everywhere.

    ``mask`` (inpainting) is HxW with 1 = known; ``factor`` is the super-resolution factor (ignored
    otherwise); ``task_params`` are the task's parameters (:mod:`rwgui.core.tasks`: the deblur kernel, the
    pre-image's weights and layer); ``second`` is the second photo of flash / no-flash (``pixels`` is the flash
    photo, ``second`` the no-flash one). The pixels, mask and ground truth are copied, never shared."""
    try:
        t = Task(task)
    except ValueError:
        raise ConfigError(f"unknown task {task!r}; use one of {', '.join(Task)}") from None
    if t in (Task.DENOISE, Task.JPEG):
        p = denoise_problem(pixels, ground_truth)
        p.task = t
        return p
    if t == Task.REAL_NOISE:
        return real_noise_problem(pixels, ground_truth)
    if t == Task.SR:
        return sr_problem(pixels, factor, ground_truth)
    if t in (Task.DEBLUR, Task.PREIMAGE):
        from .tasks import task_spec

        params = task_spec(t).resolve(task_params)
        if t == Task.DEBLUR:
            from .kernels import make_kernel

            p = deblur_problem(pixels, make_kernel(params), ground_truth)
        else:
            p = preimage_problem(pixels, params["weights"], params["layer"], params["class_index"])
        p.task_params = params
        return p
    if t == Task.FLASH:
        if second is None:
            raise ConfigError("flash / no-flash needs the no-flash photo too (--no-flash PATH; File > No-flash photo)")
        return flash_problem(pixels, second, ground_truth)
    if mask is None:
        raise MaskError("inpainting needs a mask (1 = known pixel, 0 = hole)")
    return inpaint_problem(pixels, mask, ground_truth)


def remake(
    problem: Problem,
    resize: Callable[[np.ndarray], np.ndarray],
    *,
    scale: float = 1.0,
    factor: int = 1,
    mask: np.ndarray | None = None,
    ground_truth: np.ndarray | None = None,
) -> Problem:
    """``problem`` built again by :func:`make_problem` from its own photos passed through ``resize`` (a crop, a
    tile or a downscale): the one way a working size and a tile make their problem, so that every task keeps
    what it was built from. The photo and flash / no-flash's second photo get the same ``resize``; the task's
    parameters are kept, except that a downscale by ``scale`` (< 1) scales the deblur kernel by it too
    (:func:`~rwgui.core.kernels.scaled_kernel`). ``mask`` and ``ground_truth`` are given already resized (the
    mask's downscale has its own rule; the ground truth of super-resolution is at the output's scale)."""
    pixels = resize(tensor_to_image(problem.code_source))  # the flash photo; the pre-image's photo, not features
    second = resize(tensor_to_image(problem.observed)) if problem.task == Task.FLASH else None
    if problem.task == Task.DEBLUR and (scale != 1 or problem.task_params is None):
        from .kernels import resample_kernel, scaled_kernel

        if problem.task_params is not None:
            kernel = scaled_kernel(problem.task_params, scale)
        else:  # built from a kernel array (deblur_problem): the operator's own, unflipped
            assert isinstance(problem.operator, Blur)
            kernel = resample_kernel(torch.flip(problem.operator.kernel[0, 0], dims=(0, 1)).numpy(), scale)
        p = deblur_problem(pixels, kernel, ground_truth)
        p.task_params = problem.task_params
        return p
    return make_problem(
        problem.task,
        pixels,
        factor=factor,
        mask=mask,
        ground_truth=ground_truth,
        task_params=problem.task_params,
        second=second,
    )


def denoise_problem(noisy: np.ndarray, ground_truth: np.ndarray | None = None) -> Problem:
    y = _check_image(noisy, "the photo")
    return Problem(
        Task.DENOISE, image_to_tensor(y), Identity(), y.shape[:2], ground_truth=_check_gt(ground_truth, y.shape)
    )


def real_noise_problem(noisy: np.ndarray, ground_truth: np.ndarray | None = None) -> Problem:
    """Denoising at an unknown level: the level is estimated from the photo (:mod:`rwgui.core.noise_estimate`)
    and kept with the problem, to be shown; nothing in the run needs it."""
    from .noise_estimate import estimate_noise

    p = denoise_problem(noisy, ground_truth)
    p.task = Task.REAL_NOISE
    p.noise_sigma = estimate_noise(tensor_to_image(p.observed)).sigma
    return p


def deblur_problem(blurred: np.ndarray, kernel: np.ndarray, ground_truth: np.ndarray | None = None) -> Problem:
    """Deblurring: the photo is the sharp image convolved with ``kernel`` (mirrored border; see :class:`Blur`)."""
    y = _check_image(blurred, "the photo")
    op = Blur(kernel, y.shape[2])
    return Problem(Task.DEBLUR, image_to_tensor(y), op, y.shape[:2], ground_truth=_check_gt(ground_truth, y.shape))


def flash_problem(flash: np.ndarray, no_flash: np.ndarray, ground_truth: np.ndarray | None = None) -> Problem:
    """Flash / no-flash: the no-flash photo is the target, the flash photo the network's input code, so the
    fit starts from the flash photo's edges and is pulled to the no-flash photo's light; stopped early, it
    keeps the first and takes the second. Both photos must have the same size and channels."""
    f = _check_image(flash, "the flash photo")
    n = _check_image(no_flash, "the no-flash photo")
    if f.shape[:2] != n.shape[:2]:
        raise ConfigError(
            f"the flash photo is {f.shape[1]}x{f.shape[0]} but the no-flash photo is {n.shape[1]}x{n.shape[0]}; "
            "flash / no-flash needs two photos of the same size (taken from the same place)"
        )
    if f.shape[2] != n.shape[2]:
        f = f.mean(axis=2, keepdims=True) if f.shape[2] == 3 else np.repeat(f, 3, axis=2)
    return Problem(
        Task.FLASH,
        image_to_tensor(n),
        Identity(),
        n.shape[:2],
        ground_truth=_check_gt(ground_truth, n.shape),
        code_image=image_to_tensor(f),
    )


def preimage_problem(photo: np.ndarray, weights: str, layer: str = "", class_index: int = -1) -> Problem:
    """Natural pre-image: the observation is the classifier's activations at ``layer`` for ``photo`` (feature
    inversion), or, with ``class_index`` >= 0, nothing but the photo's size (activation maximisation).
    Refused with a WeightsError when no weights are given: nothing is ever downloaded."""
    from .classifiers import Truncated, default_layer, load_classifier
    from .errors import WeightsError

    if not weights:
        raise WeightsError(
            "the pre-image task needs a classifier's weights: give --weights PATH (a torchvision AlexNet or VGG "
            "state dict); rwgui never downloads weights"
        )
    x = _check_image(photo, "the photo")
    net = load_classifier(weights)
    name = "logits" if class_index >= 0 else (layer or default_layer(net))
    op = Features(Truncated(net, name), class_index)
    xt = image_to_tensor(x)
    try:
        with torch.no_grad():
            target = op(xt)
    except RuntimeError as exc:
        raise WeightsError(
            f"the {x.shape[1]}x{x.shape[0]} photo is too small for this network up to layer {name!r} "
            f"({str(exc).splitlines()[0][:120]}); use a larger photo or an earlier layer"
        ) from None
    return Problem(Task.PREIMAGE, target, op, x.shape[:2], code_image=xt, image_channels=x.shape[2])


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


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """``img`` through OpenCV's JPEG encoder and decoder at ``quality`` (1-100): the JPEG task's damage."""
    a = _check_image(img, "the image")
    u8 = np.clip(np.round(a * 255), 0, 255).astype(np.uint8)
    bgr = u8[..., ::-1] if a.shape[2] == 3 else u8[..., 0]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RwguiError("OpenCV could not encode the image as JPEG")
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if dec is None:
        raise RwguiError("OpenCV could not decode its own JPEG")
    dec = dec[..., ::-1] if dec.ndim == 3 else dec[..., None]
    return (dec.astype(np.float32) / 255.0).copy()


def blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``img`` blurred by the same operator the deblur task inverts (mirrored border)."""
    a = _check_image(img, "the image")
    with torch.no_grad():
        return tensor_to_image(Blur(kernel, a.shape[2])(image_to_tensor(a)))


def flash_pair(img: np.ndarray, seed: int = 0, noise: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic (flash, no-flash) pair of one scene ``img``: the flash photo is sharp and noise-free but lit
    by a harsh light that falls off from the top left; the no-flash photo has the scene's own, smooth light
    (a warm cast, darker) and heavy noise. Tests and the benchmark score the result against ``img`` lit the
    no-flash way (:func:`flash_truth`)."""
    a = _check_image(img, "the image")
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    harsh = 1.6 * np.exp(-((xx / w) ** 2 + (yy / h) ** 2) * 1.5)[..., None]
    flash = np.clip(a * harsh, 0, 1).astype(np.float32)
    no_flash = add_gaussian_noise(flash_truth(a), noise, seed)
    return flash, no_flash


def flash_truth(img: np.ndarray) -> np.ndarray:
    """The scene under the no-flash light of :func:`flash_pair`, noise-free: what a perfect result would be."""
    a = _check_image(img, "the image")
    tint = np.array([0.85, 0.7, 0.55], np.float32)[: a.shape[2]] if a.shape[2] == 3 else np.float32(0.7)
    return np.clip(a * tint, 0, 1).astype(np.float32)


def hole_fraction(mask: np.ndarray) -> float:
    return float(1.0 - np.mean(np.asarray(mask) >= 0.5))
