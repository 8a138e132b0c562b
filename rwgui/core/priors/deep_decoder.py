"""The Deep Decoder: a small, under-parameterised generator of 1x1 convolutions and upsampling.

Heckel and Hand, "Deep Decoder: Concise Image Representations from Untrained Non-convolutional Networks"
(ICLR 2019). Layer i maps its input B_i to ``cn(ReLU(U_i(B_i C_i)))``: C_i is a 1x1 convolution (a linear
mix of the channels at each pixel, with no spatial kernel at all), U_i a bilinear upsampling by 2 (none in the
last layer), and cn channel normalisation: each channel of the layer's output is normalised to zero mean and
unit variance over the image and then scaled and shifted by two learned numbers, which for a single image is
BatchNorm in training mode. A last 1x1 convolution and a sigmoid make the photo.

The input is small: a fixed random code at the coarsest scale, ``2 ** (layers - 1)`` times smaller than the
output on each side (``input_stride``; the engine's input code is made at that size, see
:func:`rwgui.core.priors.inputs.make_input`), and the spatial structure comes from the upsampling alone.
With fewer weights than the photo has pixels the network cannot fit the noise, so it needs little or no
early stopping. It wants a fixed code, as in the paper: the other priors' input jitter (``reg_noise_std``,
1/30 in the denoising preset) moves its few code pixels, and so the whole picture, and cost 5-10 dB in
rwgui/bench/README.md ("Priors"), where it matches the skip network without it.

Defaults (the paper's, for 512x512 photos): 6 layers of 64 channels, bilinear upsampling, no convolution
biases (the normalisation's shift is the only offset), a sigmoid output: about 24 000 weights against about
2.2 million for the skip network. The output's sides are multiples of ``2 ** (layers - 1)``
(``size_multiple``; the engine pads).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .skip import _per_scale, upsample2x

HELP = (
    "Deep Decoder (Heckel and Hand 2019): 1x1 convolutions and upsampling from a tiny random code, far fewer "
    "weights than pixels, so it barely fits noise and needs little or no early stopping; run it with the input "
    "noise std (reg_noise_std) at 0."
)


class DeepDecoder(nn.Module):
    """The Deep Decoder; ``channels`` has one value (k for every layer) or one per layer."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        layers: int = 6,
        channels: Sequence[int] = (64,),
        upsample: str = "bilinear",
        bias: bool = False,
        sigmoid: bool = True,
    ) -> None:
        super().__init__()
        self.layers = layers
        widths = _per_scale(channels, layers, "channels")
        mods: list[nn.Module] = []
        cin = in_channels
        for i, k in enumerate(widths):
            mods.append(nn.Conv2d(cin, k, 1, bias=bias))
            if i < layers - 1:
                mods.append(upsample2x(upsample))
            mods.append(nn.ReLU(inplace=True))
            mods.append(nn.BatchNorm2d(k))  # channel normalisation: one image, so per channel over the pixels
            cin = k
        mods.append(nn.Conv2d(cin, out_channels, 1, bias=bias))
        if sigmoid:
            mods.append(nn.Sigmoid())
        self.body = nn.Sequential(*mods)

    @property
    def input_stride(self) -> int:
        """How many times smaller than the output the input code is on each side."""
        return 2 ** (self.layers - 1)

    @property
    def size_multiple(self) -> int:
        return self.input_stride

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
