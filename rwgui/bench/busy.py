"""The default CLI run's speed with another process busy on one core, against the same run without it.

``python -m rwgui.bench.busy`` writes the bundled sample's noisy 128x128 crop to a temporary folder and runs
``rwgui-restore denoise`` on it with its default settings (speed settings "auto", a fixed budget so that every
run times the same steps), each run in a fresh process, as a user would; the rate is the report's seconds per
iteration (the loop alone, start-up left out). Rounds alternate: one run alone, then one run while a process
burns a core (a busy loop pinned to CPU 0 where the system allows it), so that a machine whose load changes
over the benchmark affects both alike. The ratio quiet/busy per round and its median are printed; the target
is at most 1.5.

The first run measures the speed settings if they are not cached yet (``--retune`` forgets them first): that run
is a warm-up, untimed. The choice then serves both sides, as it would serve a user whose machine became busy
after rwgui measured it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_BURN = (
    "import os\n"
    "try:\n"
    "    os.sched_setaffinity(0, {0})\n"
    "except (AttributeError, OSError):\n"
    "    pass\n"
    "while True:\n"
    "    pass\n"
)


@contextlib.contextmanager
def burning(cores: int = 1) -> Iterator[None]:
    """``cores`` processes that each spin on a core until the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", _BURN]) for _ in range(cores)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def cli_rate(photo: Path, out: Path, iterations: int, extra: list[str]) -> tuple[float, dict]:
    """Iterations per second of one default ``rwgui-restore denoise`` run in a fresh process, and its report."""
    report = out.with_suffix(".json")
    cmd = [sys.executable, "-m", "rwgui.cli", "denoise", str(photo), "-o", str(out), "--overwrite"]
    cmd += ["--iterations", str(iterations), "--no-auto-stop", "--report", str(report), "--quiet", *extra]
    subprocess.run(cmd, check=True)
    data = json.loads(report.read_text())
    return 1.0 / float(data["seconds_per_iteration"]), data


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--burners", type=int, default=1, help="processes burning a core each during the busy runs")
    ap.add_argument("--retune", action="store_true", help="forget the measured speed settings first")
    ap.add_argument("extra", nargs="*", help="more rwgui-restore flags after --, e.g. -- --threads 2")
    args = ap.parse_args(argv)
    from ..core import autotune, imageio
    from ..core.samples import load_sample

    if args.retune:
        autotune.forget()
    with tempfile.TemporaryDirectory(prefix="rwgui-busy-") as tmp:
        photo = Path(tmp) / "noisy.png"
        imageio.write(photo, load_sample("denoise", size=args.size).observed)
        _, first = cli_rate(photo, Path(tmp) / "warm.png", 2, args.extra)  # measures the settings if needed
        speed = first["config"]["speed"]
        print(
            f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}; OMP_WAIT_POLICY="
            f"{os.environ.get('OMP_WAIT_POLICY', '(rwgui sets PASSIVE)')}; asked speed {speed}; "
            f"chosen (cache): {[v['speed'] for v in autotune.cached_choices().values()]}",
            flush=True,
        )
        quiet, busy = [], []
        for r in range(args.rounds):
            q, _ = cli_rate(photo, Path(tmp) / f"q{r}.png", args.iterations, args.extra)
            with burning(args.burners):
                b, _ = cli_rate(photo, Path(tmp) / f"b{r}.png", args.iterations, args.extra)
            quiet.append(q)
            busy.append(b)
            print(f"round {r + 1}: alone {q:.2f} it/s, busy {b:.2f} it/s, ratio {q / b:.2f}", flush=True)
    ratios = [q / b for q, b in zip(quiet, busy)]
    print(
        f"\nmedian: alone {statistics.median(quiet):.2f} it/s, with {args.burners} core(s) busy "
        f"{statistics.median(busy):.2f} it/s; slowdown {statistics.median(ratios):.2f}x "
        f"(rounds {min(ratios):.2f}-{max(ratios):.2f}; target at most 1.5x)"
    )


if __name__ == "__main__":
    main()
