"""Degradation operators A: the map from the restored image to what the camera gave us.

The engine fits ``A(f(z))`` to the observed photo ``y``; each operator is a small ``torch.nn.Module``
whose buffers follow the engine's device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Operator(nn.Module):
    """Base: ``forward(x)`` maps a 1xCxHxW image to the observation space."""

    name = "operator"

    def observed_size(self, hw: tuple[int, int]) -> tuple[int, int]:
        """Size (h, w) of the observation for a restored image of size ``hw``."""
        return hw


class Identity(Operator):
    """Denoising: the observation is the image itself (plus noise)."""

    name = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def lanczos_kernel_1d(factor: int, support: int = 2, phase: float = 0.5) -> np.ndarray:
    """Separable Lanczos-``support`` taps for downsampling by ``factor``, normalised to sum 1.

    With phase 1/2 (the paper's choice) the kernel has ``2 * support * factor`` taps, centred between
    pixels, so a stride-``factor`` convolution samples the centres of the low-resolution pixels.
    """
    width = 2 * support * factor + 1
    n = width - 1 if phase == 0.5 else width
    centre = (width + 1) / 2.0
    taps = np.empty(n, dtype=np.float64)
    for i in range(1, n + 1):
        d = abs(i + (0.5 if phase == 0.5 else 0.0) - centre) / factor
        if d == 0:
            taps[i - 1] = 1.0
        else:
            taps[i - 1] = support * math.sin(math.pi * d) * math.sin(math.pi * d / support) / (math.pi * d) ** 2
    return taps / taps.sum()


class LanczosDownsample(Operator):
    """Super-resolution: Lanczos-2 antialiasing then decimation by ``factor`` (phase 1/2, replicate padding)."""

    name = "lanczos2"
    kernel: torch.Tensor  # a registered buffer (declared so its type is a Tensor, not nn.Module's Tensor | Module)

    def __init__(self, factor: int, channels: int) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError("factor must be >= 1")
        self.factor = factor
        self.channels = channels
        taps = torch.tensor(lanczos_kernel_1d(factor), dtype=torch.float32)
        kernel = torch.outer(taps, taps)
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).contiguous())
        k = kernel.shape[0]
        self.pad = (k - 1) // 2 if k % 2 == 1 else (k - factor) // 2

    def observed_size(self, hw: tuple[int, int]) -> tuple[int, int]:
        return hw[0] // self.factor, hw[1] // self.factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        p = self.pad
        x = F.pad(x, (p, p, p, p), mode="replicate")
        return F.conv2d(x, self.kernel.to(x.dtype), stride=self.factor, groups=self.channels)


class PixelMask(Operator):
    """Inpainting: keep the known pixels (mask 1), zero the holes (mask 0)."""

    name = "mask"
    mask: torch.Tensor  # a registered buffer

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        if mask.dim() != 4 or mask.shape[0] != 1 or mask.shape[1] != 1:
            raise ValueError("mask must be 1x1xHxW")
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask.to(x.dtype)
