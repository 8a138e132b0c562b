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

    def data_loss(self, ax: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The data term between ``A(x)`` and the observation: the mean squared error for every operator but
        one (the pre-image's class maximisation ignores ``y``), so the engine asks the operator."""
        return F.mse_loss(ax, y)


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


# --- the operators of the tasks beyond denoising, super-resolution and inpainting ----------------------


class Blur(Operator):
    """Deblurring: convolution with a known kernel (odd-sized, sum 1), same size in and out.

    Boundary model: the image is continued past its edges by mirroring (reflect padding; replicate when the
    kernel is larger than the image), then convolved "valid", so the result has the image's size and nothing
    leaves one edge to enter at the opposite one, as a circular (FFT) model would make it. The tests and the
    benchmark make their blurred photos with this same operator (:func:`~rwgui.core.problems.blur`), so the
    model is exact there; on a real blurred photo only a band of half the kernel's width at the border
    differs from it.
    """

    name = "blur"
    kernel: torch.Tensor  # a registered buffer

    def __init__(self, kernel: np.ndarray | torch.Tensor, channels: int) -> None:
        super().__init__()
        k = torch.as_tensor(np.asarray(kernel, dtype=np.float32))
        if k.dim() != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
            raise ValueError("the kernel must be a 2-D array of odd height and width")
        self.channels = channels
        # conv2d correlates: the kernel is flipped so that forward() is a true convolution
        flipped = torch.flip(k, dims=(0, 1))
        self.register_buffer("kernel", flipped.expand(channels, 1, *k.shape).contiguous())
        self.pad_hw = (k.shape[0] // 2, k.shape[1] // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.pad_hw
        mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
        x = F.pad(x, (pw, pw, ph, ph), mode=mode)
        return F.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)


#: ImageNet's channel means and standard deviations: every torchvision classifier was trained on inputs
#: normalised by them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Features(Operator):
    """Natural pre-image: the map from an image to a classifier's activations at one layer (or its logits).

    With ``class_index`` < 0 the data term is the mean squared distance between the restored image's features
    and the photo's (feature inversion). With a class the observation is ignored and the data term is
    ``softplus(-logit)``: it pushes the class's logit up like ``-logit`` does, but stays positive, which the
    divergence guard needs (it compares losses by ratio).
    """

    name = "features"

    def __init__(self, net: nn.Module, class_index: int = -1) -> None:
        super().__init__()
        self.net = net
        self.class_index = int(class_index)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> Features:
        super().train(False)  # dropout and the like stay off: the classifier is a fixed function
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        mean, std = self.mean, self.std
        assert isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor)
        return self.net((x - mean.to(x.dtype)) / std.to(x.dtype))

    def data_loss(self, ax: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.class_index < 0:
            return F.mse_loss(ax, y)
        logits = ax.flatten(1)
        if self.class_index >= logits.shape[1]:
            raise ValueError(f"class {self.class_index} is out of range: the network has {logits.shape[1]} outputs")
        return F.softplus(-logits[:, self.class_index]).mean()
