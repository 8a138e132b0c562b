"""The Deep Image Prior hourglass: an encoder-decoder with optional skip connections per scale.

Written from the paper's description (Ulyanov et al., CVPR 2018, supplementary Fig. 1): each scale
downsamples by 2 with a conv (or conv + pool), runs a second conv, recurses, upsamples and concatenates a
skip branch before two more convs. Input height and width must be multiples of ``2 ** num_scales``;
:func:`rwgui.core.priors.padded_size` tells the caller what to generate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import nn


def _act(name: str) -> nn.Module:
    if name == "LeakyReLU":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "ReLU":
        return nn.ReLU(inplace=True)
    if name == "ELU":
        return nn.ELU(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


class _ReflectPad(nn.Module):
    """Reflection padding that falls back to replicate on maps too small to reflect (tiny images, deep nets)."""

    def __init__(self, p: int) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "reflect" if self.p < min(x.shape[-2:]) else "replicate"
        # autocast would run the pad in float32 (two casts of every activation per convolution); padding
        # only copies values, so it is exact in the input's own dtype
        with torch.autocast(x.device.type, enabled=False):
            return F.pad(x, (self.p,) * 4, mode=mode)


#: Route the 1x1 convolutions that torch would send to its slow generic kernel through a matrix product
#: (:class:`_Conv1x1`); False restores the plain convolution (the benchmark's A/B switch).
GEMM_1X1 = True


def _takes_slow_conv(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether torch (2.x, ``ConvParams::use_mkldnn`` in aten/src/ATen/native/Convolution.cpp) sends this
    1x1, stride-1, undilated, ungrouped convolution to its generic ``_slow_conv2d`` (``thnn_conv2d``) instead of
    oneDNN: a float32 CPU tensor, with oneDNN off, or on one thread with a batch under 16 ("THNN is faster when
    single-threaded"), or with a batch of 1 and at most 20480 values. Under autocast the input is cast to a
    lower precision first and goes to oneDNN."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32 or x.dim() != 4:
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    if not torch.backends.mkldnn.is_available() or not torch.backends.mkldnn.enabled:
        return x.shape[0] < 16  # NNPACK takes NCHW batches of 16 and more
    n = x.shape[0]
    return (n < 16 and torch.get_num_threads() == 1) or (n == 1 and x.numel() <= 20480)


class _Conv1x1(nn.Conv2d):
    """A 1x1 convolution (stride 1, no padding) that computes, where torch would run its slow generic kernel
    (:func:`_takes_slow_conv`: float32 on one CPU thread, the default on a busy or float32-only CPU), as the
    matrix product over channels that kernel computes, without its overheads (zero fills of the gradient
    buffers, its channels-last handling): ``addmm`` of the (pixels, channels) matrix in channels-last, of the
    (channels, pixels) one in NCHW.
    The same BLAS products in the same order: outputs and gradients were bit-identical to the plain
    convolution in float32 (tests/test_conv_paths.py allows 1e-6). Elsewhere (oneDNN, autocast, a GPU,
    ``torch.compile``) it is the plain convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.weight, self.bias
        if not GEMM_1X1 or torch.compiler.is_compiling() or not _takes_slow_conv(x, w):
            return super().forward(x)
        n, c, h, wd = x.shape
        w2 = w.view(w.shape[0], c)
        nhwc = x.permute(0, 2, 3, 1)
        if nhwc.is_contiguous():  # channels-last: a (pixels, channels) matrix times the weights' transpose
            rows = nhwc.view(n * h * wd, c)
            y = torch.mm(rows, w2.t()) if b is None else torch.addmm(b, rows, w2.t())
            return y.view(n, h, wd, -1).permute(0, 3, 1, 2)
        if n == 1 and x.is_contiguous():  # NCHW: the weights times one (channels, pixels) matrix
            cols = x.view(c, h * wd)
            y = torch.mm(w2, cols) if b is None else torch.addmm(b[:, None], w2, cols)
            return y.view(1, -1, h, wd)
        return super().forward(x)


def conv_block(
    cin: int,
    cout: int,
    kernel: int,
    *,
    stride: int = 1,
    pad: str = "reflection",
    bias: bool = True,
    downsample: str = "stride",
) -> nn.Sequential:
    """Conv with 'same' padding; ``stride`` 2 downsamples by a strided conv or by avg/max pooling after it."""
    layers: list[nn.Module] = []
    pool: nn.Module | None = None
    if stride != 1 and downsample != "stride":
        pool = nn.AvgPool2d(stride, stride) if downsample == "avg" else nn.MaxPool2d(stride, stride)
        stride = 1
    p = (kernel - 1) // 2
    if pad == "reflection" and p > 0:
        layers.append(_ReflectPad(p))
        p = 0
    conv = _Conv1x1 if kernel == 1 and stride == 1 and p == 0 else nn.Conv2d
    layers.append(conv(cin, cout, kernel, stride, padding=p, bias=bias))
    if pool is not None:
        layers.append(pool)
    return nn.Sequential(*layers)


def _unit(cin: int, cout: int, kernel: int, opts: dict, *, stride: int = 1) -> list[nn.Module]:
    """conv -> (BatchNorm) -> activation."""
    mods: list[nn.Module] = [
        conv_block(cin, cout, kernel, stride=stride, pad=opts["pad"], bias=opts["bias"], downsample=opts["downsample"])
    ]
    if opts["batch_norm"]:
        mods.append(nn.BatchNorm2d(cout))
    mods.append(_act(opts["act"]))
    return mods


def output_head(conv: nn.Module, sigmoid: bool) -> nn.Sequential:
    """The generators' last layer: ``conv`` to the image's channels, then a sigmoid into [0, 1] unless the
    setting turns it off (the state dict names the convolution ``head.0`` either way)."""
    return nn.Sequential(conv, nn.Sigmoid()) if sigmoid else nn.Sequential(conv)


def upsample2x(mode: str) -> nn.Upsample:
    """Double the size: the generators' one upsampling layer (bilinear or nearest; never transposed
    convolutions, which print checkerboards). ``align_corners`` is given only where the mode takes it."""
    return nn.Upsample(scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))


class _DenseGrad(torch.autograd.Function):
    """The identity, whose backward hands on a dense gradient in the tensor's own memory format.

    The concatenation's backward gives each input a channel slice of its gradient; in channels-last that slice
    is strided, and bilinear upsampling's CPU backward takes a slow path on it: 66 ms against 7.8 ms for a dense
    one (plus 1.6 ms for the copy) at 128 channels, 256x256, bfloat16. In NCHW the slice is already dense."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        ctx.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        return x.as_strided(x.size(), x.stride())  # view_as would renumber the batch stride (size 1), and
        # the concatenation would then no longer see channels-last inputs

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=ctx.memory_format)


class _Spec(TypedDict):
    """Channels and kernel sizes of every scale (lists: one entry per scale)."""

    down: list[int]
    up: list[int]
    skip: list[int]
    k_down: list[int]
    k_up: list[int]
    k_skip: int


class _Scale(nn.Module):
    """One level of the hourglass: [skip ‖ down → deeper → up] → conv → 1x1 conv."""

    def __init__(self, cin: int, i: int, spec: _Spec, opts: dict) -> None:
        super().__init__()
        down, up, skip = spec["down"], spec["up"], spec["skip"]
        last = i == len(down) - 1
        self.skip = nn.Sequential(*_unit(cin, skip[i], spec["k_skip"], opts)) if skip[i] else None
        deeper: list[nn.Module] = _unit(cin, down[i], spec["k_down"][i], opts, stride=2)
        deeper += _unit(down[i], down[i], spec["k_down"][i], opts)
        if not last:
            deeper.append(_Scale(down[i], i + 1, spec, opts))
        deeper.append(upsample2x(opts["upsample"]))
        self.deeper = nn.Sequential(*deeper)
        k = down[i] if last else up[i + 1]
        joined = skip[i] + k
        self.join_bn = nn.BatchNorm2d(joined) if opts["batch_norm"] else nn.Identity()
        after: list[nn.Module] = _unit(joined, up[i], spec["k_up"][i], opts)
        if opts["conv1x1_up"]:
            after += _unit(up[i], up[i], 1, opts)
        self.after = nn.Sequential(*after)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.deeper(x)
        h = torch.cat([self.skip(x), _DenseGrad.apply(d)], dim=1) if self.skip is not None else d
        return self.after(self.join_bn(h))


def _per_scale(values: Sequence[int], n: int, what: str) -> list[int]:
    vals = list(values)
    if len(vals) == 1:
        return vals * n
    if len(vals) != n:
        from ..errors import ConfigError

        raise ConfigError(f"{what} needs 1 or {n} values (one per scale); got {len(vals)}")
    return vals


class SkipNet(nn.Module):
    """The DIP generator: hourglass with per-scale skip channels (0 disables a skip)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_scales: int = 5,
        channels_down: Sequence[int] = (128,),
        channels_up: Sequence[int] = (128,),
        channels_skip: Sequence[int] = (4,),
        filter_size_down: Sequence[int] = (3,),
        filter_size_up: Sequence[int] = (3,),
        filter_skip_size: int = 1,
        upsample: str = "bilinear",
        downsample: str = "stride",
        pad: str = "reflection",
        act: str = "LeakyReLU",
        batch_norm: bool = True,
        bias: bool = True,
        sigmoid: bool = True,
        conv1x1_up: bool = True,
    ) -> None:
        super().__init__()
        self.num_scales = num_scales
        spec: _Spec = {
            "down": _per_scale(channels_down, num_scales, "channels_down"),
            "up": _per_scale(channels_up, num_scales, "channels_up"),
            "skip": _per_scale(channels_skip, num_scales, "channels_skip"),
            "k_down": _per_scale(filter_size_down, num_scales, "filter_size_down"),
            "k_up": _per_scale(filter_size_up, num_scales, "filter_size_up"),
            "k_skip": filter_skip_size,
        }
        opts = {
            "pad": pad,
            "bias": bias,
            "downsample": downsample,
            "batch_norm": batch_norm,
            "act": act,
            "upsample": upsample,
            "conv1x1_up": conv1x1_up,
        }
        self.body = _Scale(in_channels, 0, spec, opts)
        self.head = output_head(conv_block(spec["up"][0], out_channels, 1, pad=pad, bias=bias), sigmoid)

    @property
    def size_multiple(self) -> int:
        return 2**self.num_scales

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z))
