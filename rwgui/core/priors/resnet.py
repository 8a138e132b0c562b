"""ResNet without down-sampling: residual blocks at the photo's own resolution.

The residual network (He et al., CVPR 2016) as the Deep Image Prior paper (Ulyanov et al., CVPR 2018) compares
it with its hourglass: no pooling, no strides, every convolution at full size, so the network sees only as far
as its stacked 3x3 kernels reach (19 convolutions: 19 pixels each way with the defaults). A 3x3 convolution and
LeakyReLU lift the input code to ``width`` channels; each block adds conv -> BatchNorm -> LeakyReLU -> conv ->
BatchNorm to its input; a conv -> BatchNorm closes the trunk and a 3x3 convolution with a sigmoid makes the photo.

Defaults: 8 blocks of 32 channels (the paper's inpainting comparison), 3x3 convolutions, reflection padding,
LeakyReLU(0.2), BatchNorm, a sigmoid output. Any size works (``size_multiple`` 1). Its cost grows with
``blocks * width**2`` at full resolution: raising it to 128 channels costs about 16 times as much per pixel.
"""

from __future__ import annotations

import torch
from torch import nn

from .skip import _act, _unit, conv_block

HELP = (
    "ResNet without down-sampling (the paper's comparison): only local context, so it recovers texture "
    "but fills little and leaves low-frequency noise; for comparisons more than for results."
)


class _Block(nn.Module):
    """x + (conv -> BN -> act -> conv -> BN)(x)."""

    def __init__(self, width: int, kernel: int, opts: dict) -> None:
        super().__init__()
        layers = _unit(width, width, kernel, opts)
        layers.append(conv_block(width, width, kernel, pad=opts["pad"], bias=opts["bias"]))
        if opts["batch_norm"]:
            layers.append(nn.BatchNorm2d(width))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet(nn.Module):
    """The residual generator at constant resolution."""

    size_multiple = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        blocks: int = 8,
        width: int = 32,
        filter_size: int = 3,
        pad: str = "reflection",
        act: str = "LeakyReLU",
        batch_norm: bool = True,
        bias: bool = True,
        sigmoid: bool = True,
    ) -> None:
        super().__init__()
        opts = {"pad": pad, "bias": bias, "downsample": "stride", "batch_norm": batch_norm, "act": act}
        k = filter_size
        layers: list[nn.Module] = [conv_block(in_channels, width, k, pad=pad, bias=bias), _act(act)]
        layers += [_Block(width, k, opts) for _ in range(blocks)]
        layers.append(conv_block(width, width, k, pad=pad, bias=bias))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(conv_block(width, out_channels, k, pad=pad, bias=bias))
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
