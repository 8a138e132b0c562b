"""Input codes z for the generator: uniform noise, a meshgrid, or the observed photo itself."""

from __future__ import annotations

import torch
import torch.nn.functional as F

INPUT_CODES = ("noise", "meshgrid", "observed")


def make_input(
    code: str,
    depth: int,
    size: tuple[int, int],
    *,
    generator: torch.Generator,
    observed: torch.Tensor | None = None,
    image_size: tuple[int, int] | None = None,
    stride: int = 1,
) -> torch.Tensor:
    """A 1 x depth x H x W code on the CPU (the engine moves it).

    ``noise`` is U(0, 1) * 0.1 as in the paper; ``meshgrid`` is two channels of x/y coordinates in [0, 1]
    (depth is ignored); ``observed`` is the photo, bicubic-upsampled to ``image_size`` (super-resolution)
    and reflect-padded at the bottom and right to ``size``, the same place the engine crops the output
    from (the network then maps the photo to its restoration, which makes SURE's divergence defined).

    ``stride`` is the generator's :func:`input_stride`: a generator that upsamples a small code (the Deep
    Decoder) takes a code ``stride`` times smaller than ``size`` on each side, with the observed photo shrunk
    (antialiased) by as much, so each code works for every prior.
    """
    h, w = size
    if stride > 1:
        h, w = max(1, h // stride), max(1, w // stride)
        if image_size is None and observed is not None:
            image_size = (int(observed.shape[-2]), int(observed.shape[-1]))
        if image_size is not None:
            image_size = (max(1, round(image_size[0] / stride)), max(1, round(image_size[1] / stride)))
    if code == "noise":
        return torch.rand((1, depth, h, w), generator=generator) * 0.1
    if code == "meshgrid":
        ys = torch.linspace(0, 1, h).view(1, 1, h, 1).expand(1, 1, h, w)
        xs = torch.linspace(0, 1, w).view(1, 1, 1, w).expand(1, 1, h, w)
        return torch.cat([xs, ys], dim=1).contiguous()
    if code == "observed":
        if observed is None:
            raise ValueError("the 'observed' input code needs the observed photo")
        obs = observed.detach().float().cpu()
        ih, iw = image_size or tuple(obs.shape[-2:])
        if obs.shape[-2:] != (ih, iw):
            shrink = ih < obs.shape[-2] or iw < obs.shape[-1]
            obs = F.interpolate(obs, size=(ih, iw), mode="bicubic", align_corners=False, antialias=shrink).clamp(0, 1)
        pad_h, pad_w = h - ih, w - iw
        mode = "reflect" if pad_h < ih and pad_w < iw else "replicate"
        return F.pad(obs, (0, pad_w, 0, pad_h), mode=mode).contiguous()
    raise ValueError(f"unknown input code {code!r}")


def input_stride(net: torch.nn.Module) -> int:
    """How many times smaller than its output a generator's input code is on each side (1 for most priors;
    the Deep Decoder declares ``input_stride``)."""
    return int(getattr(net, "input_stride", 1))


def input_channels(code: str, depth: int, image_channels: int) -> int:
    """Channels the generator's first layer must accept for this code."""
    if code == "meshgrid":
        return 2
    if code == "observed":
        return image_channels
    return depth
