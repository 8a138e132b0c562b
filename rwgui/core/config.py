"""Run settings: a frozen dataclass per run, presets per task (the paper's settings), JSON round trip.

A ``RunConfig`` is snapshotted when the person presses Start; the worker never sees live GUI state.
Variant parameters are resolved against their registry entry, so the JSON always holds every value.

Each setting is declared once, as a field made by :func:`~rwgui.core.params.setting` (default, help, range);
``RUN_PARAMS`` and ``SPEED_PARAMS`` are read from those fields, and the CLI flags, the window's forms and the
JSON follow them. A preset (``PRESETS``) is the only source of a task's defaults: the CLI, the window and the
Lab all start from :func:`preset`.
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
from .params import Param, Registry, key_path, params_of, setting, shown
from .priors import INPUT_CODES, PRIORS
from .vocabulary import Task

SCHEMA_VERSION = 1
TASKS: tuple[Task, ...] = tuple(Task)
#: The super-resolution factors: the only ones the config accepts, the window offers and ``--factor`` takes.
SR_FACTORS: tuple[int, ...] = (2, 4, 8)
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
OVERLAPS = ("auto", "on", "off")
#: Channels-last and fused Adam: measured, forced on, forced off.
TRISTATE = ("auto", "on", "off")
_BOOL_WORDS = {"true": "on", "false": "off", "yes": "on", "no": "off", "1": "on", "0": "off"}
#: Settings that describe the machine, not the photo: no preset names them, so choosing a task or a preset
#: (or "Reset to preset") keeps them.
MACHINE_SETTINGS = ("device", "speed")


@dataclass(frozen=True)
class SpeedConfig:
    """Speed settings; each can be forced. Field order is the order of the Speed form.

    'auto' (threads 0) means measured: the first run of a network at a photo size on a machine times a few
    steps of each candidate and keeps the fastest, cached per machine (``rwgui.core.autotune``). Channels-last
    and fused Adam are 'auto', 'on' or 'off'; older settings files wrote true/false, read as 'on'/'off'."""

    precision: str = setting(
        "auto",
        "Arithmetic of the network: 'auto' = measured: bfloat16 or float32 where the device does bfloat16 "
        "natively (CUDA from compute capability 8.0, CPUs with AMX or AVX512-BF16), else float32. "
        "'float32' on CUDA turns TF32 off; 'float16' scales the loss against underflow.",
        choices=PRECISIONS,
    )
    channels_last: str = setting(
        "auto",
        "Channels-last memory format ('auto' = measured: faster with bfloat16 and on GPUs, slower than NCHW "
        "in float32 on some CPUs).",
        choices=TRISTATE,
    )
    overlap: str = setting(
        "auto",
        "Fetch each step's numbers while the next step runs ('auto' = on CUDA; "
        "off on MPS, where a copy waits for the device): the loop never waits for the device; reports arrive "
        "one step late.",
        choices=OVERLAPS,
    )
    compile: bool = setting(
        False,
        "torch.compile the network (minutes of compiling first; falls back to "
        "eager if it fails). Measured no faster on the CPU; 'auto' never turns it on.",
    )
    fused_optimizer: str = setting(
        "auto",
        "Adam's update as one fused kernel ('auto' = measured; CUDA and CPU; measured 3.3 ms "
        "instead of 9 ms per step for the paper's network on a CPU core). Same arithmetic, in another order.",
        choices=TRISTATE,
    )
    threads: int = setting(
        0,
        "CPU threads for the network (0 = measured: on a machine where another process is busy, fewer threads "
        "than cores can be several times faster).",
        min=0,
        max=1024,
    )

    def __post_init__(self) -> None:
        # true/false (older settings files, code that passes a bool) read as 'on'/'off'
        for name in ("channels_last", "fused_optimizer"):
            value = getattr(self, name)
            if isinstance(value, bool) or value in (0, 1):
                object.__setattr__(self, name, "on" if value else "off")
            elif isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
                object.__setattr__(self, name, _BOOL_WORDS[value.strip().lower()])


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run (besides the photo and mask).

    The field defaults are the ``denoise`` preset: ``RunConfig()`` and ``preset("denoise")`` are the same
    settings, and every other preset names only what it changes (``PRESETS``).
    """

    # What to restore and with which variants: each has a control of its own in the window and a hand-written
    # CLI argument; a variant's parameters come from its registry entry.
    task: Task = Task.DENOISE
    preset: str = "denoise"
    factor: int = 4  # super-resolution only: one of SR_FACTORS
    # the task's own parameters (rwgui.core.tasks: the deblur kernel, the pre-image's weights and layer)
    task_params: Mapping[str, Any] = field(default_factory=dict)
    prior: str = "skip"
    prior_params: Mapping[str, Any] = field(default_factory=dict)
    stop: str = "es-wmv"
    stop_params: Mapping[str, Any] = field(default_factory=dict)
    auto_stop: bool = True
    loss_prior: str = "none"
    loss_prior_params: Mapping[str, Any] = field(default_factory=dict)
    # Run settings, one line each (RUN_PARAMS), in the order of the window's Optimisation form.
    iterations: int = setting(
        3000, "Optimisation steps (the budget; a stopping rule may end earlier).", min=1, max=1_000_000
    )
    seed: int = setting(
        0,
        "Random seed: the same seed gives the same run, to the bit on the CPU with the same thread count; "
        "on CUDA close but not bit-identical (some backward kernels add in a varying order).",
        min=0,
        max=2**31 - 1,
    )
    lr: float = setting(0.01, "Adam learning rate.", min=1e-6, max=1.0, log=True)
    reg_noise_std: float = setting(
        1 / 30, "Std of the noise added to the input code each step (0 = none).", min=0.0, max=1.0
    )
    input_code: str = setting(
        "noise", "Network input: uniform noise, a coordinate grid, or the photo itself.", choices=INPUT_CODES
    )
    input_depth: int = setting(32, "Channels of the noise input code.", min=1, max=256)
    exp_weight: float = setting(
        0.99, "Weight of the running average of outputs (0.99 in the paper).", min=0.0, max=0.9999
    )
    tv_weight: float = setting(0.0, "Weight of total variation (DIP-TV); 0 disables it.", min=0.0, max=10.0, log=True)
    guard: bool = setting(True, "Restore the last good weights and optimiser state when the loss jumps.")
    guard_ratio: float = setting(3.0, "Loss jump (x the last good loss) that triggers the guard.", min=1.1, max=1000.0)
    device: str = setting("auto", "Compute device ('auto' = CUDA, else MPS, else CPU).", choices=DEVICE_CHOICES)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    # Inpainting's result (rwgui.core.compositing): the photo's known pixels, the network's output in the holes.
    keep_known: bool = setting(
        True,
        "Inpainting: the result keeps the photo's known pixels and takes the network's output only in the holes "
        "(off: the network's output everywhere, known pixels included).",
    )
    seam_px: int = setting(
        1,
        "Inpainting: pixels of feathered seam on the known side of each hole's edge, where the network's output "
        "is blended into the photo (0 = a hard paste; known pixels farther from a hole are never changed). "
        "1 px gave the smallest error at the holes' edges on the benchmark (rwgui/bench/README.md).",
        min=0,
        max=64,
    )

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def validated(self) -> RunConfig:
        """Every value coerced and range-checked, variant parameters resolved to full dicts.

        The one place the settings' rules are applied, to a settings file (:meth:`from_dict`) as to the forms and
        the CLI: a ConfigError names the key path of the first bad value as a settings file spells it
        (``prior_params.channels_down[2]``, ``speed.threads``)."""
        task = _TASK.coerce(self.task)
        preset_ = _PRESET.coerce(self.preset)
        factor = _FACTOR.coerce(self.factor)
        auto_stop = _AUTO_STOP.coerce(self.auto_stop)
        speed = SpeedConfig(
            **{p.name: p.coerce(getattr(self.speed, p.name), where=f"speed.{p.name}") for p in SPEED_PARAMS}
        )
        run = {p.name: p.coerce(getattr(self, p.name)) for p in RUN_PARAMS}
        variants = _variant_registries()
        changes: dict[str, Any] = dict(run, task=task, preset=preset_, factor=factor, auto_stop=auto_stop, speed=speed)
        from .tasks import task_spec

        changes["task_params"] = task_spec(task).variant.resolve(self.task_params, where="task_params")
        for key, (reg, params_key) in variants.items():
            name = getattr(self, key)
            if key == "loss_prior" and name == "none":
                changes[params_key] = {}
                continue
            changes[params_key] = reg.get(name, where=key).resolve(getattr(self, params_key), where=params_key)
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
    def from_dict(cls, data: Any) -> RunConfig:
        """Settings parsed from JSON (a file, the session file, the window's stored state), validated.

        Whatever ``data`` is, the outcome is a valid RunConfig or a one-line ConfigError naming the key path:
        this checks the file's shape (an object, its version, known keys, ``speed`` an object) and
        :meth:`validated` checks every value."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"settings must be a JSON object of settings; got {shown(data)}")
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ConfigError(
                f"schema_version: must be an integer (this rwgui reads {SCHEMA_VERSION}); got {shown(version)}"
            )
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"schema_version: the file is of version {shown(version)}; this rwgui reads version {SCHEMA_VERSION}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(key_path("", k) for k in data if k not in names)
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(unknown)}")
        if "speed" in data:
            speed = data["speed"]
            known = [f.name for f in dataclasses.fields(SpeedConfig)]
            if not isinstance(speed, Mapping):
                raise ConfigError(
                    f"speed: must be an object of speed settings ({', '.join(known)}); got {shown(speed)}"
                )
            bad = sorted(key_path("speed", k) for k in speed if k not in known)
            if bad:
                raise ConfigError(f"unknown settings: {', '.join(bad)}")
            data["speed"] = SpeedConfig(**speed)
        given = data.get("loss_prior_params")
        if data.get("loss_prior", cls.loss_prior) == "none" and given not in (None, {}):
            # validated() drops them quietly for code that switches the loss prior off; a file saying both is
            # asking for two things at once
            where = key_path("loss_prior_params", next(iter(given))) if isinstance(given, Mapping) else ""
            raise ConfigError(
                f"{where or 'loss_prior_params'}: loss_prior 'none' takes no parameters; got {shown(given)}"
            )
        return cls(**data).validated()

    @classmethod
    def from_json(cls, text: str | bytes) -> RunConfig:
        """Settings from JSON text (or its UTF-8 bytes). Bytes that are not UTF-8, a syntax error (with its line
        and column), nesting deeper than the parser recurses, a number of too many digits and a key given twice
        in one object are each a ConfigError, not the parser's exception."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"settings are not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
                ) from None
        twice: list[tuple[dict[str, Any], str]] = []
        try:
            data = json.loads(text.removeprefix("\ufeff"), object_pairs_hook=lambda pairs: _json_object(pairs, twice))
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ConfigError(f"settings are not valid JSON: {exc.msg} at {where}") from None
        except RecursionError:
            raise ConfigError("settings are not usable JSON: arrays or objects nested too deeply") from None
        except ValueError:  # an integer literal beyond Python's limit on digits (4300)
            raise ConfigError("settings are not usable JSON: a number has too many digits") from None
        if twice:
            obj, key = twice[0]
            raise ConfigError(f"{key_path(_path_of(data, obj), key)}: given twice in one object; keep one")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Settings from a file; every error names the file and, for a bad value, its key path."""
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_SETTINGS_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from None
        if len(raw) > MAX_SETTINGS_BYTES:
            raise ConfigError(f"settings file {path}: larger than {MAX_SETTINGS_BYTES // 2**20} MiB; is it settings?")
        try:
            return cls.from_json(raw)
        except ConfigError as exc:
            raise ConfigError(f"settings file {path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")


#: The speed settings and the run-level settings that are not a variant's parameters, read from their fields.
SPEED_PARAMS: tuple[Param, ...] = params_of(SpeedConfig)
RUN_PARAMS: tuple[Param, ...] = params_of(RunConfig)
#: How validation checks the task and the factor (their controls and CLI arguments are hand-made).
_TASK = Param("task", "choice", RunConfig.task, "What to restore.", choices=TASKS)
_FACTOR = Param("factor", "int", RunConfig.factor, "Super-resolution factor.", choices=SR_FACTORS)
#: The plain fields' rules, so a settings file's ``"preset": 3`` or ``"auto_stop": []`` is refused like any value.
_PRESET = Param("preset", "str", RunConfig.preset, "The preset the settings started from.")
_AUTO_STOP = Param("auto_stop", "bool", RunConfig.auto_stop, "Stop when the stopping rule says so.")
#: A settings file is a few KB; anything this large is another file given by mistake (or /dev/zero).
MAX_SETTINGS_BYTES = 16 * 2**20


def _json_object(pairs: list[tuple[str, Any]], twice: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """A JSON object as a dict, noting in ``twice`` a key given twice (``json`` would keep the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out and not twice:
            twice.append((out, key))
        out[key] = value
    return out


def _path_of(root: Any, target: object) -> str:
    """The key path of the object ``target`` inside parsed JSON ``root`` (iterative: the nesting may be deep)."""
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if isinstance(node, dict):
            stack.extend((v, key_path(path, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
    return ""


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
#: inpainting (+0.88 dB), mean of three photos, for ~5 % more time per step (rwgui/bench/README.md); on denoising the
#: measurement was inconclusive, so denoising keeps no loss prior.
_CDC = dict(loss_prior="cdc", loss_prior_params={"weight": 0.1})

#: The stopping rule per task, from the stopping benchmark (rwgui/bench/README.md, "Stopping at the peak without
#: ground truth": ten 128x128 denoising runs, σ = 25 and 50, 1200 iterations). Denoising stops with es-wmv: its
#: pick was within 1 dB of the peak on 10/10 runs (median gap 0.45 dB, worst 0.69) where a fixed budget was on
#: 2/10 (median gap 2.57 dB, worst 7.19), and the running average at its pick, the result the CLI and the window
#: write, beat the fixed budget's average by 1.26 to 4.89 dB at σ = 50 and stayed within −0.72 to +0.55 dB of it
#: at σ = 25, where the fixed budget was 1200 iterations, not the preset's 3000 (a longer fit only follows the
#: noise further). Super-resolution and inpainting keep the paper's fixed budgets, also from that benchmark
#: (96x96 crops; sr-x4 at its 2000 iterations on 3 photos, inpaint and inpaint-pixels capped at 1200 on 2 each):
#: with no noise to fit, the iterates' variance kept falling to the end of every run, so es-wmv (window 100,
#: patience 1000) never stopped early, its pick came late (iteration 1706-2000 of 2000, 1198-1200 of
#: 1200) and its running average was the fixed budget's within 0.02 dB: no time saved, nothing gained. A
#: patience of 100 would stop early but end up to 1.42 dB (sr-x4) and 1.32 dB (inpaint-pixels) below them.
#: sr-x2 and sr-x8 were not measured and follow their kin; on inpaint-large es-wmv (patience 1000) never fired in
#: 1500 iterations on three 96x96 large-hole runs (rwgui/bench/README.md, "A large hole").
_PAPER_BUDGET = dict(stop="fixed")

#: The paper's settings per task (Ulyanov et al., the reference notebooks), the one source of every default:
#: each preset names what it changes from RunConfig's field defaults, which are the ``denoise`` preset
#: (denoising.ipynb, F16: skip 128/128/4, 5 scales, bilinear, 32-channel noise, reg noise 1/30, LR 0.01,
#: 3000 its; stopped by es-wmv). Keys are preset names.
PRESETS: dict[str, dict[str, Any]] = {
    "denoise": dict(task=Task.DENOISE),
    # super-resolution.ipynb: same net, reg noise 0.03 and 2000 its at x4, 0.05 and 4000 at x8.
    "sr-x2": dict(task=Task.SR, factor=2, iterations=2000, reg_noise_std=0.03, **_PAPER_BUDGET, **_CDC),
    "sr-x4": dict(task=Task.SR, factor=4, iterations=2000, reg_noise_std=0.03, **_PAPER_BUDGET, **_CDC),
    "sr-x8": dict(task=Task.SR, factor=8, iterations=4000, reg_noise_std=0.05, **_PAPER_BUDGET, **_CDC),
    # inpainting.ipynb, text mask (kate): skip with 128-channel skips, nearest upsampling, 6000 its.
    "inpaint": dict(
        task=Task.INPAINT,
        prior_params={"channels_skip": (128,), "upsample": "nearest"},
        iterations=6000,
        reg_noise_std=0.03,
        **_PAPER_BUDGET,
    ),
    # restoration.ipynb, 50 % missing pixels (barbara): the default net, LR 0.001, 11000 its.
    "inpaint-pixels": dict(task=Task.INPAINT, lr=0.001, iterations=11000, reg_noise_std=0.03, **_PAPER_BUDGET, **_CDC),
    # inpainting.ipynb, large hole (vase): hourglass without skips on a meshgrid input, 5000 its.
    # Measured against the inpaint preset on one centred 32x32 hole in 96x96 crops, both at 1500 its: PSNR in the hole
    # +0.54 / -4.75 / +6.63 dB (astronaut, chelsea, coffee), no clear winner (rwgui/bench/README.md, "A large hole").
    "inpaint-large": dict(
        task=Task.INPAINT,
        prior="hourglass",
        prior_params={"upsample": "nearest"},
        input_code="meshgrid",
        input_depth=2,
        iterations=5000,
        reg_noise_std=0.03,
        **_PAPER_BUDGET,
    ),
}


#: The new tasks' presets (the task registry, rwgui.core.tasks, describes each task). Each names only what it
#: changes from RunConfig's defaults (the denoise preset); the measurements behind them are in
#: rwgui/bench/README.md ("Tasks beyond the paper's three").
PRESETS.update(
    {
        # Denoising with the Deep Decoder (rwgui.core.priors.deep_decoder, its paper's defaults) on a fixed code:
        # the denoise preset's input jitter (1/30) cost it 5-10 dB, and without it the raw peak matched the skip
        # network's (σ = 25, 128x128 crops of astronaut, chelsea, coffee: 26.13 / 27.80 / 28.68 dB against
        # 25.96 / 27.77 / 28.96 at 500 iterations; 27.64 / 27.89 / 29.28 at 1500, with the last iterate only
        # 0.1-0.4 dB below the peak, so it barely overfits and 1500 iterations, the longest measured, is the
        # budget). es-wmv stays, as for the skip network: rwgui/bench/README.md ("Priors").
        "denoise-dd": dict(task=Task.DENOISE, prior="deep-decoder", reg_noise_std=0.0, iterations=1500),
        # The denoise preset's network at 32 channels per scale (same depth, skips, code and rule): what a time
        # budget or preview switches to on a CPU where the preset's network would be reduced
        # (rwgui.core.estimate.CPU_FAST_PRESETS). 128x128 crops, σ = 25, 40 s each on a quiet 2-core Xeon:
        # 0.03-0.04 s a step against 0.11-0.13 s for 128 channels (0.05-0.06 for 64), and a running average of
        # 28.68 / 29.02 / 30.96 dB (astronaut, chelsea, coffee) against 25.30 / 27.83 / 28.77 for 128 channels
        # and 27.33 / 29.01 / 30.19 for 64; as good as 128 channels' best at 1200 iterations (28.76 / 29.03 /
        # 30.59) in a third of the time: rwgui/bench/README.md ("Time told before Start, and time budgets").
        # No input jitter: a time budget gives it few iterations, and the jitter (1/30, as large as the code
        # itself) slows the narrow network's fit most of all. 512x512 photos downscaled as a 2-minute budget's
        # plan does, σ = 25, PSNR of the upscaled running average against the clean photo after 700 iterations
        # (`python -m rwgui.bench.time_budget curves`): with jitter 22.65 dB (astronaut, 256 px) and 23.31
        # (immunohistochemistry, 320 px), without 26.36 and 27.80; on the smooth retina it hardly matters (36.93
        # with at 320 px, 36.51 without at 256 px, past its 37.35 peak at 500). A 2-minute budget then gains
        # +5.9 / +6.9 / +17.0 dB on the three (+2.0 / +0.8 / +15.5 with jitter). Without jitter the network
        # overfits sooner (astronaut's 256 px crop at full size: peak 27.85 at 739, 26.35 at 2000), which
        # es-wmv catches (picked 378: 27.08; stopped at 1378).
        "denoise-fast": dict(
            task=Task.DENOISE, prior_params={"channels_down": (32,), "channels_up": (32,)}, reg_noise_std=0.0
        ),
        # Blind denoising at an unknown level: the denoise preset as it is. es-wmv needs no sigma, so the
        # estimate (rwgui.core.noise_estimate) is only shown; SURE would use it but needs the photo as input code.
        "real-noise": dict(task=Task.REAL_NOISE),
        # denoising.ipynb's JPEG snail: a lighter skip net (8..128 channels down and up, skips only at the two
        # deepest scales), a 3-channel noise code, 2400 iterations; es-wmv stops it earlier still, before the
        # net learns the 8x8 blocks.
        "jpeg": dict(
            task=Task.JPEG,
            prior_params={
                "channels_down": (8, 16, 32, 64, 128),
                "channels_up": (8, 16, 32, 64, 128),
                "channels_skip": (0, 0, 0, 4, 4),
            },
            input_depth=3,
            iterations=2400,
        ),
        # Deblurring is denoising's setting with the blur as A (same net, code, jitter, LR and rule): the paper
        # has no deblurring notebook, and the blur only changes what the data term compares.
        "deblur": dict(task=Task.DEBLUR),
        # flash-no-flash.ipynb: the flash photo as the input code, no input jitter (it would blur the flash
        # photo's detail that the code carries), a short fixed budget as the early stop.
        "flash": dict(task=Task.FLASH, input_code="observed", reg_noise_std=0.0, iterations=600, stop="fixed"),
        # the feature-inversion notebook's net (six scales, 16..128 channels, large filters at the fine scales,
        # average-pool down, nearest up, zero padding) with a lower LR than the notebook's, so that small photos
        # do not overshoot the feature match; a fixed budget (the photo's pixels are not the target, so no rule
        # that watches the output applies).
        "preimage": dict(
            task=Task.PREIMAGE,
            prior_params={
                "num_scales": 6,
                "channels_down": (16, 32, 64, 128, 128, 128),
                "channels_up": (16, 32, 64, 128, 128, 128),
                "channels_skip": (4,),
                "filter_size_down": (7, 7, 5, 5, 3, 3),
                "filter_size_up": (7, 7, 5, 5, 3, 3),
                "upsample": "nearest",
                "downsample": "avg",
                "pad": "zero",
            },
            lr=0.001,
            iterations=3000,
            stop="fixed",
        ),
    }
)


def preset_name(task: str, factor: int = RunConfig.factor, mask_hole_fraction: float | None = None) -> str:
    """The default preset for a task; scattered missing pixels (many holes) get the restoration preset."""
    task = _TASK.coerce(task)
    if task == Task.SR:
        return f"sr-x{_FACTOR.coerce(factor)}"
    if task == Task.INPAINT and mask_hole_fraction is not None and mask_hole_fraction > 0.25:
        return "inpaint-pixels"
    return str(task)


def preset(name: str, **overrides: Any) -> RunConfig:
    """The RunConfig of a preset, with ``overrides`` applied, validated."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    values = {**PRESETS[name], "preset": name, **overrides}
    return RunConfig(**values).validated()
