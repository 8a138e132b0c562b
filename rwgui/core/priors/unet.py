"""U-Net: an encoder-decoder whose skip connections concatenate each encoder level with the decoder's.

After Ronneberger, Fischer and Brox (MICCAI 2015), as the Deep Image Prior paper compares it with its hourglass
(Ulyanov et al., CVPR 2018): every level runs two conv -> BatchNorm -> LeakyReLU blocks; the encoder halves the
size (max pooling by default) and the decoder upsamples (bilinear or nearest, no transposed convolutions, which
print checkerboards), convolves, and concatenates the encoder's map of the same size (all of its channels,
where the hourglass keeps a few through a 1x1 convolution) before two more blocks.

Defaults: 4 levels with 16, 32, 64, 128 and 256 channels (Ronneberger's 64 to 1024, divided by 4, as the
paper's comparison uses it), 3x3 convolutions, reflection padding, LeakyReLU(0.2), a sigmoid output. The
input's sides must be multiples of ``2 ** levels`` (``size_multiple``; the engine pads).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .skip import _DenseGrad, _per_scale, _unit, output_head, upsample2x

HELP = (
    "U-Net (skip connections by concatenation): passes every level's detail straight to the output, so it "
    "fits fine texture quickly; a sharp prior for denoising and small holes, stop it early."
)


class _Down(nn.Module):
    """One level down: halve the size (pooling, or a strided first convolution), then two blocks."""

    def __init__(self, cin: int, cout: int, kernel: int, opts: dict) -> None:
        super().__init__()
        mode = opts["downsample"]
        layers: list[nn.Module] = []
        if mode == "stride":
            layers += _unit(cin, cout, kernel, opts, stride=2)
        else:
            layers.append(nn.MaxPool2d(2) if mode == "max" else nn.AvgPool2d(2))
            layers += _unit(cin, cout, kernel, opts)
        layers += _unit(cout, cout, kernel, opts)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Up(nn.Module):
    """One level up: upsample and convolve to the level's channels, concatenate the encoder's map, two blocks."""

    def __init__(self, cin: int, cout: int, kernel: int, opts: dict) -> None:
        super().__init__()
        self.up = nn.Sequential(upsample2x(opts["upsample"]), *_unit(cin, cout, kernel, opts))
        self.after = nn.Sequential(*_unit(2 * cout, cout, kernel, opts), *_unit(cout, cout, kernel, opts))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # the dense-gradient identity keeps the concatenation's backward fast in channels-last (see skip.py)
        return self.after(torch.cat([_DenseGrad.apply(skip), _DenseGrad.apply(self.up(x))], dim=1))


class UNet(nn.Module):
    """The U-Net generator; ``channels`` has one value, or one per level from the full-size one down
    (``levels + 1``; extra values are ignored, so lowering ``levels`` keeps the listed widths)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        levels: int = 4,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        filter_size: int = 3,
        upsample: str = "bilinear",
        downsample: str = "max",
        pad: str = "reflection",
        act: str = "LeakyReLU",
        batch_norm: bool = True,
        bias: bool = True,
        sigmoid: bool = True,
    ) -> None:
        super().__init__()
        self.levels = levels
        widths = list(channels)[: levels + 1] if len(channels) > levels + 1 else channels
        ch = _per_scale(widths, levels + 1, "channels")
        opts = {
            "pad": pad,
            "bias": bias,
            "downsample": downsample,
            "batch_norm": batch_norm,
            "act": act,
            "upsample": upsample,
        }
        k = filter_size
        self.stem = nn.Sequential(*_unit(in_channels, ch[0], k, opts), *_unit(ch[0], ch[0], k, opts))
        self.downs = nn.ModuleList(_Down(ch[i], ch[i + 1], k, opts) for i in range(levels))
        self.ups = nn.ModuleList(_Up(ch[i + 1], ch[i], k, opts) for i in reversed(range(levels)))
        self.head = output_head(nn.Conv2d(ch[0], out_channels, 1, bias=bias), sigmoid)

    @property
    def size_multiple(self) -> int:
        return 2**self.levels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.stem(z)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the deepest map is x itself
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)
