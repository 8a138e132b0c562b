"""Where a float32 CPU step goes, and what the 1x1-convolution route saves.

``python -m rwgui.bench.step_profile ab`` times the denoise preset's step with the route on and off (the module
switch ``skip.GEMM_1X1``) in one process, alternating the order each round, per memory layout: a busy host's
drift then hits both sides alike. ``profile`` prints the torch profiler's grouped self time for two steps per
layout and route. ``same`` checks that the route changes no number over a run (losses and weights). All in
float32 on one thread: the case where torch sends 1x1 convolutions to its slow generic kernel.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("RWGUI_SPEED_TUNING", "off")  # fixed settings: this compares routes, not tunings

import torch

from rwgui.bench.common import crop, make_problem, photos
from rwgui.core.config import SpeedConfig, preset
from rwgui.core.engine import Engine
from rwgui.core.priors import skip

#: Profiler op names grouped by what they do (self time summed per group).
GROUPS = {
    "convolution (oneDNN)": ("aten::mkldnn_convolution", "aten::mkldnn_convolution_backward"),
    "_slow_conv2d": ("aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward"),
    "1x1 as addmm/mm (route)": ("aten::addmm", "aten::mm"),
    "BatchNorm": ("aten::native_batch_norm", "aten::native_batch_norm_backward"),
    "bilinear upsampling": ("aten::upsample_bilinear2d", "aten::upsample_bilinear2d_backward"),
    "reflection padding": ("aten::reflection_pad2d", "aten::reflection_pad2d_backward"),
    "copy/fill/zero": ("aten::copy_", "aten::fill_", "aten::zero_"),
    "casts": ("aten::_to_copy",),
}


def engine(size: int, channels_last: bool) -> Engine:
    problem = make_problem("denoise", crop(next(iter(photos().values())), size))
    speed = SpeedConfig(precision="float32", channels_last="on" if channels_last else "off", threads=1)
    return Engine(problem, preset("denoise", device="cpu", speed=speed, auto_stop=False))


def ab(size: int, rounds: int, steps: int) -> None:
    engines = {"NCHW": engine(size, False), "channels-last": engine(size, True)}
    torch.set_num_threads(1)
    times: dict[tuple[str, bool], list[float]] = {(k, on): [] for k in engines for on in (False, True)}
    for e in engines.values():  # warm both routes
        for on in (True, False):
            skip.GEMM_1X1 = on
            e.step()
    for r in range(rounds):
        for name, e in engines.items():
            for on in (False, True) if r % 2 == 0 else (True, False):
                skip.GEMM_1X1 = on
                t0 = time.perf_counter()
                for _ in range(steps):
                    e.step()
                times[(name, on)].append((time.perf_counter() - t0) / steps)
    for name in engines:
        conv, route = times[(name, False)], times[(name, True)]
        ratios = [a / b for a, b in zip(conv, route)]
        print(
            f"{name}: conv {statistics.median(conv):.3f} s, route {statistics.median(route):.3f} s a step; speed-up "
            f"median {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}), "
            f"faster in {sum(x > 1 for x in ratios)}/{len(ratios)} rounds"
        )
    skip.GEMM_1X1 = True
    print("load:", open("/proc/loadavg").read().strip())


def profile(size: int) -> None:
    from torch.profiler import profile as torch_profile

    for channels_last in (False, True):
        e = engine(size, channels_last)
        torch.set_num_threads(1)
        for on in (False, True):
            skip.GEMM_1X1 = on
            e.step()
            with torch_profile() as p:
                e.step()
                e.step()
            by = {k.key: k.self_cpu_time_total / 1e6 for k in p.key_averages()}
            total = sum(by.values())
            print(f"== {'channels-last' if channels_last else 'NCHW'}, route {'on' if on else 'off'}: {total:.2f} s")
            for label, names in GROUPS.items():
                s = sum(by.get(n, 0.0) for n in names)
                print(f"  {label:26s} {s:7.3f} s {100 * s / total:5.1f} %")
    skip.GEMM_1X1 = True


def same(size: int, steps: int) -> None:
    for channels_last in (False, True):
        a, b = engine(size, channels_last), engine(size, channels_last)
        worst = 0.0
        for _ in range(steps):
            skip.GEMM_1X1 = True
            ra = a.step()
            skip.GEMM_1X1 = False
            rb = b.step()
            if ra is not None and rb is not None:
                worst = max(worst, abs(ra.loss - rb.loss) / abs(rb.loss))
        weights = max(float((p - q).abs().max()) for p, q in zip(a.net.parameters(), b.net.parameters()))
        print(
            f"{'channels-last' if channels_last else 'NCHW'}: max relative loss difference {worst:.3g}, "
            f"max weight difference {weights:.3g} over {steps} steps"
        )
    skip.GEMM_1X1 = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("ab", "profile", "same"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2, help="steps per timed block (ab) or per run (same: 20)")
    args = ap.parse_args()
    if args.what == "ab":
        ab(args.size, args.rounds, args.steps)
    elif args.what == "profile":
        profile(args.size)
    else:
        same(args.size, max(args.steps, 20))


if __name__ == "__main__":
    main()
