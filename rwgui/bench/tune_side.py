"""At which size must speed tuning time its candidates? ``python -m rwgui.bench.tune_side``.

Autotune (:mod:`rwgui.core.autotune`) times the candidate settings at a small square side and applies the winner
to the photo's size bucket. That is right only if the candidates rank at that side as they do at the photo's
own size. This prints, for each side in ``--sides``, the seconds per step of the four precision x layout
candidates on the CPU (fused Adam on, one thread, the ``--preset``'s network, a synthetic denoising problem):
:func:`~rwgui.core.autotune.measure_step_seconds`, the median of ``--steps`` timed steps after one untimed step,
and each candidate's time relative to the fastest.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from ..core.autotune import measure_step_seconds
from ..core.config import preset
from ..core.device import cpu_has_native_bf16
from .common import table, write_json


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sides", default="96,192,256,512,1088")
    ap.add_argument("--preset", default="denoise-fast")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per candidate and side")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = preset(args.preset, device="cpu")
    precisions = ["float32", "bfloat16"] if cpu_has_native_bf16() else ["float32"]
    candidates = [(p, cl) for p in precisions for cl in ("off", "on")]
    rows, out = [], {}
    for side in (int(s) for s in args.sides.split(",")):
        seconds = {}
        for precision, layout in candidates:
            speed = dataclasses.replace(
                cfg.speed, precision=precision, channels_last=layout, fused_optimizer="on", threads=1
            )
            seconds[f"{precision} cl:{layout}"] = measure_step_seconds(
                (side, side), cfg.replace(speed=speed), args.steps
            )
        best = min(seconds.values())
        out[side] = seconds
        rows.append([str(side), *(f"{s:.3f} ({s / best:.2f}x)" for s in seconds.values())])
        print(rows[-1], flush=True)
    print(table(["side", *(f"{p} cl:{c}" for p, c in candidates)], rows))
    write_json(args.json, {"args": vars(args), "seconds": out})


if __name__ == "__main__":
    main()
