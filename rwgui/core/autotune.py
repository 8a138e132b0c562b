"""Speed settings chosen by measurement: what "auto" means for precision, channels-last, fused Adam and threads.

Why measure: which settings are fastest depends on the machine as it is. With AMX-BF16, bfloat16 autocast with
channels-last is several times faster than float32; on an AVX2-only CPU channels-last in float32 is *slower*
than NCHW, and on a host where another process is busy, every thread but one can make a step several times
slower (OpenMP's threads wait for each other at every kernel). No fixed rule is right everywhere, so the first
run of a network at a size bucket on a machine times a few steps of the real network (the run's prior and
settings, on a synthetic problem of the run's task: the pre-image's classifier runs forward and backward in every
step and can cost more than the prior) at a small working size for each candidate combination and keeps the
fastest, cached as JSON in the user's configuration folder (:func:`cache_path`), keyed by the network and, where it
changes a step's cost, the task (:func:`cache_key`). A measurement inside :func:`rwgui.core.cancel.cancellable`
gives up between two steps when asked, caching nothing. The plain configuration (float32, NCHW, the plain Adam loop,
torch's own thread count) is always a candidate, so the choice is never one measured slower than it.

What is not timed: ``torch.compile`` (minutes of compiling, measured no faster on the CPU; the setting is
honoured as given) and ``overlap`` (its own rule, :func:`rwgui.core.device.overlaps`). A setting that is not
"auto" (threads not 0) is honoured as given and never measured over.

Qt-free; the studio calls :func:`resolve` in its worker thread before the run (the GUI thread never times), the
CLI and the Lab get it through :class:`~rwgui.core.engine.Engine`. ``RWGUI_SPEED_TUNING=off`` replaces the
measurement by the fixed rule of :func:`fixed_rule` (the test suite sets it: a choice that depends on the
machine's load would make tests machine-dependent); ``RWGUI_CONFIG_DIR`` moves the cache's folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import cancel
from .atomic import atomic_file
from .config import RunConfig, SpeedConfig
from .device import cpu_has_native_bf16, cuda_facts, default_threads, fused_adam_device, resolve_device
from .errors import RwguiError
from .vocabulary import Task

if TYPE_CHECKING:
    from .engine import Engine
    from .problems import Problem

#: The settings "auto" tunes, in the order a candidate's label names them.
TUNED = ("precision", "channels_last", "fused_optimizer", "threads")
#: Tasks whose step costs what denoising's does (the operator is the identity, or a product with the mask):
#: timed on a denoising problem and cached under one key. Every other task is timed on its own problem.
DENOISING_STEP = (Task.DENOISE, Task.JPEG, Task.REAL_NOISE, Task.INPAINT)
#: 2: choices measured at 96 px (version 1) ranked large photos wrongly and are measured again.
CACHE_VERSION = 2
#: The side of the square working size the candidates are timed at on a CPU (smaller photos: their own bucket).
#: Not smaller: at 96 px a step is mostly per-step overhead, the candidates lie within 1.4x of each other and a
#: busy neighbour reorders them; one measured choice there (float32, NCHW) made 1088x1088 steps 2.3x slower
#: than bfloat16 with channels-last (6.9 against 3.0 s on one core of an AMX-BF16 Xeon), while from 192 px up the
#: ranking is the one at 512 and 1088 px (rwgui/bench/README.md, "The tuning side").
TUNE_SIDE = 192
#: The same on a GPU, which is launch-bound at small sizes: a larger side, still a fraction of a second a step.
TUNE_SIDE_GPU = 512
#: Timed rounds; each round times every surviving candidate once, in turn, so that a busy machine slows all
#: alike; the median over rounds decides.
ROUNDS = 3
#: Steps per candidate per round, after one untimed warm-up step (oneDNN picks its kernels at the first).
STEPS_PER_ROUND = 1
#: After the first round a candidate this many times slower than the fastest is dropped (it cannot win, and on
#: a busy machine an oversubscribed thread count can take seconds per step).
DROP_RATIO = 2.5

_lock = threading.Lock()


# ----- where the cache lives ------------------------------------------------------------------------------
def config_dir() -> Path:
    """rwgui's configuration folder: ``RWGUI_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/rwgui`` (``~/.config/rwgui``);
    on Windows ``%APPDATA%\\rwgui``, on macOS ``~/Library/Application Support/rwgui``."""
    if os.environ.get("RWGUI_CONFIG_DIR"):
        return Path(os.environ["RWGUI_CONFIG_DIR"])
    system = platform.system()
    if system == "Windows" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "rwgui"
    if system == "Darwin":
        return Path.home() / "Library" / "Application Support" / "rwgui"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rwgui"


def cache_path() -> Path:
    """The JSON file of measured choices (``speed.json`` in :func:`config_dir`)."""
    return config_dir() / "speed.json"


def tuning_enabled() -> bool:
    """False when ``RWGUI_SPEED_TUNING`` is 0/off/no/false: "auto" then follows :func:`fixed_rule`."""
    return os.environ.get("RWGUI_SPEED_TUNING", "on").strip().lower() not in ("0", "off", "no", "false")


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def _write_cache(entries: dict[str, Any]) -> None:
    """Written to a temporary file and renamed: a second process never reads half a file. A folder that cannot
    be written only costs a measurement next time."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "w", encoding="utf-8") as f:
            f.write(json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1))
    except OSError:
        pass


def forget() -> None:
    """Forget every measured choice: the next run measures again (``rwgui-restore --retune``, the studio's
    Re-measure button)."""
    with _lock:
        try:
            cache_path().unlink()
        except OSError:
            pass


def cached_choices() -> dict[str, Any]:
    """The cache's entries, key -> {"speed": ..., "seconds": {candidate: s/step}, "when": ...}."""
    with _lock:
        return _read_cache()


# ----- what the machine is --------------------------------------------------------------------------------
def _cpu_identity() -> str:
    model, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == (platform.processor() or platform.machine()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value.strip()
    except OSError:
        pass
    digest = hashlib.sha1(flags.encode()).hexdigest()[:8] if flags else "noflags"
    return f"{model} flags:{digest} {os.cpu_count() or 1}c"


def machine_key(device: torch.device) -> str:
    """torch's version and the device: CPU model, a hash of its flags, its core count and whether bfloat16 is
    native (``RWGUI_NO_BF16`` changes it); a GPU's name."""
    if device.type == "cuda":
        facts = cuda_facts(device)
        what = f"cuda {facts.name if facts is not None else torch.cuda.get_device_name(device)}"
    elif device.type == "mps":
        what = f"mps {platform.machine()} {platform.processor()}"
    else:
        what = f"cpu {_cpu_identity()} bf16:{int(cpu_has_native_bf16())}"
    return f"torch {torch.__version__} | {what}"


def size_bucket(size: Sequence[int]) -> int:
    """The power of two nearest the photo's geometric mean side: photos in one bucket share a choice."""
    h, w = int(size[0]), int(size[1])
    return int(2 ** round(math.log2(max(1.0, math.sqrt(h * w)))))


def _network_signature(cfg: RunConfig, channels: int) -> str:
    """What the timed network is: the prior and its parameters, the input code, the loss prior, the channels."""
    what = [
        cfg.prior,
        sorted((k, list(v) if isinstance(v, tuple) else v) for k, v in dict(cfg.prior_params).items()),
        cfg.input_code,
        cfg.input_depth,
        channels,
        cfg.loss_prior,
        sorted(dict(cfg.loss_prior_params).items()),
        cfg.tv_weight > 0,
    ]
    return f"{cfg.prior} " + hashlib.sha1(json.dumps(what, default=str).encode()).hexdigest()[:10]


def _task_signature(cfg: RunConfig) -> str:
    """The key's part for the task: empty for a task whose step costs denoising's (``DENOISING_STEP``: they share
    one entry, under the key's form from before tasks were told apart), else the task and
    a hash of what of it changes a step's cost (:func:`rwgui.core.estimate.task_identity`: the pre-image's
    classifier, layer and weights file, the deblur kernel, the super-resolution factor)."""
    if cfg.task in DENOISING_STEP:
        return ""
    from .estimate import task_identity

    return f" | task:{cfg.task} " + hashlib.sha1(task_identity(cfg).encode()).hexdigest()[:10]


def cache_key(cfg: RunConfig, size: Sequence[int], device: torch.device, channels: int = 3) -> str:
    """Machine, size bucket, network, the settings the person forced (they shape the candidates) and, where it
    changes a step's cost, the task (:func:`_task_signature`)."""
    cfg = cfg.validated()
    forced = ",".join(f"{n}={getattr(cfg.speed, n)}" for n in TUNED if not _is_auto(cfg.speed, n))
    return (
        f"{machine_key(device)} | {size_bucket(size)}px | {_network_signature(cfg, channels)} | forced:{forced or '-'}"
        + _task_signature(cfg)
    )


# ----- candidates ------------------------------------------------------------------------------------------
def _is_auto(speed: SpeedConfig, name: str) -> bool:
    value = getattr(speed, name)
    return value == 0 if name == "threads" else value == "auto"


def needs_tuning(speed: SpeedConfig) -> bool:
    """Whether any tuned setting is "auto" (threads 0)."""
    return any(_is_auto(speed, n) for n in TUNED)


def plain_threads() -> int:
    """The thread count a plain torch script gets (torch's default, read before rwgui changed it)."""
    return _PLAIN_THREADS


_PLAIN_THREADS = torch.get_num_threads()


def thread_candidates(cores: int | None = None) -> list[int]:
    """1, the powers of two between, all cores but one, all cores and torch's own default: on a busy machine
    fewer threads than cores can be several times faster."""
    n = cores or os.cpu_count() or 1
    out = {1, max(1, n - 1), n, min(n, _PLAIN_THREADS)}
    p = 2
    while p < n - 1:
        out.add(p)
        p *= 2
    return sorted(out)


def _native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        facts = cuda_facts(device)
        return facts is not None and facts.bf16_native
    return device.type == "cpu" and cpu_has_native_bf16()


def fixed_rule(speed: SpeedConfig, device: torch.device) -> SpeedConfig:
    """ "auto" without measuring (tuning off): bfloat16 with channels-last where bfloat16 is native, else float32
    in NCHW (channels-last in float32 was slower on an AVX2 CPU); fused Adam where the kernel exists; all cores
    but one."""
    bf16 = _native_bf16(device)
    values: dict[str, Any] = {
        "precision": "bfloat16" if bf16 else "float32",
        "channels_last": "on" if bf16 or device.type == "cuda" else "off",
        "fused_optimizer": "on" if fused_adam_device(device) else "off",
        "threads": default_threads(),
    }
    return dataclasses.replace(speed, **{n: values[n] for n in TUNED if _is_auto(speed, n)})


def _concrete_precision(precision: str, device: torch.device) -> list[str]:
    if precision != "auto":
        return [precision]
    # bfloat16 only where it is native: emulated, it is slower than float32; its PSNR was within the seed-to-seed
    # spread of float32's (rwgui/bench/README.md), so it is exact enough to be chosen by speed alone
    return ["float32", "bfloat16"] if _native_bf16(device) else ["float32"]


def candidates(speed: SpeedConfig, device: torch.device) -> list[SpeedConfig]:
    """Every combination of the settings left at "auto", the forced ones fixed, on one thread count (threads are
    searched separately: see :func:`tune`). The first is the plain configuration where the forced settings
    allow it."""
    precisions = _concrete_precision(speed.precision, device)
    layouts = ["off", "on"] if speed.channels_last == "auto" else [speed.channels_last]
    fused = (
        (["off", "on"] if fused_adam_device(device) else ["off"])
        if speed.fused_optimizer == "auto"
        else [speed.fused_optimizer]
    )
    return [
        dataclasses.replace(speed, precision=p, channels_last=c, fused_optimizer=f)
        for p in precisions
        for c in layouts
        for f in fused
    ]


def label(speed: SpeedConfig) -> str:
    """A candidate's short name, e.g. 'bfloat16 cl:on fused:on t1'."""
    return f"{speed.precision} cl:{speed.channels_last} fused:{speed.fused_optimizer} t{speed.threads}"


# ----- timing ----------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_steps(engine: Engine, steps: int) -> float:
    """Seconds per step of ``steps`` steps of ``engine``, on the calling thread (the one timer: tests replace
    it to make a choice deterministic or to see which thread times)."""
    _sync(engine.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        engine.step()
    _sync(engine.device)
    return (time.perf_counter() - t0) / steps


def _set_threads(engine: Engine, threads: int) -> None:
    if engine.device.type == "cpu":
        torch.set_num_threads(threads)


def tuning_problem(cfg: RunConfig, size: Sequence[int], channels: int = 3) -> Problem:
    """The problem the candidates are timed on: a synthetic one of ``cfg``'s task
    (:func:`rwgui.core.estimate.synthetic_problem`, the one the estimate times), since the task's operator is
    part of every step (the pre-image's classifier can cost more than the prior) and its precision and layout
    choices with it; denoising's for a task whose step costs the same (``DENOISING_STEP``), and where the task's
    problem cannot be built from ``cfg`` alone (its weights file is missing)."""
    from .estimate import synthetic_problem

    hw = (int(size[0]), int(size[1]))
    if cfg.task not in DENOISING_STEP:
        try:
            return synthetic_problem(cfg.task, channels, cfg.factor, hw, cfg.task_params)
        except (RwguiError, OSError, ValueError):
            pass
    return synthetic_problem(Task.DENOISE, channels, 1, hw)


def _engine(problem: Problem, cfg: RunConfig, speed: SpeedConfig) -> Engine:
    from .engine import Engine

    # no stopping bookkeeping beyond the config's own, no guard snapshots' first copy in the timed steps
    return Engine(problem, cfg.replace(speed=speed, iterations=1_000_000, auto_stop=False))


def measure_step_seconds(
    problem_or_size: Problem | Sequence[int],
    config: RunConfig,
    steps: int = 3,
    *,
    warmup: int = 1,
    on_status: Callable[[str], None] | None = None,
) -> float:
    """Median seconds per step of ``config``'s run on a Problem, or on a synthetic problem of its task of
    ``(h, w)`` (:func:`tuning_problem`): "auto" speed settings are resolved first (measured once and cached, see
    :func:`resolve`), the engine is built, ``warmup`` steps run untimed, then ``steps`` steps are timed one by
    one. For estimates (the time a run will take) and for the speed benchmarks; call it off the GUI thread."""
    from .problems import Problem

    cfg = config.validated()
    problem = problem_or_size if isinstance(problem_or_size, Problem) else tuning_problem(cfg, problem_or_size)
    device = resolve_device(cfg.device)
    speed = resolve(cfg, problem.size, device, channels=problem.channels, on_status=on_status)
    engine = _engine(problem, cfg, speed)
    for _ in range(warmup):
        cancel.check()
        engine.step()
    seconds = []
    for _ in range(max(1, steps)):
        cancel.check()
        seconds.append(time_steps(engine, 1))
    return float(statistics.median(seconds))


@dataclass
class Tuning:
    """A measurement's outcome: the chosen settings and every timed candidate's median seconds per step."""

    speed: SpeedConfig
    seconds: dict[str, float] = field(default_factory=dict)
    key: str = ""
    cached: bool = False

    def plain_label(self) -> str | None:
        """The plain configuration's label among the timed ones, if it was a candidate."""
        for name in self.seconds:
            if name.startswith("float32 cl:off fused:off t") and name.endswith(f"t{plain_threads()}"):
                return name
        return None


def _race(
    pool: dict[str, tuple[Engine, int]], rounds: int, steps: int, seconds: dict[str, list[float]]
) -> dict[str, float]:
    """Time every candidate once per round, in turn; drop the hopeless after the first round. Median s/step."""
    warm: set[int] = set()
    for eng, threads in pool.values():  # warm-up, once per engine: kernels chosen, first-step allocations done
        if id(eng) not in warm and eng.iteration == 0:
            cancel.check()
            _set_threads(eng, threads)
            eng.step()
        warm.add(id(eng))
    alive = list(pool)
    for r in range(rounds):
        for name in alive:
            cancel.check()
            eng, threads = pool[name]
            _set_threads(eng, threads)
            seconds.setdefault(name, []).append(time_steps(eng, steps))
        if r == 0:
            best = min(seconds[n][-1] for n in alive)
            alive = [n for n in alive if seconds[n][-1] <= DROP_RATIO * best]
    return {n: float(statistics.median(v)) for n, v in seconds.items()}


def tune(
    config: RunConfig,
    size: Sequence[int],
    device: torch.device | None = None,
    *,
    channels: int = 3,
    side: int | None = None,
) -> Tuning:
    """Measure, without the cache: the fastest candidate for ``config``'s network and task at ``size``'s bucket
    (timed on :func:`tuning_problem`).

    Two stages, to keep it to seconds: the engine settings (precision x layout x fused Adam) race on one
    thread (their ranking does not need the machine's other cores, and one thread is never disturbed by a
    busy neighbour); then the winner and the plain configuration race over the thread counts. The winner of
    the second race is chosen; the plain configuration at torch's own thread count is always in it."""
    cfg = config.validated()
    device = device or resolve_device(cfg.device)
    if side is None:
        side = TUNE_SIDE if device.type == "cpu" else TUNE_SIDE_GPU
    s = max(16, min(side, size_bucket(size)))
    problem = tuning_problem(cfg, (s, s), channels)
    speed = cfg.speed
    threads_fixed = speed.threads if speed.threads else None
    cands = candidates(speed, device)
    first_threads = threads_fixed or 1
    saved = torch.get_num_threads()
    try:
        pool = {}
        for c in cands:
            cancel.check()
            c = dataclasses.replace(c, threads=first_threads)
            pool[label(c)] = (_engine(problem, cfg, c), first_threads)
        stage1 = _race(pool, ROUNDS, STEPS_PER_ROUND, {})
        if device.type != "cpu" or threads_fixed:
            # a GPU's speed does not depend on the host's thread count: the engine's default serves it
            best = min(stage1, key=stage1.__getitem__)
            chosen = next(
                dataclasses.replace(c, threads=threads_fixed or default_threads())
                for c in cands
                if label(dataclasses.replace(c, threads=first_threads)) == best
            )
            return Tuning(chosen, stage1)
        winner = min(stage1, key=stage1.__getitem__)
        finalists = [pool[winner][0].speed]
        plain = dataclasses.replace(speed, precision="float32", channels_last="off", fused_optimizer="off")
        plain_label = label(dataclasses.replace(plain, threads=first_threads))
        if plain_label in pool and plain_label != winner:
            finalists.append(pool[plain_label][0].speed)
        pool2: dict[str, tuple[Engine, int]] = {}
        for f in finalists:
            base = pool[label(dataclasses.replace(f, threads=first_threads))][0]
            for t in thread_candidates():
                pool2[label(dataclasses.replace(f, threads=t))] = (base, t)
        stage2 = _race(pool2, ROUNDS, STEPS_PER_ROUND, {})
        best2 = min(stage2, key=stage2.__getitem__)
        chosen_speed = dataclasses.replace(pool2[best2][0].speed, threads=pool2[best2][1])
        return Tuning(chosen_speed, {**{f"{k} (stage 1)": v for k, v in stage1.items()}, **stage2})
    finally:
        torch.set_num_threads(saved)


def _speed_from_json(speed: SpeedConfig, values: dict[str, Any]) -> SpeedConfig:
    return dataclasses.replace(speed, **{n: values[n] for n in TUNED if _is_auto(speed, n)})


def resolve(
    config: RunConfig,
    size: Sequence[int],
    device: torch.device | None = None,
    *,
    channels: int = 3,
    on_status: Callable[[str], None] | None = None,
) -> SpeedConfig:
    """``config.speed`` with every tuned "auto" replaced: from the cache, or measured now and cached (calling
    ``on_status("measuring speed…")`` first), or by :func:`fixed_rule` when tuning is off. Forced settings are
    returned unchanged. Safe to call from any thread but the GUI's (it may take seconds)."""
    cfg = config.validated()
    device = device or resolve_device(cfg.device)
    return resolve_tuning(cfg, size, device, channels=channels, on_status=on_status).speed


def known_speed(
    config: RunConfig, size: Sequence[int], device: torch.device, *, channels: int = 3
) -> SpeedConfig | None:
    """``config.speed`` resolved as :func:`resolve` would resolve it, without measuring: forced settings as given,
    the fixed rule when tuning is off, else the cached choice; None when only a measurement can tell (nothing
    cached yet, or a GPU whose facts this thread may not ask). For whoever must know what a run will use before
    it runs: the memory planner, whose footprint depends on the precision."""
    if device.type == "cuda" and needs_tuning(config.speed) and tuning_enabled() and cuda_facts(device) is None:
        return None  # the cache key names the GPU, which a quiet thread may not ask
    known = _known_tuning(config, size, device, channels)
    return None if known is None else known.speed


def _known_tuning(config: RunConfig, size: Sequence[int], device: torch.device, channels: int) -> Tuning | None:
    """The tuning without a measurement (forced, the fixed rule, or cached); None when it takes one."""
    speed = config.speed
    if not needs_tuning(speed):
        return Tuning(speed, cached=True)
    if not tuning_enabled():
        return Tuning(fixed_rule(speed, device), cached=True)
    key = cache_key(config, size, device, channels)
    with _lock:
        hit = _read_cache().get(key)
    if isinstance(hit, dict) and isinstance(hit.get("speed"), dict):
        try:
            return Tuning(_speed_from_json(speed, hit["speed"]), dict(hit.get("seconds", {})), key, cached=True)
        except (KeyError, TypeError, ValueError):
            pass  # an entry of another rwgui: measured again
    return None


def resolve_tuning(
    config: RunConfig,
    size: Sequence[int],
    device: torch.device,
    *,
    channels: int = 3,
    on_status: Callable[[str], None] | None = None,
) -> Tuning:
    """:func:`resolve`, with the measurement behind the choice (``cached`` says whether it was measured now)."""
    known = _known_tuning(config, size, device, channels)
    if known is not None:
        return known
    key = cache_key(config, size, device, channels)
    if on_status is not None:
        on_status("measuring speed…")
    result = tune(config, size, device, channels=channels)
    result.key = key
    with _lock:
        entries = _read_cache()
        entries[key] = {
            "speed": {n: getattr(result.speed, n) for n in TUNED},
            "seconds": {k: round(v, 6) for k, v in result.seconds.items()},
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        _write_cache(entries)
    return result
