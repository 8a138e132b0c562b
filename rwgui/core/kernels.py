"""Blur kernels for deblurring: Gaussian, motion (a line segment), or a kernel image; parsed from one spec.

The CLI's ``--kernel`` takes ``gaussian:SIGMA``, ``motion:LENGTH,ANGLE`` (pixels, degrees counter-clockwise
from the x axis) or the path of a grey image; the studio's form and a settings file hold the same thing as the
deblur task's parameters (``kernel``, ``sigma``, ``length``, ``angle``, ``kernel_file``), so one spec maps to
one set of parameters and back. Every kernel is odd-sized, non-negative and sums to 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import KernelError

KERNEL_KINDS = ("gaussian", "motion", "file")
MAX_KERNEL = 101  # pixels per side: a larger blur is beyond what a per-photo fit can undo


def gaussian_kernel(sigma: float) -> np.ndarray:
    """An isotropic Gaussian, 2*ceil(3 sigma)+1 pixels wide."""
    if not math.isfinite(sigma) or sigma <= 0:
        raise KernelError(f"a Gaussian kernel needs a sigma above 0; got {sigma}")
    r = max(1, math.ceil(3 * sigma))
    if 2 * r + 1 > MAX_KERNEL:
        raise KernelError(f"sigma {sigma} makes a kernel wider than {MAX_KERNEL} pixels")
    t = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(t**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A straight motion of ``length`` pixels at ``angle`` degrees: the segment sampled finely and splatted
    bilinearly, so fractional lengths and any angle give a smooth, centred kernel."""
    if not math.isfinite(length) or length < 1:
        raise KernelError(f"a motion kernel needs a length of at least 1 pixel; got {length}")
    if not math.isfinite(angle):
        raise KernelError(f"a motion kernel needs a finite angle; got {angle}")
    r = math.ceil(length / 2) + 1
    if 2 * r + 1 > MAX_KERNEL:
        raise KernelError(f"length {length} makes a kernel wider than {MAX_KERNEL} pixels")
    size = 2 * r + 1
    k = np.zeros((size, size), np.float64)
    a = math.radians(angle)
    n = max(2, int(length * 8))
    for s in np.linspace(-length / 2, length / 2, n):
        x, y = r + s * math.cos(a), r - s * math.sin(a)  # image rows grow downwards
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                k[y0 + dy, x0 + dx] += wx * wy
    return (k / k.sum()).astype(np.float32)


def kernel_from_image(path: str | Path) -> np.ndarray:
    """A grey image (colour is averaged) normalised to sum 1, padded to odd sides with zeros."""
    p = Path(path)
    if not p.is_file():
        raise KernelError(f"the kernel image {path} does not exist")
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise KernelError(f"the kernel image {path} cannot be read as an image")
    k = raw.astype(np.float64)
    if k.ndim == 3:
        k = k[..., :3].mean(axis=2)
    if k.min() < 0 or not np.isfinite(k).all():
        raise KernelError(f"the kernel image {path} has negative or non-finite values")
    if k.sum() <= 0:
        raise KernelError(f"the kernel image {path} is all black: a kernel must have some weight")
    if max(k.shape) > MAX_KERNEL:
        raise KernelError(f"the kernel image {path} is larger than {MAX_KERNEL} pixels per side")
    k = np.pad(k, ((0, 1 - k.shape[0] % 2), (0, 1 - k.shape[1] % 2)))
    return (k / k.sum()).astype(np.float32)


def parse_kernel_spec(spec: str) -> dict[str, Any]:
    """``gaussian:SIGMA``, ``motion:LENGTH,ANGLE`` or a path -> the deblur task's parameters (checked by
    building the kernel, so a bad spec fails here, before any photo is read)."""
    text = str(spec).strip()
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if sep and kind in ("gaussian", "motion"):
        try:
            nums = [float(v) for v in rest.split(",")]
        except ValueError:
            raise KernelError(f"--kernel {spec!r}: the numbers after '{kind}:' are not numbers") from None
        if kind == "gaussian":
            if len(nums) != 1:
                raise KernelError(f"--kernel {spec!r}: write gaussian:SIGMA (one number), e.g. gaussian:2")
            params: dict[str, Any] = {"kernel": "gaussian", "sigma": nums[0]}
        else:
            if len(nums) != 2:
                raise KernelError(f"--kernel {spec!r}: write motion:LENGTH,ANGLE (two numbers), e.g. motion:9,30")
            params = {"kernel": "motion", "length": nums[0], "angle": nums[1]}
    elif not text:
        raise KernelError("--kernel is empty: give gaussian:SIGMA, motion:LENGTH,ANGLE or a kernel image")
    elif sep and kind.isalpha() and len(kind) > 1 and not Path(text).exists():
        raise KernelError(
            f"--kernel {spec!r}: unknown kind {kind!r}; use gaussian:SIGMA, motion:LENGTH,ANGLE or a path"
        )
    else:
        params = {"kernel": "file", "kernel_file": text}
    make_kernel(params)
    return params


def make_kernel(params: Mapping[str, Any]) -> np.ndarray:
    """The kernel the deblur task's parameters describe."""
    kind = params.get("kernel", "gaussian")
    if kind == "gaussian":
        return gaussian_kernel(float(params.get("sigma", 2.0)))
    if kind == "motion":
        return motion_kernel(float(params.get("length", 9.0)), float(params.get("angle", 0.0)))
    if kind == "file":
        path = str(params.get("kernel_file", "") or "")
        if not path:
            raise KernelError("the kernel kind is 'file' but no kernel image is given")
        return kernel_from_image(path)
    raise KernelError(f"unknown kernel kind {kind!r}; use one of {', '.join(KERNEL_KINDS)}")


def scaled_kernel(params: Mapping[str, Any], scale: float) -> np.ndarray:
    """The kernel ``params`` describe, for the photo resized by ``scale`` (a working size's downscale).

    A blur of sigma pixels on the photo is one of ``sigma * scale`` pixels on the downscaled photo, and a
    motion of ``length`` pixels one of ``length * scale`` (at least 1); with the unscaled kernel the downscaled
    problem would ask for a sharper image than the photo holds. A kernel image is resampled by area."""
    if scale == 1:
        return make_kernel(params)
    kind = params.get("kernel", "gaussian")
    if kind == "gaussian":
        return gaussian_kernel(float(params.get("sigma", 2.0)) * scale)
    if kind == "motion":
        return motion_kernel(max(1.0, float(params.get("length", 9.0)) * scale), float(params.get("angle", 0.0)))
    return resample_kernel(make_kernel(params), scale)


def resample_kernel(kernel: np.ndarray, scale: float) -> np.ndarray:
    """A kernel array for the photo resized by ``scale``: resampled by area to odd sides, summing to 1."""
    k = np.asarray(kernel, dtype=np.float32)
    if scale == 1:
        return k
    side = [max(1, round(n * scale)) | 1 for n in k.shape]  # odd, as every kernel is
    small = np.clip(cv2.resize(k, (side[1], side[0]), interpolation=cv2.INTER_AREA), 0, None)
    if small.ndim != 2 or small.sum() <= 0:  # resampled to nothing: a point, the smallest blur there is
        small = np.zeros((side[0], side[1]), np.float32)
        small[side[0] // 2, side[1] // 2] = 1
    return (small / small.sum()).astype(np.float32)


def describe_kernel(params: Mapping[str, Any]) -> str:
    """The spec ``--kernel`` would take for these parameters."""
    kind = params.get("kernel", "gaussian")
    if kind == "gaussian":
        return f"gaussian:{params.get('sigma', 2.0):g}"
    if kind == "motion":
        return f"motion:{params.get('length', 9.0):g},{params.get('angle', 0.0):g}"
    return str(params.get("kernel_file", ""))
