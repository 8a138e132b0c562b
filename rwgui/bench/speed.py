"""Iterations per second of rwgui's step against a plain implementation, in one process.

``python -m rwgui.bench.speed`` times the full engine step (forward, loss, backward, Adam, running average,
stopping bookkeeping with es-wmv) for the denoising, x4 super-resolution and inpainting presets, against a
baseline written here: the same network in eager float32 NCHW with the reference notebooks' textbook loop
(PSNR computed on the host every step). The two alternate in blocks of ``BLOCK`` steps, so that a busy machine
slows both alike, with one device sync before and after each block (a sync per step would hide the overlap the
engine is built for); medians per step and their ratio are printed, with a final-PSNR check on equal seeds and
iteration counts. On CUDA each side's device peak is its own, above what it held when its block started (the
allocator's peak is process-wide: :class:`DevicePeaks`); on the CPU the peak is the resident memory of a fresh
process per side (``host_peak_mb``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ..core import autotune
from ..core.autotune import label as label_of
from ..core.autotune import plain_threads
from ..core.config import RunConfig, SpeedConfig, preset
from ..core.engine import Engine
from ..core.metrics import psnr
from ..core.priors import build_prior, input_channels, input_stride, make_input, padded_size
from ..core.problems import Problem
from .common import crop, make_problem, photos, table

PRESETS = ("denoise", "sr-x4", "inpaint")


class Baseline:
    """The paper's loop as the reference notebooks write it: float32, NCHW, host-side PSNR each step.

    It draws its weights, input code and jitter from the same seeds as the engine and keeps the same
    (bias-corrected) running average, so that with every speed setting off the two are the same algorithm
    (``tests/test_speed_paths.py`` checks it) and any difference in quality comes from the speed-ups.
    """

    def __init__(self, problem: Problem, cfg: RunConfig, device: torch.device) -> None:
        seed = cfg.seed
        torch.manual_seed(seed)
        c = problem.channels
        self.net = build_prior(
            cfg.prior, cfg.prior_params, in_channels=input_channels(cfg.input_code, cfg.input_depth, c), out_channels=c
        ).to(device)
        self.size = h, w = problem.size
        mult: int = getattr(self.net, "size_multiple", 1)  # as the engine reads it
        pad = padded_size((max(h, 2 * mult), max(w, 2 * mult)), mult)
        gen = torch.Generator().manual_seed(seed)
        self.z = make_input(
            cfg.input_code,
            cfg.input_depth,
            pad,
            generator=gen,
            observed=problem.observed,
            image_size=(h, w),
            stride=input_stride(self.net),
        ).to(device)
        self.noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
        self.y = problem.observed.to(device)
        self.op = problem.operator.to(device)
        self.gt = problem.ground_truth[0].permute(1, 2, 0).numpy() if problem.ground_truth is not None else None
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.reg = cfg.reg_noise_std
        self.w = cfg.exp_weight
        self.ema: np.ndarray | None = None
        self.t = 0
        self.last_loss = self.last_psnr = self.last_psnr_average = 0.0

    def step(self) -> None:
        inp = self.z + torch.randn(self.z.shape, generator=self.noise_gen, device=self.z.device) * self.reg
        out = self.net(inp)[..., : self.size[0], : self.size[1]]
        loss = F.mse_loss(self.op(out), self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.last_loss = loss.item()
        img = out.detach().clamp(0, 1).cpu().numpy()[0].transpose(1, 2, 0)
        self.t += 1
        self.ema = img * (1 - self.w) if self.ema is None else self.ema * self.w + img * (1 - self.w)
        avg = self.ema / (1 - self.w**self.t)
        if self.gt is not None:
            self.last_psnr = psnr(img, self.gt)
            self.last_psnr_average = psnr(avg, self.gt)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _source_image(size: int) -> np.ndarray:
    img_all = photos()
    source = img_all.get("F16", next(iter(img_all.values())))
    if min(source.shape[:2]) >= size:
        return crop(source, size)
    reps = -(-size // min(source.shape[:2]))  # tile the photo (mirrored) up to the size asked
    big = np.concatenate([np.concatenate([source, source[:, ::-1]] * reps, axis=1)] * 2 * reps, axis=0)
    return np.ascontiguousarray(big[:size, :size])


def _engine_config(name: str, device: torch.device, speed: SpeedConfig) -> RunConfig:
    """The engine as the studio runs it, with its stopping bookkeeping on (es-wmv); no auto stop, so a timed
    run is never cut short by the rule."""
    return preset(name, device=device.type, stop="es-wmv", auto_stop=False, speed=speed)


BLOCK = 5  # steps timed together, between two syncs
T = TypeVar("T")


class DevicePeaks:
    """Each implementation's device peak above its own start, with both alive in one process.

    ``max_memory_allocated`` is process-wide: a block's raw peak also counts the other side's weights and
    state. A side's own peak is what it holds when its block starts (the growth of its constructor and of its
    earlier blocks: weights, then Adam's moments) plus how far the allocator's peak rose above that block's
    start. The counters are parameters so that the bookkeeping can be checked without a device; on the CPU
    they read 0 and the host peak is measured per process instead."""

    def __init__(self, allocated: Callable[[], int], peak: Callable[[], int], reset: Callable[[], None]) -> None:
        self._allocated, self._max, self._reset = allocated, peak, reset
        self.held: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    @classmethod
    def of(cls, device: torch.device) -> DevicePeaks:
        if device.type != "cuda":
            return cls(lambda: 0, lambda: 0, lambda: None)
        return cls(
            lambda: torch.cuda.memory_allocated(device),
            lambda: torch.cuda.max_memory_allocated(device),
            lambda: torch.cuda.reset_peak_memory_stats(device),
        )

    def build(self, label: str, make: Callable[[], T]) -> T:
        """``make()``, counting what it leaves allocated as ``label``'s own."""
        start = self._allocated()
        made = make()
        self.held[label] = self._allocated() - start
        self.peak[label] = max(self.peak.get(label, 0), self.held[label])
        return made

    @contextmanager
    def block(self, label: str) -> Iterator[None]:
        """A block of ``label``'s steps (the caller syncs the device before it and before it ends)."""
        self._reset()
        at_start = self._allocated()
        yield
        grown = self._max() - at_start
        self.peak[label] = max(self.peak[label], self.held[label] + grown)
        self.held[label] += self._allocated() - at_start

    def mib(self, label: str) -> float:
        return self.peak[label] / 2**20


def bench(name: str, img: np.ndarray, device: torch.device, steps: int, speed: SpeedConfig) -> list[object]:
    """Median seconds per step of each, in alternating blocks of BLOCK steps with one sync before and after a
    block (a sync per step would hide the overlap the engine is built for), and on CUDA the device peak of each
    above its own start (:class:`DevicePeaks`). rwgui's side is one turn of the engine's loop per step (the
    step and the loop's own bookkeeping, as every run pays them)."""
    peaks = DevicePeaks.of(device)
    base = peaks.build("base", lambda: Baseline(make_problem(name, img), preset(name, device=device.type), device))
    # rwgui's settings as a user gets them: "auto" resolved (measured once per machine and size, then cached)
    eng = peaks.build("ours", lambda: Engine(make_problem(name, img), _engine_config(name, device, speed)))
    # each side on its own thread count: the baseline on torch's default (what a plain script gets), rwgui on
    # the engine's (set once by the engine; torch's count is process-wide, so it is set before every block)
    threads = {"base": plain_threads(), "ours": torch.get_num_threads()}
    blocks = max(1, -(-steps // BLOCK))
    loop = eng.steps(budget=(blocks + 1) * BLOCK)
    times: dict[str, list[float]] = {"base": [], "ours": []}
    for i in range(blocks + 1):  # one warm-up block each (oneDNN/cuDNN pick their kernels)
        for label, fn in (("base", base.step), ("ours", partial(next, loop))):
            if device.type == "cpu":
                torch.set_num_threads(threads[label])
            _sync(device)
            with peaks.block(label):
                t0 = time.perf_counter()
                for _ in range(BLOCK):
                    fn()
                _sync(device)
                if i >= 1:
                    times[label].append((time.perf_counter() - t0) / BLOCK)
    loop.close()
    b, o = statistics.median(times["base"]), statistics.median(times["ours"])
    row: list[object] = [name, f"{img.shape[1]}x{img.shape[0]}", 1 / b, 1 / o, b / o, label_of(eng.speed)]
    if device.type == "cuda":
        row += [f"{peaks.mib('base'):.0f}", f"{peaks.mib('ours'):.0f}"]
    return row


def host_peak_mb(which: str, name: str, size: int, device: str, speed: SpeedConfig) -> float:
    """Peak resident memory of a fresh process that builds one implementation and runs 3 steps.

    A child process per measurement: the peak of a process only ever grows, so one process cannot measure
    two configurations."""
    args = [
        sys.executable,
        "-m",
        "rwgui.bench.speed",
        "--host-memory-child",
        which,
        "--presets",
        name,
        "--sizes",
        str(size),
        "--device",
        device,
        "--precision",
        speed.precision,
        "--channels-last",
        speed.channels_last,
        "--fused-optimizer",
        speed.fused_optimizer,
        "--threads",
        str(speed.threads),
    ]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def _host_memory_child(which: str, name: str, size: int, device: torch.device, speed: SpeedConfig) -> None:
    """Body of the child process: 'idle' builds the engine and takes no step (the process's floor)."""
    problem = make_problem(name, _source_image(size))
    if which == "base":
        base = Baseline(problem, preset(name, device=device.type), device)
        for _ in range(3):
            base.step()
    else:
        eng = Engine(problem, _engine_config(name, device, speed))
        if which != "idle":
            eng.run(max_iterations=3)
    _sync(device)
    print(_own_peak_mb())


def _own_peak_mb() -> float:
    """This process's peak resident memory. Not ``ru_maxrss``: Linux carries the forking parent's peak
    across exec into it, so a child of a big process would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def quality(
    name: str, img: np.ndarray, photo: str, device: torch.device, iterations: int, speed: SpeedConfig, seed: int = 0
) -> list[object]:
    """Final PSNR after the same number of steps from the same seed: the baseline vs the engine with its
    speed settings, on the same objective (the preset's loss prior off: it changes the result on purpose)."""
    problem = make_problem(name, img)
    cfg = preset(
        name, device=device.type, iterations=iterations, loss_prior="none", stop="fixed", speed=speed, seed=seed
    )
    base = Baseline(problem, cfg, device)
    for _ in range(iterations):
        base.step()
    rep = Engine(problem, cfg).run().reports[-1]
    assert rep.psnr is not None and rep.psnr_average is not None  # the bench photos are their own ground truth
    return [
        name,
        photo,
        f"{img.shape[1]}x{img.shape[0]}",
        iterations,
        seed,
        base.last_psnr,
        rep.psnr,
        rep.psnr - base.last_psnr,
        base.last_psnr_average,
        rep.psnr_average,
        rep.psnr_average - base.last_psnr_average,
    ]


def paired_summary(rows: list[list[object]]) -> list[list[object]]:
    """Per preset: the mean same-seed difference of the averaged output's PSNR (rwgui minus baseline), its
    standard error, and how far the baseline alone moves when only the seed changes (the SD over seeds of
    each photo, pooled): a same-seed difference smaller than that is within the run-to-run noise."""
    out = []
    for name in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == name]
        diffs = [float(r[-1]) for r in mine]  # type: ignore[arg-type]
        se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
        photos_seen = dict.fromkeys(r[1] for r in mine)
        per_photo = [[float(r[-3]) for r in mine if r[1] == p] for p in photos_seen]  # type: ignore[arg-type]
        var = [statistics.variance(v) for v in per_photo if len(v) > 1]
        sd = (sum(var) / len(var)) ** 0.5 if var else float("nan")
        out.append([name, len(diffs), statistics.mean(diffs), se, sd])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="", help="comma-separated sides (default 256,512; 1024 too on a GPU)")
    ap.add_argument(
        "--steps", type=int, default=5, help=f"timed steps per side, in blocks of {BLOCK} after a warm-up block"
    )
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", help="rwgui's precision (auto: measured)")
    ap.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"))
    ap.add_argument("--fused-optimizer", default="auto", choices=("auto", "on", "off"))
    ap.add_argument("--threads", type=int, default=0, help="rwgui's CPU threads (0: measured)")
    ap.add_argument("--retune", action="store_true", help="forget the measured speed settings first")
    ap.add_argument("--no-host-memory", action="store_true", help="skip the per-configuration host peak")
    ap.add_argument("--quality-size", type=int, default=128)
    ap.add_argument(
        "--quality-iterations", type=int, default=0, help="steps of the PSNR check (0, the default, skips it)"
    )
    ap.add_argument("--quality-photos", default="F16", help="comma-separated photos of the PSNR check")
    ap.add_argument("--quality-presets", default="", help="presets of the PSNR check (default: --presets)")
    ap.add_argument(
        "--quality-seeds",
        default="0",
        help="comma-separated seeds of the PSNR check; with several, a paired summary per preset",
    )
    ap.add_argument("--host-memory-child", choices=("base", "ours", "idle"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from ..core.device import describe, resolve_device

    device = resolve_device(args.device)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([256, 512, 1024] if device.type == "cuda" else [256, 512])
    )
    speed = SpeedConfig(
        precision=args.precision,
        channels_last=args.channels_last,
        fused_optimizer=args.fused_optimizer,
        threads=args.threads,
    )
    if args.retune:
        autotune.forget()
    names = args.presets.split(",")
    if args.host_memory_child:
        _host_memory_child(args.host_memory_child, names[0], sizes[0], device, speed)
        return
    print(
        f"device: {describe(device)}; torch {torch.__version__}; baseline threads {plain_threads()}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; RWGUI_NO_BF16={os.environ.get('RWGUI_NO_BF16')}; "
        f"asked speed settings: {speed}",
        flush=True,
    )
    headers = ["preset", "size", "baseline it/s", "rwgui it/s", "speed-up", "rwgui's settings (auto chose)"]
    if device.type == "cuda":
        headers += ["baseline device MiB", "rwgui device MiB"]
    if not args.no_host_memory:
        headers += ["baseline host MiB", "rwgui host MiB"]  # above the floor: see the note under the table
    floor = host_peak_mb("idle", names[0], 16, args.device, speed) if not args.no_host_memory else 0.0
    rows = []
    for size in sizes:
        img = _source_image(size)
        for name in names:
            row = bench(name, img, device, args.steps, speed)
            if not args.no_host_memory:
                row += [f"{host_peak_mb(w, name, size, args.device, speed) - floor:.0f}" for w in ("base", "ours")]
            rows.append(row)
            print(" ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row), flush=True)
    print()
    print(table(headers, rows))
    if not args.no_host_memory:
        print(
            f"\nhost MiB: peak resident memory of a fresh process running 3 steps of one implementation, "
            f"above the {floor:.0f} MiB of a process that builds the engine at 16x16 and takes no step"
        )
    if args.quality_iterations:
        q = []
        all_photos = photos()
        for photo in args.quality_photos.split(","):
            img = crop(all_photos[photo], args.quality_size)
            for name in (args.quality_presets or args.presets).split(","):
                for seed in (int(s) for s in args.quality_seeds.split(",")):
                    q.append(quality(name, img, photo, device, args.quality_iterations, speed, seed))
                    print(" ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in q[-1]), flush=True)
        print()
        print(
            table(
                [
                    "preset",
                    "photo",
                    "size",
                    "iterations",
                    "seed",
                    "baseline PSNR",
                    "rwgui PSNR",
                    "diff dB",
                    "baseline avg PSNR",
                    "rwgui avg PSNR",
                    "avg diff dB",
                ],
                q,
            )
        )
        if "," in args.quality_seeds:
            print()
            print(table(["preset", "runs", "mean avg diff dB", "SE", "baseline seed-to-seed SD dB"], paired_summary(q)))


if __name__ == "__main__":
    main()
