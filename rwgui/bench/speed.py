"""Iterations per second of rwgui's step against a plain implementation, in one process.

``python -m rwgui.bench.speed`` times the full engine step (forward, loss, backward, Adam, running average,
stopping bookkeeping with es-wmv) for the denoising, x4 super-resolution and inpainting presets, against a
baseline written here: the same network in eager float32 NCHW with the reference notebooks' textbook loop
(PSNR computed on the host every step). The two alternate step by step so that a busy machine slows both
alike; medians and their ratio are printed, with a final-PSNR check on equal seeds and iteration counts.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..core.config import SpeedConfig, preset
from ..core.engine import Engine
from ..core.metrics import psnr
from ..core.priors import build_prior, input_channels, make_input, padded_size
from ..core.problems import Problem
from .common import crop, make_problem, photos, table

PRESETS = ("denoise", "sr-x4", "inpaint")


class Baseline:
    """The paper's loop as the reference notebooks write it: float32, NCHW, host-side PSNR each step."""

    def __init__(self, problem: Problem, name: str, device: torch.device, seed: int = 0) -> None:
        cfg = preset(name)
        torch.manual_seed(seed)
        c = problem.channels
        self.net = build_prior(cfg.prior, cfg.prior_params,
                               in_channels=input_channels(cfg.input_code, cfg.input_depth, c), out_channels=c).to(device)
        self.size = problem.size
        pad = padded_size((max(self.size[0], 64), max(self.size[1], 64)), self.net.size_multiple)
        gen = torch.Generator().manual_seed(seed)
        self.z = make_input(cfg.input_code, cfg.input_depth, pad, generator=gen).to(device)
        self.y = problem.observed.to(device)
        self.op = problem.operator.to(device)
        self.gt = problem.ground_truth[0].permute(1, 2, 0).numpy() if problem.ground_truth is not None else None
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.reg = cfg.reg_noise_std
        self.avg: np.ndarray | None = None
        self.last_psnr = 0.0

    def step(self) -> None:
        inp = self.z + torch.randn_like(self.z) * self.reg
        out = self.net(inp)[..., :self.size[0], :self.size[1]]
        loss = F.mse_loss(self.op(out), self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        img = out.detach().cpu().numpy()[0].transpose(1, 2, 0)
        self.avg = img if self.avg is None else self.avg * 0.99 + img * 0.01
        if self.gt is not None:
            self.last_psnr = psnr(img, self.gt)
            psnr(self.avg, self.gt)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_host_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(name: str, img: np.ndarray, device: torch.device, steps: int, speed: SpeedConfig) -> list[object]:
    problem = make_problem(name, img)
    base = Baseline(problem, name, device)
    eng = Engine(problem, preset(name, device=device.type, stop="es-wmv", speed=speed))
    times: dict[str, list[float]] = {"base": [], "ours": []}
    mem: dict[str, float] = {}
    for i in range(steps + 2):  # two warm-up steps each (oneDNN/cuDNN pick their kernels)
        for label, fn in (("base", base.step), ("ours", eng.step)):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            if i >= 2:
                times[label].append(time.perf_counter() - t0)
            if device.type == "cuda":
                mem[label] = torch.cuda.max_memory_allocated(device) / 2**20
    b, o = statistics.median(times["base"]), statistics.median(times["ours"])
    h, w = problem.size
    row: list[object] = [name, f"{w}x{h}", 1 / b, 1 / o, b / o]
    if device.type == "cuda":
        row += [f"{mem['base']:.0f}", f"{mem['ours']:.0f}"]
    return row


def quality(name: str, img: np.ndarray, device: torch.device, iterations: int) -> list[object]:
    """Final PSNR after the same number of steps from the same seed: baseline vs rwgui's defaults."""
    problem = make_problem(name, img)
    base = Baseline(problem, name, device)
    for _ in range(iterations):
        base.step()
    eng = Engine(problem, preset(name, device=device.type, iterations=iterations))
    rep = eng.run().reports[-1]
    return [name, f"{img.shape[1]}x{img.shape[0]}", iterations, base.last_psnr, rep.psnr, rep.psnr - base.last_psnr]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="", help="comma-separated sides (default 256,512; 1024 too on a GPU)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per implementation (after 2 warm-up)")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quality-size", type=int, default=128)
    ap.add_argument("--quality-iterations", type=int, default=300, help="0 skips the PSNR check")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--no-channels-last", action="store_true")
    args = ap.parse_args(argv)
    from ..core.device import describe, resolve_device

    device = resolve_device(args.device)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else \
        ([256, 512, 1024] if device.type == "cuda" else [256, 512])
    speed = SpeedConfig(channels_last=not args.no_channels_last, precision=args.precision)
    img_all = photos()
    source = img_all.get("F16", next(iter(img_all.values())))
    print(f"device: {describe(device)}; torch {torch.__version__}; speed settings: {speed}", flush=True)
    rows = []
    for size in sizes:
        img = crop(source, size) if min(source.shape[:2]) >= size else \
            np.ascontiguousarray(np.resize(source, (size, size, 3)))
        for name in args.presets.split(","):
            rows.append(bench(name, img, device, args.steps, speed))
            print(" ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in rows[-1]), flush=True)
    headers = ["preset", "size", "baseline it/s", "rwgui it/s", "speed-up"]
    if device.type == "cuda":
        headers += ["baseline peak MiB", "rwgui peak MiB"]
    print()
    print(table(headers, rows))
    print(f"\npeak host memory of this process: {_peak_host_mb():.0f} MiB")
    if args.quality_iterations:
        img = crop(source, args.quality_size)
        q = [quality(n, img, device, args.quality_iterations) for n in args.presets.split(",")]
        print()
        print(table(["preset", "size", "iterations", "baseline PSNR", "rwgui PSNR", "difference dB"], q))


if __name__ == "__main__":
    main()
