"""Run settings: a frozen dataclass per run, presets per task (the paper's settings), JSON round trip.

A ``RunConfig`` is snapshotted when the person presses Start; the worker never sees live GUI state.
Variant parameters are resolved against their registry entry, so the JSON always holds every value.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .device import DEVICE_CHOICES
from .errors import ConfigError
from .params import Param, Registry
from .priors import INPUT_CODES, PRIORS

SCHEMA_VERSION = 1
TASKS = ("denoise", "sr", "inpaint")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
OVERLAPS = ("auto", "on", "off")


@dataclass(frozen=True)
class SpeedConfig:
    """Speed settings; each can be turned off. 'auto' precision means bf16 where the device does it natively."""

    channels_last: bool = True
    precision: str = "auto"
    compile: bool = False
    threads: int = 0  # 0 = all cores (one fewer under the GUI)
    # 'auto' = on where the device runs asynchronously (CUDA, MPS): each step's numbers are fetched while
    # the next step runs, so the loop never waits for the device (reports then come one step late)
    overlap: str = "auto"
    fused_optimizer: bool = True  # Adam's update in one kernel (CUDA, and the CPU: ~3x faster than its loop)


#: The speed settings as specs: the GUI's Speed form, the CLI's speed flags and validation come from these.
SPEED_PARAMS: tuple[Param, ...] = (
    Param(
        "precision",
        "choice",
        "auto",
        "Arithmetic of the network: 'auto' = bfloat16 where the device does it "
        "natively (CUDA, CPUs with AMX or AVX512-BF16), else float32.",
        choices=PRECISIONS,
    ),
    Param("channels_last", "bool", True, "Channels-last memory format (faster convolutions on CPU and GPU)."),
    Param(
        "overlap",
        "choice",
        "auto",
        "Fetch each step's numbers while the next step runs ('auto' = on CUDA "
        "and MPS): the loop never waits for the device; reports arrive one step late.",
        choices=OVERLAPS,
    ),
    Param(
        "compile",
        "bool",
        False,
        "torch.compile the network (minutes of compiling first; falls back to "
        "eager if it fails). Measured no faster on the CPU.",
    ),
    Param(
        "fused_optimizer",
        "bool",
        True,
        "Adam's update as one fused kernel (CUDA and CPU; measured 3.3 ms "
        "instead of 9 ms per step for the paper's network on a CPU core). Same arithmetic, in another order.",
    ),
    Param(
        "threads", "int", 0, "CPU threads for the network (0 = all cores; the window leaves one for itself).", 0, 1024
    ),
)

#: Run-level settings that are not a variant's parameters, as specs (the CLI and forms use them too).
RUN_PARAMS: tuple[Param, ...] = (
    Param("iterations", "int", 3000, "Optimisation steps (the budget; a stopping rule may end earlier).", 1, 1_000_000),
    Param("lr", "float", 0.01, "Adam learning rate.", 1e-6, 1.0, log=True),
    Param("reg_noise_std", "float", 1 / 30, "Std of the noise added to the input code each step (0 = none).", 0.0, 1.0),
    Param(
        "input_code",
        "choice",
        "noise",
        "Network input: uniform noise, a coordinate grid, or the photo itself.",
        choices=INPUT_CODES,
    ),
    Param("input_depth", "int", 32, "Channels of the noise input code.", 1, 256),
    Param("exp_weight", "float", 0.99, "Weight of the running average of outputs (0.99 in the paper).", 0.0, 0.9999),
    Param("tv_weight", "float", 0.0, "Weight of total variation (DIP-TV); 0 disables it.", 0.0, 10.0, log=True),
    Param("guard", "bool", True, "Restore the last good weights and optimiser state when the loss jumps."),
    Param("guard_ratio", "float", 3.0, "Loss jump (x the last good loss) that triggers the guard.", 1.1, 1000.0),
    Param("seed", "int", 0, "Random seed: the same seed gives the same run on the same device.", 0, 2**31 - 1),
    Param("device", "choice", "auto", "Compute device ('auto' = CUDA, else MPS, else CPU).", choices=DEVICE_CHOICES),
)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run (besides the photo and mask)."""

    task: str = "denoise"
    preset: str = "denoise"
    factor: int = 4
    prior: str = "skip"
    prior_params: Mapping[str, Any] = field(default_factory=dict)
    input_code: str = "noise"
    input_depth: int = 32
    lr: float = 0.01
    iterations: int = 3000
    reg_noise_std: float = 1 / 30
    exp_weight: float = 0.99
    tv_weight: float = 0.0
    stop: str = "fixed"
    stop_params: Mapping[str, Any] = field(default_factory=dict)
    auto_stop: bool = True
    loss_prior: str = "none"
    loss_prior_params: Mapping[str, Any] = field(default_factory=dict)
    guard: bool = True
    guard_ratio: float = 3.0
    seed: int = 0
    device: str = "auto"
    speed: SpeedConfig = field(default_factory=SpeedConfig)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def validated(self) -> RunConfig:
        """Every value coerced and range-checked, variant parameters resolved to full dicts."""
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        if self.factor not in (1, 2, 4, 8):
            raise ConfigError(f"factor must be 2, 4 or 8; got {self.factor!r}")
        speed = SpeedConfig(**{p.name: p.coerce(getattr(self.speed, p.name)) for p in SPEED_PARAMS})
        run = {p.name: p.coerce(getattr(self, p.name)) for p in RUN_PARAMS}
        variants = _variant_registries()
        changes: dict[str, Any] = dict(run, speed=speed)
        for key, (reg, params_key) in variants.items():
            name = getattr(self, key)
            if key == "loss_prior" and name == "none":
                changes[params_key] = {}
                continue
            changes[params_key] = reg.get(name).resolve(getattr(self, params_key))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        cfg = self.validated()
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if f.name == "speed":
                value = dataclasses.asdict(value)
            elif isinstance(value, Mapping):
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ConfigError(f"settings file has schema version {version}; this rwgui reads version {SCHEMA_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(unknown)}")
        if "speed" in data:
            speed = dict(data["speed"])
            bad = sorted(set(speed) - {f.name for f in dataclasses.fields(SpeedConfig)})
            if bad:
                raise ConfigError(f"unknown speed settings: {', '.join(bad)}")
            data["speed"] = SpeedConfig(**speed)
        return cls(**data).validated()

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"settings are not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("settings JSON must be an object")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from None
        return cls.from_json(text)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")


def _variant_registries() -> dict[str, tuple[Registry[Any], str]]:
    """Config field -> (registry, params field). Imported lazily: those modules are larger."""
    from .lossprior import LOSS_PRIORS
    from .stopping import STOPPING_RULES

    return {
        "prior": (PRIORS, "prior_params"),
        "stop": (STOPPING_RULES, "stop_params"),
        "loss_prior": (LOSS_PRIORS, "loss_prior_params"),
    }


#: cdc at λ = 0.1 raised PSNR at the peak and at es-wmv's pick for x4 super-resolution (+0.35 dB) and 50 %-pixel
#: inpainting (+0.88 dB), mean of three photos, for ~5 % more time per step (README, Benchmarks); on denoising the
#: measurement was inconclusive, so denoising keeps no loss prior.
_CDC = dict(loss_prior="cdc", loss_prior_params={"weight": 0.1})

_HOURGLASS_128 = {
    "num_scales": 5,
    "channels_down": (128,),
    "channels_up": (128,),
    "channels_skip": (4,),
    "upsample": "bilinear",
}

#: The paper's settings per task (Ulyanov et al., the reference notebooks). Keys are preset names.
PRESETS: dict[str, dict[str, Any]] = {
    # denoising.ipynb, F16: skip 128/128/4, 5 scales, bilinear, 32-channel noise, reg noise 1/30, LR 0.01, 3000 its.
    "denoise": dict(
        task="denoise",
        prior="skip",
        prior_params=_HOURGLASS_128,
        input_code="noise",
        input_depth=32,
        lr=0.01,
        iterations=3000,
        reg_noise_std=1 / 30,
    ),
    # super-resolution.ipynb: same net, reg noise 0.03 and 2000 its at x4, 0.05 and 4000 at x8.
    "sr-x2": dict(
        task="sr",
        factor=2,
        prior="skip",
        prior_params=_HOURGLASS_128,
        input_code="noise",
        input_depth=32,
        lr=0.01,
        iterations=2000,
        reg_noise_std=0.03,
        **_CDC,
    ),
    "sr-x4": dict(
        task="sr",
        factor=4,
        prior="skip",
        prior_params=_HOURGLASS_128,
        input_code="noise",
        input_depth=32,
        lr=0.01,
        iterations=2000,
        reg_noise_std=0.03,
        **_CDC,
    ),
    "sr-x8": dict(
        task="sr",
        factor=8,
        prior="skip",
        prior_params=_HOURGLASS_128,
        input_code="noise",
        input_depth=32,
        lr=0.01,
        iterations=4000,
        reg_noise_std=0.05,
        **_CDC,
    ),
    # inpainting.ipynb, text mask (kate): skip with 128-channel skips, nearest upsampling, 6000 its.
    "inpaint": dict(
        task="inpaint",
        prior="skip",
        prior_params={**_HOURGLASS_128, "channels_skip": (128,), "upsample": "nearest"},
        input_code="noise",
        input_depth=32,
        lr=0.01,
        iterations=6000,
        reg_noise_std=0.03,
    ),
    # restoration.ipynb, 50 % missing pixels (barbara): skip 128/128/4 bilinear, LR 0.001, 11000 its.
    "inpaint-pixels": dict(
        task="inpaint",
        prior="skip",
        prior_params=_HOURGLASS_128,
        input_code="noise",
        input_depth=32,
        lr=0.001,
        iterations=11000,
        reg_noise_std=0.03,
        **_CDC,
    ),
    # inpainting.ipynb, large hole (vase): hourglass without skips on a meshgrid input, 5000 its.
    "inpaint-large": dict(
        task="inpaint",
        prior="hourglass",
        prior_params={**_HOURGLASS_128, "channels_skip": (0,), "upsample": "nearest"},
        input_code="meshgrid",
        input_depth=2,
        lr=0.01,
        iterations=5000,
        reg_noise_std=0.03,
    ),
}


def preset_name(task: str, factor: int = 4, mask_hole_fraction: float | None = None) -> str:
    """The default preset for a task; scattered missing pixels (many holes) get the restoration preset."""
    if task == "sr":
        return f"sr-x{factor}" if f"sr-x{factor}" in PRESETS else "sr-x4"
    if task == "inpaint" and mask_hole_fraction is not None and mask_hole_fraction > 0.25:
        return "inpaint-pixels"
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    return task


def preset(name: str, **overrides: Any) -> RunConfig:
    """The RunConfig of a preset, with ``overrides`` applied, validated."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    values = {**PRESETS[name], "preset": name, **overrides}
    return RunConfig(**values).validated()
