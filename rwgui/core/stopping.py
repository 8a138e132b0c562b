"""Stopping rules: find the best DIP iterate without ground truth.

A DIP run improves, peaks, then fits the noise. Each rule turns the stream of iterates into a scalar signal
whose minimum marks the peak, keeps the iteration of that minimum, and says stop once ``patience``
observations pass without a new one. That iteration is the rule's *pick*. The engine keeps the iterate
whenever a verdict says ``new_pick``, so a rule itself never stores full-resolution images.

A rule works in two halves so that the engine never waits for the device inside its loop: ``measure``
returns the signal as a 0-d tensor on the iterate's device (queued work, no host-device sync) and
``decide`` turns its value, fetched later together with the step's other numbers, into a verdict.
``observe`` does both at once.

Rules: ``fixed`` (latest iterate, no signal), ``es-wmv`` and ``es-emv`` (Wang et al., "Early Stopping for
Deep Image Prior": windowed / exponential moving variance of the iterates) and ``sure`` (Stein's unbiased
risk estimate for Gaussian denoising with a Monte-Carlo divergence, Ramani et al. 2008).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ConfigError
from .params import Param, Registry

__all__ = [
    "STOPPING_RULES",
    "Observation",
    "Verdict",
    "StoppingRule",
    "MinimumRule",
    "FixedRule",
    "WMVRule",
    "EMVRule",
    "SureRule",
    "SURE_PRIORS",
    "build_rule",
    "estimate_noise_sigma",
    "wmv_memory_cap",
]


@dataclass
class Observation:
    """What the engine reports after each step (tensors are 1xCxHxW on the engine's device)."""

    iteration: int
    output: torch.Tensor
    observed: torch.Tensor
    data_loss: float | torch.Tensor  # a 0-d tensor from the engine: reading it would wait for the device
    probe: Callable[[torch.Tensor], torch.Tensor] | None = None
    input_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Verdict:
    """A rule's answer to one observation."""

    signal: float | None
    pick_iteration: int | None  # the iteration judged best so far
    new_pick: bool  # this observation is the new pick
    stop: bool


class StoppingRule:
    """Base class: consumes observations, names the best iteration (its pick), says when to stop."""

    name: str = ""

    def measure(self, obs: Observation) -> torch.Tensor | None:
        """The signal for this iterate as a 0-d tensor on its device, or None (no signal yet)."""
        return None

    def decide(self, iteration: int, signal: float | None) -> Verdict:
        """The verdict once the signal's value is on the host; called in iteration order."""
        raise NotImplementedError

    def observe(self, obs: Observation) -> Verdict:
        t = self.measure(obs)
        return self.decide(obs.iteration, None if t is None else float(t))

    def reset(self) -> None:
        """Forget everything, ready for a new run."""

    @property
    def memory_bytes(self) -> int:
        """Bytes of tensor state the rule holds now."""
        return 0


STOPPING_RULES: Registry[StoppingRule] = Registry("stopping rule")

_PATIENCE = Param(
    "patience", "int", 1000, "stop after this many steps without a new minimum of the signal", min=1, max=1_000_000
)


def _burn_in(default: int) -> Param:
    return Param(
        "burn_in",
        "int",
        default,
        "iterations 1..burn_in are never picked as best (the signal is "
        "still computed); keep it short, the peak can come within a few hundred steps",
        min=0,
        max=1_000_000,
    )


_MAX_PIXELS = Param(
    "max_pixels",
    "int",
    65536,
    "above this many values the signal is computed on a fixed "
    "random subset of this many values, so memory stays bounded",
    min=1024,
    max=1 << 26,
    log=True,
)


@STOPPING_RULES.add("fixed", "no early stopping: keep the latest iterate and run the whole iteration budget")
class FixedRule(StoppingRule):
    """The latest iterate is always the best; the engine stops at its iteration budget."""

    name = "fixed"

    def decide(self, iteration: int, signal: float | None) -> Verdict:
        return Verdict(None, iteration, True, False)


class MinimumRule(StoppingRule):
    """Shared burn-in / minimum / patience logic; subclasses only compute the signal."""

    def __init__(self, patience: int, burn_in: int) -> None:
        self.patience = int(patience)
        self.burn_in = int(burn_in)
        self.reset()

    def measure(self, obs: Observation) -> torch.Tensor | None:
        raise NotImplementedError

    def _reset_signal(self) -> None:
        """Drop the subclass's signal state."""

    def reset(self) -> None:
        self._best_value = math.inf
        self._pick_iteration: int | None = None
        self._since_best = 0
        self._reset_signal()

    def decide(self, iteration: int, signal: float | None) -> Verdict:
        new_pick = signal is not None and iteration > self.burn_in and signal < self._best_value
        if new_pick and signal is not None:  # (``signal is not None`` again narrows the type for mypy)
            self._best_value, self._pick_iteration, self._since_best = signal, iteration, 0
        elif self._pick_iteration is not None:
            self._since_best += 1
        stop = self._pick_iteration is not None and self._since_best >= self.patience
        return Verdict(signal, self._pick_iteration, new_pick, stop)


class _Subset:
    """Flattens an iterate to float32, keeping a fixed seeded random subset when it is large.

    A random subset rather than an area-downscaled copy: the noise the network starts to reproduce is high
    frequency, and a k x k box average divides its variance by about k^2, flattening exactly the rise the
    rule must see. Each sampled value keeps its full variation, so the subset's variance is an unbiased
    estimate of the whole image's. The subset is fixed (seed 0) because the window compares the same
    pixels across steps. The reduced copy stays on the iterate's device (copying it to the host would be a
    sync every step), except on MPS, which has no float64 for the rules' running sums: there it goes to
    the CPU.
    """

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self.numel: int | None = None
        self.index: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().reshape(-1)
        if self.numel is None:
            self.numel = flat.numel()
            if self.numel > self.max_values:
                self.index = self._draw(self.numel, self.max_values)
        elif flat.numel() != self.numel:
            raise ValueError(f"iterate size changed from {self.numel} to {flat.numel()} values; reset the rule")
        if self.index is not None:
            if self.index.device != flat.device:
                self.index = self.index.to(flat.device)
            flat = flat.index_select(0, self.index)
        home = torch.device("cpu") if flat.device.type == "mps" else flat.device
        return flat.to(home, torch.float32, copy=True)

    @staticmethod
    def _draw(numel: int, k: int) -> torch.Tensor:
        """k distinct sorted indices below numel in O(k) memory (randperm(numel) would need 8*numel bytes)."""
        g = torch.Generator().manual_seed(0)
        idx = torch.empty(0, dtype=torch.long)
        while idx.numel() < k:
            idx = torch.unique(torch.cat([idx, torch.randint(numel, (k,), generator=g)]))
        return idx[torch.randperm(idx.numel(), generator=g)[:k]].sort().values

    @property
    def memory_bytes(self) -> int:
        return 0 if self.index is None else self.index.numel() * self.index.element_size()


def wmv_memory_cap(window: int = 100, max_pixels: int = 65536) -> int:
    """Upper bound of :class:`WMVRule`'s memory: float32 ring buffer, two float64 sums, int64 subset index."""
    return window * max_pixels * 4 + 2 * max_pixels * 8 + max_pixels * 8


@STOPPING_RULES.add(
    "es-wmv",
    "windowed moving variance of the iterates (Wang et al.); keeps the iterate where it is lowest",
    params=[
        Param("window", "int", 100, "number of recent iterates whose variance is measured", min=2, max=10_000),
        _PATIENCE,
        _burn_in(0),
        _MAX_PIXELS,
    ],
)
class WMVRule(MinimumRule):
    """ES-WMV: VAR_t = (1/W) sum_{i=t-W+1..t} ||x_i - mean||^2 / N, reported once the window is full.

    The best iterate for a window ending at t is x_t, the window's end: the engine can only copy the
    current iterate, and keeping the window's centre would need W full-resolution copies. Running float64
    sums of x and x^2 make each step O(N); float32 values square exactly in float64, and the sums are
    rebuilt from the ring buffer every few wraps so rounding cannot drift.
    """

    name = "es-wmv"
    RESYNC_WRAPS = 8

    def __init__(self, window: int = 100, patience: int = 1000, burn_in: int = 0, max_pixels: int = 65536):
        self.window, self.max_pixels = int(window), int(max_pixels)
        super().__init__(patience, burn_in)

    def _reset_signal(self) -> None:
        self._subset = _Subset(self.max_pixels)
        self._buf: torch.Tensor | None = None  # W x n float32, preallocated at the first observation
        self._s1 = self._s2 = torch.zeros(0, dtype=torch.float64)
        self._count = 0

    def measure(self, obs: Observation) -> torch.Tensor | None:
        x = self._subset(obs.output)
        if self._buf is None:
            self._buf = torch.zeros(self.window, x.numel(), dtype=torch.float32, device=x.device)
            self._s1 = torch.zeros(x.numel(), dtype=torch.float64, device=x.device)
            self._s2 = torch.zeros(x.numel(), dtype=torch.float64, device=x.device)
        pos = self._count % self.window
        if self._count >= self.window:
            old = self._buf[pos].double()
            self._s1 -= old
            self._s2 -= old * old
        self._buf[pos] = x
        x64 = x.double()
        self._s1 += x64
        self._s2 += x64 * x64
        self._count += 1
        if self._count % (self.RESYNC_WRAPS * self.window) == 0:
            full = self._buf.double()
            self._s1, self._s2 = full.sum(0), (full * full).sum(0)
        if self._count < self.window:
            return None
        mean = self._s1 / self.window
        return (self._s2 / self.window - mean * mean).clamp_min(0).mean()

    @property
    def memory_bytes(self) -> int:
        held = [t for t in (self._buf, self._s1, self._s2) if t is not None]
        return sum(t.numel() * t.element_size() for t in held) + self._subset.memory_bytes


@STOPPING_RULES.add(
    "es-emv",
    "exponential moving variance of the iterates (Wang et al.); O(N) memory, no window to keep",
    params=[
        Param(
            "alpha",
            "float",
            0.1,
            "weight of the newest iterate (effective window about 1/alpha)",
            min=1e-4,
            max=1.0,
            log=True,
        ),
        _PATIENCE,
        _burn_in(50),
        _MAX_PIXELS,
    ],
)
class EMVRule(MinimumRule):
    """ES-EMV: EMA_t = (1-a) EMA_{t-1} + a x_t,  EMV_t = (1-a)(EMV_{t-1} + a ||x_t - EMA_{t-1}||^2 / N).

    EMA starts at x_1 and EMV at 0, so EMV is biased low at first: the signal is None for the first
    ceil(1/alpha) observations. The default burn-in of 50 guards against the slow first steps of some
    generators, where the iterate barely moves and the variance is small for the wrong reason.
    """

    name = "es-emv"

    def __init__(self, alpha: float = 0.1, patience: int = 1000, burn_in: int = 50, max_pixels: int = 65536):
        self.alpha, self.max_pixels = float(alpha), int(max_pixels)
        self.warm_up = math.ceil(1.0 / self.alpha)
        super().__init__(patience, burn_in)

    def _reset_signal(self) -> None:
        self._subset = _Subset(self.max_pixels)
        self._ema: torch.Tensor | None = None
        self._emv: torch.Tensor | None = None
        self._count = 0

    def measure(self, obs: Observation) -> torch.Tensor | None:
        x = self._subset(obs.output).double()
        self._count += 1
        if self._ema is None:
            self._ema = x
            return None
        delta = x - self._ema
        a = self.alpha
        previous = 0.0 if self._emv is None else self._emv  # the variance starts at 0
        self._emv = (1 - a) * (previous + a * (delta * delta).mean())
        self._ema += a * delta
        return self._emv if self._count > self.warm_up else None

    @property
    def memory_bytes(self) -> int:
        ema = 0 if self._ema is None else self._ema.numel() * self._ema.element_size()
        return ema + self._subset.memory_bytes


def estimate_noise_sigma(image: np.ndarray | torch.Tensor) -> float:
    """Gaussian noise level (in the image's units, [0,1] here) by Donoho's MAD of the finest Haar diagonal band.

    The orthonormal Haar HH band of a smooth image is nearly zero while white noise passes through with its
    std unchanged; the median makes edges and texture (few large coefficients) matter little.
    Arrays are HxW or HxWxC, tensors CxHxW or 1xCxHxW; per-channel medians are averaged.
    """
    if isinstance(image, torch.Tensor):
        arr = image.detach().to("cpu", torch.float64).numpy()
        arr = arr.reshape(arr.shape[-3:] if arr.ndim >= 3 else (1, *arr.shape)).transpose(1, 2, 0)
    else:
        arr = np.asarray(image, dtype=np.float64)
        arr = arr[..., None] if arr.ndim == 2 else arr
    h, w = arr.shape[0] // 2 * 2, arr.shape[1] // 2 * 2
    if h < 2 or w < 2:
        raise ConfigError(f"the photo is too small ({arr.shape[0]}x{arr.shape[1]}) to estimate its noise level")
    a = arr[:h:2, :w:2]
    b, c, d = arr[:h:2, 1:w:2], arr[1:h:2, :w:2], arr[1:h:2, 1:w:2]
    hh = (a - b - c + d) / 2.0
    return float(np.mean(np.median(np.abs(hh), axis=(0, 1)) / 0.6745))


@STOPPING_RULES.add(
    "sure",
    "Stein's unbiased risk estimate of the MSE (Gaussian denoising only; the network input must be the photo, "
    "so not with the Deep Decoder)",
    params=[
        Param(
            "sigma",
            "float",
            0.0,
            "noise std in [0,1] units (25/255 = 0.098); 0 = estimate it from the photo",
            min=0.0,
            max=1.0,
        ),
        _PATIENCE,
        _burn_in(0),
        Param("epsilon", "float", 1e-3, "finite-difference step as a fraction of max|y|", min=1e-6, max=0.1, log=True),
    ],
    tasks=("denoising",),
)
class SureRule(MinimumRule):
    """SURE_t = ||y - x_t||^2/N - sigma^2 + 2 sigma^2 div/N, an unbiased estimate of the true MSE.

    div = sum_p d x_p / d y_p is estimated with one Gaussian probe b and a central difference,
    b^T (f(in + eps b) - f(in - eps b)) / (2 eps): second-order accurate, and both forwards use the same
    weights, so it does not matter whether ``output`` came before or after the optimiser's update.
    Costs two extra forward passes per step. If the input is larger than the output (padding), b is
    paired with its top-left crop, i.e. the engine is assumed to pad at the bottom/right.
    """

    name = "sure"

    def __init__(self, sigma: float = 0.0, patience: int = 1000, burn_in: int = 0, epsilon: float = 1e-3):
        self.sigma, self.epsilon = float(sigma), float(epsilon)
        super().__init__(patience, burn_in)

    def _reset_signal(self) -> None:
        self._sigma: float | None = None
        self._eps: float | None = None
        self._gen: torch.Generator | None = None

    def measure(self, obs: Observation) -> torch.Tensor | None:
        x, y = obs.output.detach(), obs.observed
        _check_pixelwise_input(obs.input_shape, tuple(x.shape))
        if obs.probe is None:
            raise ConfigError("sure needs the network input to be the observed photo: set input code 'observed'")
        if x.shape != y.shape:
            raise ConfigError(
                f"sure is only defined for denoising: the output {tuple(x.shape)} and the photo "
                f"{tuple(y.shape)} differ; choose es-wmv or es-emv"
            )
        if self._sigma is None:
            self._sigma = self.sigma if self.sigma > 0 else estimate_noise_sigma(y)
            self._eps = self.epsilon * max(float(y.abs().max()), 1e-6)  # once: the photo never changes
            self._gen = torch.Generator(device=x.device).manual_seed(0)
        assert self._eps is not None
        shape = tuple(obs.input_shape or y.shape)
        b = torch.randn(shape, generator=self._gen, device=x.device, dtype=x.dtype)
        with torch.no_grad():
            diff = obs.probe(self._eps * b) - obs.probe(-self._eps * b)
        h, w = x.shape[-2:]
        b_out = b[..., :h, :w]
        if b_out.shape != diff.shape:
            raise ConfigError(
                f"sure needs the network input to have the photo's channels; input {shape}, "
                f"output {tuple(diff.shape)}: set input code 'observed'"
            )
        n = x.numel()
        div = (b_out.double() * diff.double()).sum() / (2 * self._eps)
        s2 = self._sigma**2
        return ((y - x).double() ** 2).mean() - s2 + 2 * s2 * div / n


#: The priors whose input is the photo at the output's size with input code 'observed' (named by SURE's refusal).
SURE_PRIORS = ("skip", "hourglass", "unet", "resnet")


def _check_pixelwise_input(input_shape: tuple[int, ...] | None, output_shape: tuple[int, ...]) -> None:
    """SURE's divergence is the sum of d output_p / d photo_p over the pixels, so the network's input must be the
    photo at the output's size. A generator that grows its output from a smaller code (the Deep Decoder: no
    input of the photo's size, whatever the input code) has no such derivative; said first, since setting input
    code 'observed' cannot fix it."""
    if input_shape is None or all(i >= o for i, o in zip(input_shape[-2:], output_shape[-2:])):
        return
    shrink = max(o // max(1, i) for i, o in zip(input_shape[-2:], output_shape[-2:]))
    raise ConfigError(
        f"sure cannot judge this prior: it grows its output from a code {shrink} times smaller per side (the "
        "Deep Decoder does), so no input is the photo to measure the divergence against; choose a prior that "
        f"maps the photo pixel for pixel ({', '.join(SURE_PRIORS)}) with input code 'observed', or another "
        "stopping rule (es-wmv, es-emv)"
    )


def build_rule(name: str, params: dict | None = None) -> StoppingRule:
    """Build a registered rule by name; ConfigError lists the valid names and parameter problems."""
    return STOPPING_RULES.get(name).build(params)
