"""Random-weights loss priors (Zhou et al., 2023): frozen random networks as a loss constraint.

The engine adds ``λ · (1/K) Σ_k mean|R_k(A x) − R_k(y)|`` to the DIP data term. Each ``R_k`` is a small
network whose weights are drawn from a seeded generator and never trained; comparing images through it
weights the residual by structure (edges, textures, low-pass content) that plain MSE does not see.

Re-draw rule: the weights used at iteration ``i`` are draw number ``n = i // R`` (``n = 0`` when ``R == 0``),
drawn from a generator seeded with ``seed + n``. Stepping through iterations 0, 1, 2, ... therefore re-draws
exactly when ``i > 0 and i % R == 0``, and the weights at any iteration depend only on ``(seed, i)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError
from .params import Param, Registry

INITS = ("normal", "uniform", "kaiming", "xavier", "orthogonal")
_SLOPE = 0.2  # LeakyReLU slope between random layers


class LossPrior(nn.Module):
    """K frozen random networks compared on ``A x`` and ``y``; holds no trainable parameter."""

    def __init__(
        self,
        make_net: Callable[[], nn.Module],
        *,
        name: str,
        weight: float,
        count: int,
        redraw_every: int,
        init: str,
        seed: int,
        device: torch.device | str,
    ) -> None:
        super().__init__()
        self.name, self.weight, self.redraw_every, self.init, self.seed = name, weight, redraw_every, init, seed
        with torch.device("meta"):  # build shapes only: construction must not touch the global RNG
            nets = [make_net() for _ in range(count)]
        self.nets = nn.ModuleList(net.to_empty(device=torch.device(device)) for net in nets)
        self.requires_grad_(False).eval()
        self.draw_index = -1  # n of the weights in use (seed + n)
        self.draws = 0  # how many times weights were drawn, the first draw included
        self._cache_key: tuple[Any, ...] | None = None
        self._cache: list[Tensor] = []
        self.redraw(0)

    @torch.no_grad()
    def redraw(self, n: int) -> None:
        """Draw every weight of every network afresh from a generator seeded with ``seed + n``.

        The draws are on the CPU (the same weights on every device). On CUDA they go up from pinned memory
        without blocking: a copy from pageable memory waits for the device, once per redraw, in the loop.
        The pinned block is not reused before its copy ends (torch's pinned allocator records the copy)."""
        gen = torch.Generator().manual_seed(self.seed + n)  # CPU draws: same weights on every device
        for net in self.nets:
            for p in net.parameters():
                drawn = _draw(p.shape, self.init, gen)
                if p.device.type == "cuda":
                    drawn = drawn.pin_memory()
                p.copy_(drawn, non_blocking=p.device.type == "cuda")
            if isinstance(net, _Drawn):
                net.after_draw()
        self.draw_index, self.draws, self._cache_key = n, self.draws + 1, None

    def forward(self, ax: Tensor, y: Tensor, iteration: int = 0) -> Tensor:
        """The weighted term ``λ·(1/K)·Σ_k mean|R_k(ax) − R_k(y)|`` as a float32 scalar."""
        n = iteration // self.redraw_every if self.redraw_every > 0 else 0
        if n != self.draw_index:
            self.redraw(n)
        targets = self._targets(y)
        terms = [(net(ax).float() - t).abs().mean() for net, t in zip(self.nets, targets)]
        return self.weight * torch.stack(terms).mean()

    def _targets(self, y: Tensor) -> list[Tensor]:
        """``R_k(y)``, cached: y is fixed for a run, so it is recomputed only after a re-draw or a change."""
        dev = y.device.type
        key = (
            y.data_ptr(),
            y._version,
            tuple(y.shape),
            y.dtype,
            y.device,
            self.draw_index,
            torch.is_autocast_enabled(dev),
            torch.get_autocast_dtype(dev),
        )
        if key != self._cache_key:
            with torch.no_grad():
                self._cache = [net(y).float() for net in self.nets]
            self._cache_key = key
        return self._cache

    def extra_repr(self) -> str:
        return f"name={self.name}, weight={self.weight}, redraw_every={self.redraw_every}, init={self.init}"


def total_variation(x: Tensor) -> Tensor:
    """Anisotropic TV, mean|dx| + mean|dy|: the DIP-TV regulariser (engine adds ``tv_weight * tv(x)``)."""
    return (x[..., :, 1:] - x[..., :, :-1]).abs().mean() + (x[..., 1:, :] - x[..., :-1, :]).abs().mean()


def _draw(shape: torch.Size, init: str, gen: torch.Generator) -> Tensor:
    """One random tensor. Matrices/kernels follow ``init`` scaled by fan-in so depth does not blow up
    magnitudes; vectors (biases) are zero so ``R(0) = 0`` and scale is set by the weights alone."""
    t = torch.empty(shape)
    if t.dim() < 2:
        return t.zero_()
    fan_in = t[0].numel()
    if init == "normal":
        return nn.init.normal_(t, 0.0, 1.0 / math.sqrt(fan_in), generator=gen)
    if init == "uniform":
        bound = math.sqrt(3.0 / fan_in)  # same variance as "normal"
        return nn.init.uniform_(t, -bound, bound, generator=gen)
    if init == "kaiming":
        return nn.init.kaiming_normal_(t, a=_SLOPE, nonlinearity="leaky_relu", generator=gen)
    if init == "xavier":
        return nn.init.xavier_normal_(t, generator=gen)
    if init == "orthogonal":
        return nn.init.orthogonal_(t, generator=gen)
    raise ConfigError(f"init must be one of {', '.join(INITS)}; got {init!r}")


class _Drawn(nn.Module):
    """A network that post-processes its freshly drawn weights (e.g. normalises them)."""

    def after_draw(self) -> None:  # pragma: no cover - default does nothing
        pass


def _conv(cin: int, cout: int, k: int, **kw: Any) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=False, **kw)


def _stack(layers: list[nn.Module]) -> nn.Sequential:
    """Layers with a LeakyReLU between consecutive ones (none after the last)."""
    out: list[nn.Module] = []
    for i, layer in enumerate(layers):
        out += [nn.LeakyReLU(_SLOPE)] * (i > 0) + [layer]
    return nn.Sequential(*out)


def _convs(cin: int, width: int, depth: int, k: int) -> nn.Sequential:
    return _stack([_conv(cin if i == 0 else width, width, k) for i in range(depth)])


class CDConv(nn.Module):
    """Central difference convolution: ``conv(x) − θ·(Σ_spatial w)·x``, i.e. a gradient-like response."""

    def __init__(self, cin: int, cout: int, k: int, theta: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        self.theta = theta

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2)
        if self.theta:
            out = out - self.theta * F.conv2d(x, self.weight.sum((2, 3), keepdim=True))
        return out


class _Coupling(nn.Module):
    """Affine coupling ``b ← b·exp(½·tanh s(a)) + ½·t(a)``. Bounded, halved scale and shift keep random
    couplings from amplifying magnitudes, so even depth 8 inverts to ~1e-5 in float32."""

    def __init__(self, half: int, width: int, k: int) -> None:
        super().__init__()
        self.net = _stack([_conv(half, width, k), _conv(width, 2 * half, k)])

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        s, t = self.net(a).chunk(2, 1)
        return b * torch.exp(0.5 * torch.tanh(s)) + 0.5 * t

    def inverse(self, a: Tensor, c: Tensor) -> Tensor:
        s, t = self.net(a).chunk(2, 1)
        return (c - 0.5 * t) * torch.exp(-0.5 * torch.tanh(s))


class InvertibleNet(nn.Module):
    """Affine coupling layers alternating halves. Odd channel counts get one extra channel, the channel
    mean (a fixed lift), so the halves are equal; ``inverse`` drops it again."""

    def __init__(self, channels: int, depth: int, width: int, k: int) -> None:
        super().__init__()
        self.channels, half = channels, (channels + 1) // 2
        self.couplings = nn.ModuleList(_Coupling(half, width, k) for _ in range(depth))

    def forward(self, x: Tensor) -> Tensor:
        if self.channels % 2:
            x = torch.cat([x, x.mean(1, keepdim=True)], 1)
        a, b = x.chunk(2, 1)
        for i, c in enumerate(self.couplings):
            a, b = (a, c(a, b)) if i % 2 == 0 else (c(b, a), b)
        return torch.cat([a, b], 1)

    def inverse(self, z: Tensor) -> Tensor:
        a, b = z.chunk(2, 1)
        for i in reversed(range(len(self.couplings))):
            c = cast(_Coupling, self.couplings[i])  # ModuleList's items are typed as plain nn.Module
            a, b = (a, c.inverse(a, b)) if i % 2 == 0 else (c.inverse(b, a), b)
        return torch.cat([a, b], 1)[:, : self.channels]


class TaylorNet(nn.Module):
    """Taylor unfolding: ``F(x) + Σ_{k=1..order} G_k(x)/k!`` with ``G_k = g^k(F(x))``, ``g`` one small random
    block applied k times, so higher orders add ever finer (and smaller) corrections to the mapping F."""

    def __init__(self, channels: int, depth: int, width: int, k: int, order: int) -> None:
        super().__init__()
        self.f = _convs(channels, width, depth, k)
        self.g = _stack([_conv(width, width, k), _conv(width, width, k)])
        self.order = order

    def forward(self, x: Tensor) -> Tensor:
        out = term = self.f(x)
        for k in range(1, self.order + 1):
            term = self.g(term)
            out = out + term / math.factorial(k)
        return out


class ZeroOrderNet(_Drawn):
    """Stacked random low-pass filters: non-negative kernels normalised to sum 1 (weighted averages)."""

    def __init__(self, channels: int, depth: int, width: int, k: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(_conv(channels if i == 0 else width, width, k, padding_mode="replicate") for i in range(depth))
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    @torch.no_grad()
    def after_draw(self) -> None:
        for p in self.parameters():
            p.abs_().div_(p.sum((1, 2, 3), keepdim=True).clamp_min(1e-12))


class _Block(nn.Module):
    """One attention layer (random q, k, v, output and MLP weights) with residual connections."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim, bias=False), nn.GELU(), nn.Linear(2 * dim, dim, bias=False))

    def forward(self, t: Tensor) -> Tensor:
        b, n, d = t.shape
        q, k, v = self.qkv(t).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        t = t + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))
        return t + self.mlp(t)


class TransformerNet(nn.Module):
    """Conv stem, patch embedding (strided conv), token grid pooled to at most ``grid``² tokens so attention
    stays cheap at 512², then random self-attention layers. No LayerNorm: it amplifies gradients on flat
    (black) patches."""

    def __init__(self, channels: int, depth: int, width: int, k: int, patch: int, heads: int, grid: int) -> None:
        super().__init__()
        self.patch, self.grid = patch, grid
        self.stem = _conv(channels, width, k)
        self.embed = nn.Conv2d(width, width, patch, stride=patch, bias=False)
        self.blocks = nn.Sequential(*(_Block(width, heads) for _ in range(depth)))

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.stem(x), _SLOPE)
        p = self.patch
        h = F.pad(h, (0, -h.shape[-1] % p, 0, -h.shape[-2] % p), mode="replicate")  # no pixel left out
        e = self.embed(h)
        if max(e.shape[-2:]) > self.grid:
            e = F.adaptive_avg_pool2d(e, (min(e.shape[-2], self.grid), min(e.shape[-1], self.grid)))
        return self.blocks(e.flatten(2).transpose(1, 2))


# ---- registry -------------------------------------------------------------------------------------------

LOSS_PRIORS: Registry[LossPrior] = Registry("loss prior")


def _common_params(depth: int, width: int, kernel_size: int) -> list[Param]:
    """The parameters every loss prior has; defaults of the architecture ones differ per variant."""
    return [
        Param("weight", "float", 0.1, "λ: weight of the prior term against the data term", 0.0, 100.0, log=True),
        Param("count", "int", 1, "K: random networks averaged (more = smoother, slower)", 1, 8),
        Param("redraw_every", "int", 0, "R: draw fresh weights every R iterations (0 = never)", 0, 1_000_000),
        Param("init", "choice", "kaiming", "distribution the random weights are drawn from", choices=INITS),
        Param("depth", "int", depth, "layers of each random network", 1, 8),
        Param("width", "int", width, "feature channels of each random network", 4, 128),
        Param("kernel_size", "int", kernel_size, "spatial kernel size (odd)", 1, 7),
    ]


def _variant(name: str, help: str, depth: int, width: int, kernel_size: int, extra: tuple[Param, ...] = ()):
    """Register ``make_net(channels, depth, width, k, **extra)`` as a loss prior named ``name``."""

    def deco(make_net: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        def factory(
            *,
            channels: int,
            seed: int,
            device: torch.device | str,
            weight: float,
            count: int,
            redraw_every: int,
            init: str,
            depth: int,
            width: int,
            kernel_size: int,
            **extra_values: Any,
        ) -> LossPrior:
            if kernel_size % 2 == 0:
                raise ConfigError(f"{name}.kernel_size must be odd; got {kernel_size}")
            if channels < 1:
                raise ConfigError(f"{name} needs at least one image channel; got {channels}")
            return LossPrior(
                lambda: make_net(channels, depth, width, kernel_size, **extra_values),
                name=name,
                weight=weight,
                count=count,
                redraw_every=redraw_every,
                init=init,
                seed=seed,
                device=device,
            )

        LOSS_PRIORS.add(name, help, _common_params(depth, width, kernel_size) + list(extra))(factory)
        return make_net

    return deco


@_variant(
    "cdc",
    "central difference convolutions: compares gradients/edges",
    3,
    16,
    3,
    (Param("theta", "float", 0.7, "θ: share of the central difference (0 = plain conv)", 0.0, 1.0),),
)
def _cdc(channels: int, depth: int, width: int, k: int, theta: float) -> nn.Module:
    return _stack([CDConv(channels if i == 0 else width, width, k, theta) for i in range(depth)])


@_variant("inn", "invertible affine-coupling net: loses no information about the image", 4, 16, 3)
def _inn(channels: int, depth: int, width: int, k: int) -> nn.Module:
    return InvertibleNet(channels, depth, width, k)


@_variant(
    "taylor",
    "Taylor-unfolding net: a mapping plus decaying higher-order terms",
    2,
    16,
    3,
    (Param("order", "int", 3, "number of higher-order terms", 1, 6),),
)
def _taylor(channels: int, depth: int, width: int, k: int, order: int) -> nn.Module:
    return TaylorNet(channels, depth, width, k, order)


@_variant("zero-order", "random low-pass (averaging) filters: compares smooth content", 2, 8, 3)
def _zero_order(channels: int, depth: int, width: int, k: int) -> nn.Module:
    return ZeroOrderNet(channels, depth, width, k)


@_variant("conv", "plain random convolutions with LeakyReLU", 3, 16, 3)
def _plain(channels: int, depth: int, width: int, k: int) -> nn.Module:
    return _convs(channels, width, depth, k)


@_variant(
    "transformer",
    "random self-attention over patch tokens: compares non-local structure",
    1,
    32,
    3,
    (
        Param("patch", "int", 8, "patch size of the token embedding", 2, 16),
        Param("heads", "int", 4, "attention heads (must divide width)", 1, 8),
        Param("grid", "int", 32, "largest token grid side; bigger grids are pooled down", 4, 64),
    ),
)
def _transformer(channels: int, depth: int, width: int, k: int, patch: int, heads: int, grid: int) -> nn.Module:
    if width % heads:
        raise ConfigError(f"transformer.width ({width}) must be a multiple of heads ({heads})")
    return TransformerNet(channels, depth, width, k, patch, heads, grid)


def build_loss_prior(
    name: str, params: dict[str, Any], *, channels: int, seed: int, device: torch.device | str
) -> LossPrior | None:
    """The configured prior, or None for ``"none"`` (the engine then skips the term)."""
    if name == "none":
        return None
    if name not in LOSS_PRIORS:
        raise ConfigError(f"unknown loss prior {name!r}; choose one of: none, {', '.join(LOSS_PRIORS.names())}")
    return LOSS_PRIORS.get(name).build(params, channels=channels, seed=seed, device=torch.device(device))
