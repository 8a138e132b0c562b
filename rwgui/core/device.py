"""Which device to run on, and what it is good at (bf16 on this CPU? CUDA? MPS?)."""

from __future__ import annotations

import functools
import os
import platform

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
    """'auto' picks CUDA, then Apple MPS, then the CPU; an absent device is a DeviceError."""
    if name == "auto":
        return torch.device(available_devices()[0])
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {name!r}; choose one of: {', '.join(DEVICE_CHOICES)}")
    if base not in available_devices():
        raise DeviceError(
            f"device {name!r} is not available on this machine; available: {', '.join(available_devices())}"
        )
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A short human name, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads, bf16)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
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


def default_threads(gui: bool = False) -> int:
    """All cores headless; one fewer under a GUI so the window stays responsive."""
    cores = os.cpu_count() or 1
    return max(1, cores - 1) if gui else cores


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
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def overlaps(overlap: str, device: torch.device) -> bool:
    """Whether a run overlaps each step's fetch with the next step ('auto': where the device is asynchronous)."""
    return overlap == "on" or (overlap == "auto" and device.type in ("cuda", "mps"))


def fused_adam_device(device: torch.device) -> bool:
    """Devices with a fused Adam kernel in the torch versions rwgui supports."""
    return device.type in ("cuda", "cpu")


def speed_summary(speed, device: torch.device) -> str:
    """What the speed settings amount to on ``device``, in words: 'auto' means different things on different
    machines, and a person comparing settings should see which are really on."""
    dtype = precision_dtype(speed.precision, device)
    parts = ["float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"]
    if speed.channels_last:
        parts.append("channels-last")
    if speed.fused_optimizer and fused_adam_device(device):
        parts.append("fused Adam")
    if overlaps(speed.overlap, device):
        parts.append("overlapped steps")
    if speed.compile:
        parts.append("torch.compile")
    why = ""
    if device.type == "cpu" and speed.precision == "auto":
        why = (
            " (this CPU computes bfloat16 natively)"
            if dtype is not None
            else " (this CPU has no native bfloat16, where float32 is faster)"
        )
    return f"On {device.type.upper()}: " + ", ".join(parts) + why + "."
