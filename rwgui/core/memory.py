"""How much memory a run will need, before it starts, and what working size fits when it will not.

The estimate is measured, not guessed: a forward and backward pass on a small probe image counts the bytes
autograd saves for the backward pass, which grow with the image's area, and adds what grows with the
network (weights, gradients, Adam's two moments) and the run's own buffers (input code, running average,
picked iterate). It works for every prior variant without a per-architecture formula. An operator that is
itself a network (the pre-image's classifier) adds its weights and what autograd saves through it
(:func:`operator_memory`), counted the same way; the working-size plan and the estimate before Start both
count it here, so they agree.

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

import json
import threading
from collections import OrderedDict
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
    #: of ``total_bytes``, what an operator with weights adds (the pre-image's classifier; 0 for the others)
    operator_bytes: int = 0

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


#: Networks whose probe rates are kept; a session that tries more probes the oldest again.
RATES_CACHE_SIZE = 32
_rates_cache: OrderedDict[tuple, _Rates] = OrderedDict()
_rates_lock = threading.Lock()


class NotMeasured(Exception):
    """A plan asked not to measure (:class:`MemoryModel` with ``measure=False``) needs a probe pass no earlier
    plan made: the GUI thread then hands the plan to a helper thread instead of running the network."""


def _rates_key(config: RunConfig, channels: int, autocast_dtype: torch.dtype | None) -> tuple:
    cfg = config.validated()
    params_json = json.dumps(dict(cfg.prior_params), sort_keys=True)
    return (cfg.prior, params_json, cfg.input_code, cfg.input_depth, channels, autocast_dtype)


def _rates(config: RunConfig, channels: int, autocast_dtype: torch.dtype | None, measure: bool = True) -> _Rates:
    """The probe's rates, measured once per network: the window plans before a run and the engine re-checks in
    the worker, and the second asks the same network (the rates do not depend on the size). ``measure`` False
    raises :class:`NotMeasured` instead of probing."""
    key = _rates_key(config, channels, autocast_dtype)
    with _rates_lock:
        hit = _rates_cache.get(key)
        if hit is not None:
            _rates_cache.move_to_end(key)
            return hit
    if not measure:
        raise NotMeasured(f"the {key[0]} prior's memory is not measured yet")
    prior, params_json, input_code, input_depth, _, _ = key
    with rng.private():  # the probe's random weights leave the caller's stream alone
        rates = _probe(prior, json.loads(params_json), input_code, input_depth, channels, autocast_dtype)
    with _rates_lock:
        _rates_cache[key] = rates
        while len(_rates_cache) > RATES_CACHE_SIZE:
            _rates_cache.popitem(last=False)
    return rates


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
    config: RunConfig,
    channels: int,
    autocast_dtype: torch.dtype | None,
    device: torch.device,
    measure: bool = True,
) -> _Rates | None:
    """The device's own rates for this network: measured once per network and device where this thread may
    ask the device (and ``measure`` allows), else whatever an earlier measurement left (None when there is none
    yet)."""
    from .device import may_query_device

    cfg = config.validated()
    params_json = json.dumps(dict(cfg.prior_params), sort_keys=True)
    index = device.index if device.index is not None else 0
    key = (cfg.prior, params_json, cfg.input_code, cfg.input_depth, channels, autocast_dtype, index)
    with _device_lock:
        known = _device_rates.get(key)
    if known is not None or not measure or not may_query_device() or not torch.cuda.is_available():
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


def _total(
    r: _Rates, size: tuple[int, int], channels: int, device: str, extra: int = 0, operator: int = 0
) -> MemoryEstimate:
    h, w = size
    ph, pw = padded_size((max(h, 2 * r.mult), max(w, 2 * r.mult)), r.mult)
    activations = int(r.saved_per_pixel * ph * pw * WORKSPACE)
    buffers = ph * pw * 4 * (2 * r.cin + 6 * channels)  # code + jittered code, output, average, pick, frames
    runtime = CPU_RUNTIME_BYTES if device == "cpu" else CUDNN_WORKSPACE_BYTES if device == "cuda" else 0
    total = activations + r.params + buffers + runtime + extra + operator
    return MemoryEstimate(total, activations, r.params, operator)


#: Side of the square an operator's saved tensors are counted at (:func:`operator_memory`): large enough that
#: a classifier's fixed-size head is a small part of them, small enough to take well under a second on a CPU.
OPERATOR_PROBE = 256


@dataclass(frozen=True)
class OperatorMemory:
    """What an operator with weights (the pre-image's classifier) adds to a run's memory: its weights, which the
    run holds but never trains, and the tensors autograd saves through it for the backward pass to the image,
    which grow with the image's area like the prior's activations."""

    weight_bytes: int
    saved_per_pixel: float

    def bytes_at(self, size: tuple[int, int]) -> int:
        return self.weight_bytes + int(self.saved_per_pixel * size[0] * size[1])


NO_OPERATOR = OperatorMemory(0, 0.0)
_operator_cache: dict[tuple, OperatorMemory] = {}


def _operator_key(operator: torch.nn.Module, channels: int) -> tuple:
    """What the count depends on: the operator's layers (not its weights' values), the image's channels, the
    weights' type and device. Each problem builds its own operator, so the identity of the object is no key."""
    p = next(operator.parameters())
    return type(operator).__qualname__, repr(operator), channels, p.dtype, p.device.type


def operator_memory(operator: torch.nn.Module | None, channels: int, *, measure: bool = True) -> OperatorMemory:
    """The memory ``operator`` adds to the prior's, counted once per architecture on one forward pass at
    ``OPERATOR_PROBE``² like :func:`_saved_bytes` counts the prior's (the weights themselves, which autograd
    also saves, are counted once, not per pixel), and scaled by area. :data:`NO_OPERATOR` for an operator
    without weights (every task but the pre-image). The one count the memory plan
    (:mod:`rwgui.core.working_size`) and the estimate (:mod:`rwgui.core.estimate`) share, so the two agree.
    ``measure`` False raises :class:`NotMeasured` where a forward pass is needed."""
    params = [] if operator is None else list(operator.parameters())
    if operator is None or not params:
        return NO_OPERATOR
    key = _operator_key(operator, channels)
    with _rates_lock:
        hit = _operator_cache.get(key)
    if hit is not None:
        return hit
    if not measure:
        raise NotMeasured("the classifier's memory is not measured yet")
    weights = sum(p.numel() * p.element_size() for p in params)
    own = {p.data_ptr() for p in params}
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if t.data_ptr() not in own:
            saved += t.numel() * t.element_size()
        return t

    side = OPERATOR_PROBE
    x = torch.zeros(1, channels, side, side, device=params[0].device, requires_grad=True)
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            operator(x)
    except RuntimeError:  # a network that takes no input of this size: the run says so itself; count the weights
        saved = 0
    result = OperatorMemory(weights, saved / (side * side))
    with _rates_lock:
        _operator_cache[key] = result
    return result


class MemoryModel:
    """One probe, many sizes: the probe pass is the costly part (~0.5 s on a CPU core for the presets), so a
    caller that asks about several working sizes (full photo, downscaled, a crop) probes once.

    ``operator`` is the problem's operator: one with weights (the pre-image's classifier) adds its own memory
    (:func:`operator_memory`) at every size. ``measure`` False never runs a network: it raises
    :class:`NotMeasured` unless earlier plans left every count this one needs (for the GUI thread)."""

    def __init__(
        self,
        config: RunConfig,
        channels: int,
        autocast_dtype: torch.dtype | None = None,
        device: str = "cpu",
        operator: torch.nn.Module | None = None,
        *,
        measure: bool = True,
    ) -> None:
        self.config = config.validated()
        self.channels, self.device = channels, device
        base = device.split(":")[0]
        measured = None
        if base == "cuda":
            measured = _cuda_rates(config, channels, autocast_dtype, torch.device(device), measure)
        # without a device measurement (no CUDA here, or a thread that must not ask it): the CPU probe's rates
        self._rates = measured if measured is not None else _rates(config, channels, autocast_dtype, measure)
        self._operator = operator_memory(operator, channels, measure=measure)
        self._base = base

    @property
    def measured_on(self) -> str:
        """Where the rates were measured: 'cuda' (the device itself) or 'cpu'."""
        return self._rates.measured_on

    def estimate(self, size: tuple[int, int]) -> MemoryEstimate:
        op = self._operator.bytes_at(size)
        if self._base == "cpu":  # the calibrated CPU numbers: snapshots and buffers are in the measured runtime
            return _total(self._rates, size, self.channels, "cpu", operator=op)
        extra = run_state_bytes(self.config, self._rates, size, self.channels)
        return _total(self._rates, size, self.channels, self._base, extra, op)

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
