"""How much memory a run will need, before it starts, and what working size fits when it will not.

The estimate is measured, not guessed: a forward and backward pass on a small probe image counts the bytes
autograd saves for the backward pass, which grow with the image's area, and adds what grows with the
network (weights, gradients, Adam's two moments) and the run's own buffers (input code, running average,
picked iterate). It works for every prior variant without a per-architecture formula.

On CUDA the probe runs on the device itself where this thread may ask it (the allocator's peak above the
probe's own start, under CUDA autocast and with the device's own kernels), and the estimate adds what the CPU
calibration already holds in its measured runtime: the guard's two snapshots (weights, Adam's moments, the
running average), the stopping rule's buffer (ES-WMV keeps a window of iterates on the device) and headroom
for cuDNN's workspace, which grows with the kernels ``cudnn.benchmark`` tries at the run's own size. The CPU
numbers are the calibrated ones and do not change.

The probe runs in the precision the run will use (:func:`run_dtype`): bfloat16 autocast saves half-size
activations, so a footprint estimated in bfloat16 for a run that computes in float32 would be too small.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass

import torch

from . import rng
from .autotune import known_speed
from .config import RunConfig
from .device import precision_dtype
from .priors import build_prior, input_channels, input_stride, padded_size
from .stopping import build_rule, wmv_memory_cap

PROBE = 128  # side of the probe image; large enough that per-layer constants are small
WORKSPACE = 1.0  # peak / saved-tensors ratio (gradients reuse freed activations; measured 1.0 on the CPU)
#: Memory a CPU run takes whatever the size: oneDNN kernels and caches, the allocator (measured ~200-220 MB).
CPU_RUNTIME_BYTES = 200 * 2**20
#: Headroom on CUDA for cuDNN's workspace beyond the probe's (benchmark mode tries kernels with large ones).
CUDNN_WORKSPACE_BYTES = 256 * 2**20
GUARD_SNAPSHOTS = 2  # the last good one and the candidate waiting for its loss (see Engine._capture)


def run_dtype(config: RunConfig, size: tuple[int, int], device: torch.device, channels: int) -> torch.dtype | None:
    """The autocast dtype a run of ``config`` restoring ``size`` will compute in (None: float32), for its
    footprint: the speed settings resolved as the engine resolves them (:func:`~rwgui.core.autotune.known_speed`),
    not what the device could do. A precision left at "auto" is what the measurement chose, which may be float32
    on a CPU with bfloat16 (where float32 timed faster); before anything was measured it is float32, the larger
    footprint, so a plan may offer a smaller size than needed but never one that does not fit."""
    cfg = config.validated()
    precision = cfg.speed.precision
    if precision == "auto":
        known = known_speed(cfg, size, device, channels=channels)
        precision = "float32" if known is None else known.precision
    return precision_dtype(precision, device)


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
    saved_per_pixel: float  # bytes autograd saves per padded pixel (on a device: its peak above the start)
    params: int
    cin: int
    mult: int
    state_bytes: int = 0  # one guard snapshot of the network: its state dict and Adam's two moments
    measured_on: str = "cpu"


@functools.lru_cache(maxsize=32)  # networks; a session that tries more probes the oldest again
def _network_rates(
    prior: str, params_json: str, input_code: str, input_depth: int, channels: int, autocast_dtype: torch.dtype | None
) -> _Rates:
    with rng.private():  # the probe's random weights leave the caller's stream alone
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
    s = input_stride(net)  # the Deep Decoder's code is this many times smaller than its output per side
    saved = _saved_bytes(net, torch.rand(1, cin, probe[0] // s, probe[1] // s), autocast_dtype)
    n_params = sum(p.numel() for p in net.parameters())
    return _Rates(  # weights, grads, Adam moments
        saved / (probe[0] * probe[1]), n_params * 4 * 4, cin, mult, _state_bytes(net)
    )


def _state_bytes(net: torch.nn.Module) -> int:
    """One guard snapshot of ``net``: its state dict (weights and buffers) and Adam's two moments."""
    state = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    return state + 2 * sum(p.numel() * 4 for p in net.parameters())


# Device probes, per (network, device): kept in a dict rather than an lru_cache so that a thread that must not
# ask the device (the GUI's) can look without measuring.
_device_rates: dict[tuple, _Rates] = {}
_device_lock = threading.Lock()


def _device_probe(
    prior: str,
    params: dict,
    input_code: str,
    input_depth: int,
    channels: int,
    autocast_dtype: torch.dtype | None,
    device: torch.device,
) -> _Rates:
    """The probe on a CUDA device: one forward and backward at the probe size under CUDA autocast, the
    allocator's peak above its own start (the network's weights are there before the start; its gradients
    are subtracted, they do not grow with the area), scaled by area as on the CPU."""
    cin = input_channels(input_code, input_depth, channels)
    net = build_prior(prior, params, in_channels=cin, out_channels=channels)
    mult = getattr(net, "size_multiple", 1)
    probe = padded_size((max(PROBE, 2 * mult),) * 2, mult)
    n_params = sum(p.numel() for p in net.parameters())
    state = _state_bytes(net)
    net = net.to(device)
    s = input_stride(net)
    z = torch.rand(1, cin, probe[0] // s, probe[1] // s).to(device)
    torch.cuda.synchronize(device)
    start = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.autocast("cuda", dtype=autocast_dtype, enabled=autocast_dtype is not None):
        out = net(z)
    out.float().mean().backward()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - start
    del net, z, out
    grads = n_params * 4
    per_pixel = max(0, peak - grads) / (probe[0] * probe[1])
    return _Rates(per_pixel, n_params * 4 * 4, cin, mult, state, "cuda")


def _cuda_rates(
    config: RunConfig, channels: int, autocast_dtype: torch.dtype | None, device: torch.device
) -> _Rates | None:
    """The device's own rates for this network: measured once per network and device where this thread may
    ask the device, else whatever an earlier measurement left (None when there is none yet)."""
    from .device import may_query_device

    cfg = config.validated()
    params_json = json.dumps(dict(cfg.prior_params), sort_keys=True)
    index = device.index if device.index is not None else 0
    key = (cfg.prior, params_json, cfg.input_code, cfg.input_depth, channels, autocast_dtype, index)
    with _device_lock:
        known = _device_rates.get(key)
    if known is not None or not may_query_device() or not torch.cuda.is_available():
        return known
    with rng.private():  # the probe's random weights leave the caller's stream alone
        rates = _device_probe(
            cfg.prior,
            json.loads(params_json),
            cfg.input_code,
            cfg.input_depth,
            channels,
            autocast_dtype,
            torch.device("cuda", index),
        )
    with _device_lock:
        _device_rates[key] = rates
    return rates


def rule_buffer_bytes(config: RunConfig, values: int) -> int:
    """The bytes a run's stopping rule keeps on the device for an iterate of ``values`` numbers: ES-WMV's
    window of (subsampled) iterates and its two float64 sums; ES-EMV's average; a subset index when the
    iterate has more values than the rule measures. The other rules keep only numbers."""
    cfg = config.validated()
    rule = build_rule(cfg.stop, dict(cfg.stop_params))
    max_pixels = getattr(rule, "max_pixels", None)
    if max_pixels is None:
        return 0
    n = min(values, int(max_pixels))
    window = getattr(rule, "window", None)
    if window is not None:
        cap = wmv_memory_cap(int(window), n)
        return cap if values > n else cap - n * 8  # the index exists only when a subset is drawn
    return n * 4 + (n * 8 if values > n else 0)


def run_state_bytes(config: RunConfig, r: _Rates, size: tuple[int, int], channels: int) -> int:
    """What a run keeps besides the step's own memory, beyond the CPU calibration: the guard's snapshots
    (each the network's state, Adam's moments and a copy of the running average) and the rule's buffer."""
    cfg = config.validated()
    h, w = size
    image = h * w * channels * 4
    snapshots = GUARD_SNAPSHOTS * (r.state_bytes + image) if cfg.guard else 0
    return snapshots + rule_buffer_bytes(cfg, h * w * channels)


def _total(r: _Rates, size: tuple[int, int], channels: int, device: str, extra: int = 0) -> MemoryEstimate:
    h, w = size
    ph, pw = padded_size((max(h, 2 * r.mult), max(w, 2 * r.mult)), r.mult)
    activations = int(r.saved_per_pixel * ph * pw * WORKSPACE)
    buffers = ph * pw * 4 * (2 * r.cin + 6 * channels)  # code + jittered code, output, average, pick, frames
    runtime = CPU_RUNTIME_BYTES if device == "cpu" else CUDNN_WORKSPACE_BYTES if device == "cuda" else 0
    return MemoryEstimate(activations + r.params + buffers + runtime + extra, activations, r.params)


class MemoryModel:
    """One probe, many sizes: the probe pass is the costly part (~0.5 s on a CPU core for the presets), so a
    caller that asks about several working sizes (full photo, downscaled, a crop) probes once."""

    def __init__(
        self, config: RunConfig, channels: int, autocast_dtype: torch.dtype | None = None, device: str = "cpu"
    ) -> None:
        self.config = config.validated()
        self.channels, self.device = channels, device
        base = device.split(":")[0]
        measured = _cuda_rates(config, channels, autocast_dtype, torch.device(device)) if base == "cuda" else None
        # without a device measurement (no CUDA here, or a thread that must not ask it): the CPU probe's rates
        self._rates = measured if measured is not None else _rates(config, channels, autocast_dtype)
        self._base = base

    @property
    def measured_on(self) -> str:
        """Where the rates were measured: 'cuda' (the device itself) or 'cpu'."""
        return self._rates.measured_on

    def estimate(self, size: tuple[int, int]) -> MemoryEstimate:
        if self._base == "cpu":  # the calibrated CPU numbers: snapshots and buffers are in the measured runtime
            return _total(self._rates, size, self.channels, "cpu")
        extra = run_state_bytes(self.config, self._rates, size, self.channels)
        return _total(self._rates, size, self.channels, self._base, extra)

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
