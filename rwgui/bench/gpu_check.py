"""The GPU path, checked end to end on a CUDA machine in a few minutes: ``python3 -m rwgui.bench.gpu_check``.

What it prints, in order:

1. the dtype and memory layout each kind of layer ends in under autocast, per precision;
2. no hidden host sync: 100 steps of each preset under ``torch.cuda.set_sync_debug_mode("error")`` (any
   synchronising call inside the loop raises), each step also requesting a frame and a kept iterate as the
   studio's worker does (taken once ``ready()``), with a loss prior redrawn every 10 steps;
3. overlap on against off: the same reports, and the steps per second of each;
4. the memory estimate (probed on the device) against the device's peak at two sizes;
5. an induced out-of-memory (a tensor larger than the device) that ends the run with its state kept;
6. the speed table (baseline against rwgui) at 512x512 and 1024x1024.

On a machine without CUDA it says so in one line and exits 0 (the test suite runs it that way).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

NO_CUDA = "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check"


def _engine(name: str, size: int, **over):
    from ..core.config import preset
    from ..core.engine import Engine
    from ..core.samples import load_sample

    task = {"denoise": "denoise", "sr-x4": "sr", "inpaint": "inpaint"}[name]
    sample = load_sample(task, size=size)
    return Engine(sample.problem(), preset(name, device="cuda", **over))


def layouts() -> None:
    from ..core.config import SpeedConfig

    print("\n1. dtype and layout of each layer's output under autocast")
    for precision in ("float32", "bfloat16", "float16"):
        eng = _engine("denoise", 64, speed=SpeedConfig(precision=precision))
        seen: dict[str, tuple[str, bool]] = {}

        def hook(module: torch.nn.Module, _inputs: object, out: object, seen: dict = seen) -> None:
            if isinstance(out, torch.Tensor):
                cl = out.dim() == 4 and out.is_contiguous(memory_format=torch.channels_last)
                seen.setdefault(type(module).__name__, (str(out.dtype).removeprefix("torch."), cl))

        handles = [m.register_forward_hook(hook) for m in eng.net.modules() if not list(m.children())]
        eng.step()
        for h in handles:
            h.remove()
        cells = ", ".join(f"{k}: {d}{' CL' if cl else ''}" for k, (d, cl) in sorted(seen.items()))
        print(f"   {precision:9s} autocast={eng.autocast_dtype}: {cells}")


def no_hidden_sync(steps: int = 100) -> None:
    from ..core.config import SpeedConfig

    print(f"\n2. {steps} steps of each preset with torch.cuda.set_sync_debug_mode('error')")
    prior = {"loss_prior": "conv", "loss_prior_params": {"weight": 0.1, "redraw_every": 10}}
    for name, over in (("denoise", {}), ("sr-x4", {}), ("inpaint", {}), ("denoise", prior)):
        eng = _engine(name, 256, iterations=steps + 2, speed=SpeedConfig(overlap="on"), **over)
        eng.step()  # the first step allocates and picks kernels; the loop after it must not sync
        eng.step()
        fetches: list = []
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(steps):
                eng.step()
                fetches = [f for f in fetches if not f.ready()]  # the studio takes each once ready
                fetches += [eng.request_frame(), eng.request_image()]
            label = name + (" with a loss prior" if over else "")
            print(f"   {label}: no sync in {steps} steps (each fetching a frame and an iterate)")
        except RuntimeError as exc:
            print(f"   {name}: SYNC at iteration {eng.iteration}: {exc}")
        finally:
            torch.cuda.set_sync_debug_mode("default")


def overlap_on_off(steps: int = 60) -> None:
    from ..core.config import SpeedConfig

    print("\n3. overlap on against off (same seed)")
    rows = {}
    for overlap in ("off", "on"):
        eng = _engine("denoise", 256, iterations=steps, speed=SpeedConfig(overlap=overlap, precision="float32"))
        t0 = time.perf_counter()
        res = eng.run()
        torch.cuda.synchronize()
        rows[overlap] = (res.reports, steps / (time.perf_counter() - t0))
    a, b = rows["off"][0], rows["on"][0]
    worst = max(abs(x.loss - y.loss) / max(abs(x.loss), 1e-12) for x, y in zip(a, b))
    same = [r.iteration for r in a] == [r.iteration for r in b]
    print(f"   every report once and in order: {same}; largest relative loss difference {worst:.2e}")
    print(f"   steps/s: off {rows['off'][1]:.1f}, on {rows['on'][1]:.1f}")


def memory(sizes: tuple[int, ...] = (256, 512)) -> None:
    from ..core.memory import CUDNN_WORKSPACE_BYTES, MemoryModel

    print("\n4. memory estimate against the device peak")
    for size in sizes:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        eng = _engine("denoise", size, iterations=3)
        for _ in range(3):
            eng.step()
        eng.flush()
        peak = torch.cuda.max_memory_allocated() - start
        model = MemoryModel(eng.config, 3, eng.autocast_dtype, "cuda")
        est = model.estimate((size, size)).total_bytes - CUDNN_WORKSPACE_BYTES
        print(
            f"   {size}x{size}: estimate {est / 2**20:.0f} MB (rates measured on {model.measured_on}; "
            f"+{CUDNN_WORKSPACE_BYTES / 2**20:.0f} MB cuDNN headroom in the plan), device peak {peak / 2**20:.0f} MB"
        )
        del eng


def induced_oom() -> None:
    from ..core.engine import drain
    from ..core.vocabulary import StopReason

    print("\n5. an induced out-of-memory keeps the state")
    eng = _engine("denoise", 128, iterations=20)
    for _ in range(5):
        eng.step()
    before = eng.iteration
    total = torch.cuda.get_device_properties(0).total_memory

    def greedy(forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        def fill_then_forward(x: torch.Tensor) -> torch.Tensor:
            torch.empty(total * 2, dtype=torch.uint8, device="cuda")  # more than the device has
            return forward(x)

        return fill_then_forward

    with eng.forward_wrapped(greedy):
        result = drain(eng.steps())
    ok = result.stop_reason == StopReason.OUT_OF_MEMORY and eng.iteration == before and np.isfinite(eng.image()).all()
    eng.step()
    print(f"   stop: {result.stop_reason}; iteration kept: {eng.iteration - 1 == before}; state usable: {ok}")


def speed_table(sizes: tuple[int, ...] = (512, 1024), steps: int = 20) -> None:
    from ..core.config import SpeedConfig
    from .speed import _source_image, bench

    print("\n6. speed (steps/s): preset, size, baseline, rwgui, speed-up, baseline MB, rwgui MB")
    for size in sizes:
        img = _source_image(size)
        for name in ("denoise", "sr-x4", "inpaint"):
            row = bench(name, img, torch.device("cuda"), steps, SpeedConfig())
            print("   " + ", ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, smaller sizes (a smoke test)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    print(f"gpu_check on {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    layouts()
    no_hidden_sync(20 if args.quick else 100)
    overlap_on_off(20 if args.quick else 60)
    memory((128, 256) if args.quick else (256, 512))
    induced_oom()
    speed_table((256,) if args.quick else (512, 1024), 5 if args.quick else 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
