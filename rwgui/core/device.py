"""Which device to run on, and what it is good at (bf16 on this CPU? CUDA? MPS?)."""

from __future__ import annotations

import functools
import os
import platform
import threading
from dataclasses import dataclass

import torch

from .errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """Devices that exist here, best first ('cuda', 'mps', 'cpu')."""
    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    out.append("cpu")
    return out


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; an absent device is a DeviceError.

    The environment variable RWGUI_AUTO_DEVICE names what 'auto' means instead: the test suite pins it to the
    CPU, so that a test that does not name a device runs the same on a machine with a GPU."""
    if name == "auto":
        return torch.device(os.environ.get("RWGUI_AUTO_DEVICE") or available_devices()[0])
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {name!r}; choose one of: {', '.join(DEVICE_CHOICES)}")
    if base not in available_devices():
        raise DeviceError(
            f"device {name!r} is not available on this machine; available: {', '.join(available_devices())}"
        )
    return torch.device(name)


# ----- CUDA facts, asked once and never from the GUI thread -------------------------------------------------
# Asking CUDA anything starts its runtime (a stall of a second or more, and on some calls a context that takes
# device memory), so the studio's thread must not ask: it reads what a worker or helper thread learnt.


@dataclass(frozen=True)
class CudaFacts:
    """What a CUDA device is, queried once per device index (none of it changes while the process runs)."""

    name: str
    bf16_native: bool  # compute capability 8.0 or newer: bfloat16 in hardware, not emulated
    total_bytes: int


_facts: dict[int, CudaFacts] = {}
_free: dict[int, int] = {}  # the last free-memory reading per device, taken where queries are allowed
_quiet_threads: set[int] = set()
_lock = threading.Lock()


def keep_device_queries_off_this_thread() -> None:
    """Mark the calling thread (the GUI's) as one that must never start CUDA: the functions below then answer
    from what other threads learnt, or say that they do not know, and ask a helper thread to find out."""
    _quiet_threads.add(threading.get_ident())


def may_query_device() -> bool:
    """False on a thread marked by :func:`keep_device_queries_off_this_thread`."""
    return threading.get_ident() not in _quiet_threads


def _index(device: torch.device) -> int:
    return device.index if device.index is not None else 0


def _query_cuda_facts(index: int) -> CudaFacts:
    props = torch.cuda.get_device_properties(index)
    # including_emulation=False: the default also counts GPUs that only emulate bfloat16 (slower than float32)
    native = props.major >= 8 and torch.cuda.is_bf16_supported(including_emulation=False)
    facts = CudaFacts(str(props.name), bool(native), int(props.total_memory))
    with _lock:
        _facts[index] = facts
    return facts


def _learn_in_background(index: int) -> None:
    threading.Thread(target=_query_cuda_facts, args=(index,), name="rwgui-cuda-facts", daemon=True).start()


def cuda_facts(device: torch.device) -> CudaFacts | None:
    """The device's facts: queried once (off a quiet thread) and cached; None on a quiet thread until a
    helper thread, started here, has learnt them."""
    index = _index(device)
    with _lock:
        known = _facts.get(index)
    if known is not None:
        return known
    if not may_query_device():
        _learn_in_background(index)
        return None
    return _query_cuda_facts(index)


def cuda_free_bytes(device: torch.device) -> int | None:
    """Free memory on a CUDA device for a new run: the driver's free memory plus what torch's caching
    allocator holds but does not use (a second run in the same process reuses those blocks). On a quiet
    thread, the last reading taken elsewhere, or None."""
    index = _index(device)
    if not may_query_device():
        with _lock:
            return _free.get(index)
    free, _ = torch.cuda.mem_get_info(index)
    cached = torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
    value = int(free) + max(0, int(cached))
    with _lock:
        _free[index] = value
    return value


def describe(device: torch.device) -> str:
    """A short human name, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads, bf16)'."""
    if device.type == "cuda":
        facts = cuda_facts(device)
        return f"cuda ({facts.name})" if facts is not None else "cuda"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n != 1 else ''}{', bf16' if cpu_has_native_bf16() else ''})"
    return device.type


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU has AMX-BF16 or AVX512-BF16; elsewhere bf16 autocast is slower than float32."""
    if os.environ.get("RWGUI_NO_BF16"):
        return False
    if platform.system() == "Linux":
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
                flags = f.read()
        except OSError:
            return False
        return any(flag in flags.split() for flag in ("amx_bf16", "avx512_bf16"))
    return False


def default_threads() -> int:
    """The CPU threads of a run whose settings say 0 (auto): all cores but one, so a window stays responsive.

    The same count in the CLI, the studio and the Lab: the count decides how torch splits its floating-point
    sums, and the first iterations amplify those last-bit differences, so only the same count gives the same
    pixels for the same settings."""
    cores = os.cpu_count() or 1
    return max(1, cores - 1)


def precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype a run with ``precision`` uses on ``device`` (None = float32).

    The same choice as ``Engine._pick_precision``: the memory planner must estimate what the engine will run.
    """
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "float16":
        return torch.float16 if device.type != "cpu" else torch.bfloat16
    if device.type == "cuda":
        # not yet known (a quiet thread asked first): float32, whose larger memory estimate is the safe side
        facts = cuda_facts(device)
        return torch.bfloat16 if facts is not None and facts.bf16_native else None
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def overlaps(overlap: str, device: torch.device) -> bool:
    """Whether a run overlaps each step's fetch with the next step ('auto': on CUDA, the one device where it
    pays).

    Never on MPS, whatever the setting: the engine's fetch there is a plain ``.cpu()`` when the numbers are read,
    which waits for everything queued, the newest step included, so an overlapped run would only deliver
    its reports a step late and gain nothing. ``speed_summary`` says so. On the CPU 'on' is honoured (the
    arithmetic is synchronous anyway; tests use it to exercise the one-step-late bookkeeping)."""
    if device.type == "mps":
        return False
    return overlap == "on" or (overlap == "auto" and device.type == "cuda")


def fused_adam_device(device: torch.device) -> bool:
    """Whether this torch has a fused Adam kernel for ``device``: asked up front, because Adam accepts
    ``fused=True`` for any device and fails only at its first step, inside the run."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        supported = set(_get_fused_kernels_supported_devices())
    except (ImportError, AttributeError):  # a torch without the list: the devices it has had kernels for
        supported = {"cuda"}
    return device.type in supported


def speed_summary(speed, device: torch.device) -> str:
    """What the speed settings amount to on ``device``, in words: 'auto' means different things on different
    machines, and a person comparing settings should see which are really on. Settings left at 'auto' are
    measured on the first run (rwgui.core.autotune); this says so and never measures (the window calls it)."""
    dtype = precision_dtype(speed.precision, device)
    parts = ["float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"]
    if speed.precision == "auto" and dtype is not None and device.type == "cpu":
        parts[0] = "bfloat16 autocast or float32 (measured)"
    if speed.channels_last in ("on", True):
        parts.append("channels-last")
    elif speed.channels_last == "auto":
        parts.append("channels-last or NCHW (measured)")
    if fused_adam_device(device) and speed.fused_optimizer in ("on", True):
        parts.append("fused Adam")
    elif fused_adam_device(device) and speed.fused_optimizer == "auto":
        parts.append("fused Adam or not (measured)")
    if device.type == "cpu":
        parts.append("threads measured" if not speed.threads else f"{speed.threads} thread(s)")
    if overlaps(speed.overlap, device):
        parts.append("overlapped steps")
    elif device.type == "mps" and speed.overlap != "off":
        parts.append("no overlap (on MPS a copy to the host waits for the device)")
    if speed.compile:
        parts.append("torch.compile")
    why = ""
    if device.type == "cuda" and speed.precision == "auto" and cuda_facts(device) is None:
        parts[0] = "bfloat16 autocast if the GPU computes it natively, else float32"
    if device.type == "cpu" and speed.precision == "auto":
        why = (
            " (this CPU computes bfloat16 natively)"
            if dtype is not None
            else " (this CPU has no native bfloat16, where float32 is faster)"
        )
    measured = any(v == "auto" for v in (speed.precision, speed.channels_last, speed.fused_optimizer)) or (
        device.type == "cpu" and not speed.threads
    )
    tail = " 'measured': timed on the first run at a photo size on this machine, then remembered." if measured else ""
    return f"On {device.type.upper()}: " + ", ".join(parts) + why + "." + tail
