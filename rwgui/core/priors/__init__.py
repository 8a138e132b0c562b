"""Generator architectures (the "prior" of Deep Image Prior) and their registry of named variants.

Each variant's parameter spec drives the GUI form, the CLI flags and the JSON config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ..params import Param, Registry
from . import deep_decoder, resnet, unet
from .deep_decoder import DeepDecoder
from .inputs import INPUT_CODES, input_channels, input_stride, make_input
from .resnet import ResNet
from .skip import SkipNet
from .unet import UNet

__all__ = [
    "PRIORS",
    "INPUT_CODES",
    "DeepDecoder",
    "ResNet",
    "SkipNet",
    "UNet",
    "build_prior",
    "input_channels",
    "input_stride",
    "make_input",
    "padded_size",
]

PRIORS: Registry[nn.Module] = Registry("prior")


def _hourglass_params(skip_default: tuple[int, ...]) -> list[Param]:
    """The knobs the paper's tasks turn; ``channels_skip`` differs between the two variants."""
    return [
        Param(
            "num_scales",
            "int",
            5,
            "Number of down/up-sampling levels; the image is padded to a multiple of 2^scales.",
            1,
            7,
        ),
        Param(
            "channels_down", "ints", (128,), "Channels per scale on the way down (one value or one per scale).", 1, 512
        ),
        Param("channels_up", "ints", (128,), "Channels per scale on the way up (one value or one per scale).", 1, 512),
        Param(
            "channels_skip",
            "ints",
            skip_default,
            "Channels of each skip connection (0 = no skip at that scale).",
            0,
            512,
        ),
        Param(
            "filter_size_down", "ints", (3,), "Convolution size on the way down (one value or one per scale).", 1, 11
        ),
        Param("filter_size_up", "ints", (3,), "Convolution size on the way up (one value or one per scale).", 1, 11),
        Param("filter_skip_size", "int", 1, "Convolution size in the skip connections.", 1, 11),
        Param("upsample", "choice", "bilinear", "How the decoder upsamples.", choices=("bilinear", "nearest")),
        Param("downsample", "choice", "stride", "How the encoder downsamples.", choices=("stride", "avg", "max")),
        Param("pad", "choice", "reflection", "Border padding of every convolution.", choices=("reflection", "zero")),
        Param("act", "choice", "LeakyReLU", "Activation after each convolution.", choices=("LeakyReLU", "ReLU", "ELU")),
        Param("batch_norm", "bool", True, "BatchNorm after each convolution."),
        Param("bias", "bool", True, "Convolutions have a bias."),
        Param("sigmoid", "bool", True, "Squash the output to [0, 1] with a sigmoid."),
        Param("conv1x1_up", "bool", True, "An extra 1x1 convolution after each upsampling convolution."),
    ]


def _skipnet(in_channels: int, out_channels: int, **params: Any) -> SkipNet:
    return SkipNet(in_channels, out_channels, **params)


PRIORS.add(
    "skip",
    "Hourglass with skip connections: the paper's default for denoising and super-resolution.",
    _hourglass_params((4,)),
)(_skipnet)
PRIORS.add(
    "hourglass",
    "The same hourglass without skip connections (encoder-decoder): said to work best for large holes.",
    _hourglass_params((0,)),
)(_skipnet)


# ----- the other architectures (each module's docstring gives its paper and defaults) -------------------------
# Knobs that several priors share (upsample, downsample, pad, act, batch_norm, bias, sigmoid) keep the skip
# network's name, kind and choices: the CLI has one flag per name, and a preset's knob carries to the new prior.
def _common(*, bias: bool = True) -> list[Param]:
    return [
        Param("pad", "choice", "reflection", "Border padding of every convolution.", choices=("reflection", "zero")),
        Param("act", "choice", "LeakyReLU", "Activation after each convolution.", choices=("LeakyReLU", "ReLU", "ELU")),
        Param("batch_norm", "bool", True, "BatchNorm after each convolution."),
        Param("bias", "bool", bias, "Convolutions have a bias."),
        Param("sigmoid", "bool", True, "Squash the output to [0, 1] with a sigmoid."),
    ]


PRIORS.add(
    "unet",
    unet.HELP,
    [
        Param("levels", "int", 4, "Down-sampling levels; the image is padded to a multiple of 2^levels.", 1, 7),
        Param(
            "channels",
            "ints",
            (16, 32, 64, 128, 256),
            "Channels per level from full size down (levels + 1 values, or one for all; extras are ignored).",
            1,
            512,
        ),
        Param("filter_size", "int", 3, "Convolution size.", 1, 11),
        Param("upsample", "choice", "bilinear", "How the decoder upsamples.", choices=("bilinear", "nearest")),
        Param("downsample", "choice", "max", "How the encoder downsamples.", choices=("stride", "avg", "max")),
        *_common(),
    ],
)(UNet)
PRIORS.add(
    "resnet",
    resnet.HELP,
    [
        Param("blocks", "int", 8, "Residual blocks (two convolutions each), all at full resolution.", 1, 32),
        Param("width", "int", 32, "Channels of every block.", 1, 512),
        Param("filter_size", "int", 3, "Convolution size.", 1, 11),
        *_common(),
    ],
)(ResNet)
PRIORS.add(
    "deep-decoder",
    deep_decoder.HELP,
    [
        Param(
            "layers",
            "int",
            6,
            "Layers; each but the last upsamples by 2, so the input code is 2^(layers-1) times smaller.",
            1,
            8,
        ),
        Param("channels", "ints", (64,), "Channels per layer (one value for all, or one per layer).", 1, 512),
        Param("upsample", "choice", "bilinear", "How each layer upsamples.", choices=("bilinear", "nearest")),
        Param("bias", "bool", False, "The 1x1 convolutions have a bias (the paper's have none)."),
        Param("sigmoid", "bool", True, "Squash the output to [0, 1] with a sigmoid."),
    ],
)(DeepDecoder)


def build_prior(name: str, params: Mapping[str, Any] | None, *, in_channels: int, out_channels: int) -> nn.Module:
    """Build the named generator; raises ConfigError for unknown names or bad values."""
    return PRIORS.get(name).build(params, in_channels=in_channels, out_channels=out_channels)


def padded_size(hw: tuple[int, int], multiple: int) -> tuple[int, int]:
    """Smallest size >= ``hw`` whose sides are multiples of ``multiple``."""
    return tuple(-(-s // multiple) * multiple for s in hw)  # type: ignore[return-value]
