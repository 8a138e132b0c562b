"""How much memory a run will need, before it starts, and what working size fits when it will not.

The estimate is measured, not guessed: a forward and backward pass on a small probe image counts the bytes
autograd saves for the backward pass, which grow with the image's area, and adds what grows with the
network (weights, gradients, Adam's two moments) and the run's own buffers (input code, running average,
picked iterate). It works for every prior variant without a per-architecture formula.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import torch

from .config import RunConfig
from .priors import build_prior, input_channels, padded_size

PROBE = 128  # side of the probe image; large enough that per-layer constants are small
WORKSPACE = 1.0  # peak / saved-tensors ratio (gradients reuse freed activations; measured 1.0 on the CPU)
#: Memory a CPU run takes whatever the size: oneDNN kernels and caches, the allocator (measured ~200-220 MB).
CPU_RUNTIME_BYTES = 200 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    total_bytes: int
    activation_bytes: int
    parameter_bytes: int

    @property
    def total_mb(self) -> float:
        return self.total_bytes / 2**20


def _saved_bytes(net: torch.nn.Module, z: torch.Tensor, dtype: torch.dtype | None) -> int:
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        ctx = torch.autocast("cpu", dtype=dtype) if dtype is not None else torch.autocast("cpu", enabled=False)
        with ctx:
            out = net(z)
        out.float().mean().backward()
    return total


@dataclass(frozen=True)
class _Rates:
    saved_per_pixel: float  # bytes autograd saves per padded pixel
    params: int
    cin: int
    mult: int


@functools.lru_cache(maxsize=32)  # networks; a session that tries more probes the oldest again
def _network_rates(
    prior: str, params_json: str, input_code: str, input_depth: int, channels: int, autocast_dtype: torch.dtype | None
) -> _Rates:
    with torch.random.fork_rng(devices=[]):  # the probe's random weights leave the caller's stream alone
        return _probe(prior, json.loads(params_json), input_code, input_depth, channels, autocast_dtype)


def _rates(config: RunConfig, channels: int, autocast_dtype: torch.dtype | None) -> _Rates:
    """The probe's rates, measured once per network: the window plans in the GUI thread and the engine
    re-checks in the worker, and the second asks the same network (the rates do not depend on the size)."""
    cfg = config.validated()
    return _network_rates(
        cfg.prior,
        json.dumps(dict(cfg.prior_params), sort_keys=True),
        cfg.input_code,
        cfg.input_depth,
        channels,
        autocast_dtype,
    )


def _probe(
    prior: str, params: dict, input_code: str, input_depth: int, channels: int, autocast_dtype: torch.dtype | None
) -> _Rates:
    cin = input_channels(input_code, input_depth, channels)
    net = build_prior(prior, params, in_channels=cin, out_channels=channels)
    mult = getattr(net, "size_multiple", 1)
    probe = padded_size((max(PROBE, 2 * mult),) * 2, mult)
    saved = _saved_bytes(net, torch.rand(1, cin, *probe), autocast_dtype)
    n_params = sum(p.numel() for p in net.parameters())
    return _Rates(saved / (probe[0] * probe[1]), n_params * 4 * 4, cin, mult)  # weights, grads, Adam moments


def _total(r: _Rates, size: tuple[int, int], channels: int, device: str) -> MemoryEstimate:
    h, w = size
    ph, pw = padded_size((max(h, 2 * r.mult), max(w, 2 * r.mult)), r.mult)
    activations = int(r.saved_per_pixel * ph * pw * WORKSPACE)
    buffers = ph * pw * 4 * (2 * r.cin + 6 * channels)  # code + jittered code, output, average, pick, frames
    runtime = CPU_RUNTIME_BYTES if device == "cpu" else 0
    return MemoryEstimate(activations + r.params + buffers + runtime, activations, r.params)


class MemoryModel:
    """One probe, many sizes: the probe pass is the costly part (~0.5 s on a CPU core for the presets), so a
    caller that asks about several working sizes (full photo, downscaled, a crop) probes once."""

    def __init__(
        self, config: RunConfig, channels: int, autocast_dtype: torch.dtype | None = None, device: str = "cpu"
    ) -> None:
        self._rates = _rates(config, channels, autocast_dtype)
        self.channels, self.device = channels, device

    def estimate(self, size: tuple[int, int]) -> MemoryEstimate:
        return _total(self._rates, size, self.channels, self.device)

    def fitting_size(self, size: tuple[int, int], budget_bytes: int) -> tuple[int, int]:
        """The largest downscaled (h, w), same aspect, whose estimate fits ``budget_bytes`` (16 px at least:
        the result may still not fit; callers check)."""
        h, w = size
        factor = 1.0
        while factor > 0.01:
            cand = (max(16, int(h * factor)), max(16, int(w * factor)))
            if self.estimate(cand).total_bytes <= budget_bytes:
                return cand
            factor *= 0.97
        return max(16, int(h * factor)), max(16, int(w * factor))


def estimate_memory(
    config: RunConfig,
    size: tuple[int, int],
    channels: int,
    autocast_dtype: torch.dtype | None = None,
    device: str = "cpu",
) -> MemoryEstimate:
    """Peak bytes of one optimisation step for a restored image of ``size`` (h, w) with ``channels``.

    On the CPU this is the growth of the process's resident memory; on CUDA the allocator's peak.
    """
    return MemoryModel(config, channels, autocast_dtype, device).estimate(size)


def fitting_size(
    config: RunConfig,
    size: tuple[int, int],
    channels: int,
    budget_bytes: int,
    autocast_dtype: torch.dtype | None = None,
    device: str = "cpu",
) -> tuple[int, int]:
    """The largest downscaled (h, w), same aspect, whose estimate fits ``budget_bytes``."""
    return MemoryModel(config, channels, autocast_dtype, device).fitting_size(size, budget_bytes)


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (CUDA: free device memory plus the caching allocator's unused blocks, never
    asked from the GUI thread; CPU: MemAvailable), None if unknown."""
    if device.type == "cuda":
        from .device import cuda_free_bytes

        return cuda_free_bytes(device)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None
